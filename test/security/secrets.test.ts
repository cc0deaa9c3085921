/**
 * A secret never leaves the process in clear: the NATS token and password, given through the
 * environment, a file, or a systemd credential (credential:NAME), do not appear in anything vqd
 * prints: the daemon's log at the most verbose level (trace, which includes debug), the CLI's
 * output and errors, `vqd config print` (both formats) and `vqd doctor`.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startNatsServer, type TestNatsServer } from "../support/nats-server.js";
import { makeVqdEnv, type VqdEnv } from "../support/vqd-env.js";

const TOKEN = `tok${randomBytes(16).toString("hex")}`;
const PASSWORD = `pw${randomBytes(16).toString("hex")}`;
const BASE = {
  VQD_TELEMETRY__ENABLED: "false",
  VQD_DEFAULTPIPELINE: "noop",
  VQD_WORKERS__SHUTDOWNDEADLINEMS: "500",
  VQD_LOGGING__LEVEL: "trace",
  VQD_LOGGING__FORMAT: "json",
};

interface Case {
  readonly name: string;
  readonly secret: string;
  readonly server: () => TestNatsServer;
  /** Sets the secret up in the environment (and on disk); returns what config print must show for it. */
  readonly setup: (env: VqdEnv) => Promise<RegExp>;
}

describe("secrets are never printed", () => {
  let tokenSrv: TestNatsServer;
  let userSrv: TestNatsServer;
  const envs: VqdEnv[] = [];
  before(async () => {
    tokenSrv = await startNatsServer({ args: ["--auth", TOKEN] });
    userSrv = await startNatsServer({ args: ["--user", "vqd", "--pass", PASSWORD] });
  });
  after(async () => {
    for (const e of envs) await e.cleanup();
    await tokenSrv?.stop();
    await userSrv?.stop();
  });

  const secretFile = async (env: VqdEnv, name: string, value: string): Promise<string> => {
    const dir = join(env.root, "secrets");
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, name);
    await writeFile(file, `${value}\n`, { mode: 0o600 });
    return file;
  };

  const cases: Case[] = [
    {
      name: "token from the environment",
      secret: TOKEN,
      server: () => tokenSrv,
      async setup(env) {
        env.env.VQD_NATS__TOKEN = TOKEN;
        return /^ {2}token: "?\[redacted\]"?$/m;
      },
    },
    {
      name: "token from a file",
      secret: TOKEN,
      server: () => tokenSrv,
      async setup(env) {
        const file = await secretFile(env, "token", TOKEN);
        env.env.VQD_NATS__TOKENFILE = file;
        return new RegExp(`^ {2}tokenFile: ${file}$`, "m");
      },
    },
    {
      name: "password from the environment",
      secret: PASSWORD,
      server: () => userSrv,
      async setup(env) {
        Object.assign(env.env, { VQD_NATS__USER: "vqd", VQD_NATS__PASSWORD: PASSWORD });
        return /^ {2}password: "?\[redacted\]"?$/m;
      },
    },
    {
      name: "password from a systemd credential (credential:NAME)",
      secret: PASSWORD,
      server: () => userSrv,
      async setup(env) {
        const file = await secretFile(env, "vqd-nats-password", PASSWORD);
        Object.assign(env.env, { VQD_NATS__USER: "vqd", VQD_NATS__PASSWORDFILE: "credential:vqd-nats-password", CREDENTIALS_DIRECTORY: join(env.root, "secrets") });
        return new RegExp(`^ {2}passwordFile: ${file}$`, "m");
      },
    },
  ];

  for (const c of cases) {
    it(`${c.name}: not in the trace log, the CLI output, config print or doctor`, async () => {
      const env = await makeVqdEnv({ natsUrl: c.server().url, extra: BASE });
      envs.push(env);
      const shown = await c.setup(env);
      let printed = "";

      const daemon = env.spawnDaemon();
      try {
        await daemon.ready();
        const files = await env.videos(3);
        for (const args of [["enqueue", ...files], ["status", "--json"], ["list", "--json"], ["config", "print"], ["config", "print", "--format", "json"], ["doctor"], ["doctor", "--json"]]) {
          const r = await env.cli(args);
          assert.equal(r.code, 0, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
          printed += r.stdout + r.stderr;
          if (args[0] === "status") assert.equal((JSON.parse(r.stdout) as { daemon: boolean }).daemon, true, "the CLI authenticated to the daemon's NATS");
          if (args[0] === "config" && args.length === 2) {
            assert.match(r.stdout, shown);
            assert.match(r.stdout, /^ {2}level: trace$/m);
          }
        }
      } finally {
        daemon.child.kill("SIGTERM");
      }
      assert.equal(await daemon.exited(), 0, daemon.output());
      const log = daemon.output();
      assert.match(log, /"msg":"vqd ready"/);
      assert.match(log, /"msg":"NATS connected"/);
      assert.ok(!log.includes(c.secret), `the daemon's log holds the secret:\n${log}`);
      assert.ok(!printed.includes(c.secret), `the CLI printed the secret:\n${printed}`);

      // A refused secret is not echoed either.
      const wrong = `wrong${randomBytes(8).toString("hex")}`;
      const bad = { ...env.env };
      if (bad.VQD_NATS__TOKEN || bad.VQD_NATS__TOKENFILE) {
        delete bad.VQD_NATS__TOKENFILE;
        bad.VQD_NATS__TOKEN = wrong;
      } else {
        delete bad.VQD_NATS__PASSWORDFILE;
        bad.VQD_NATS__PASSWORD = wrong;
      }
      const saved = { ...env.env };
      Object.keys(env.env).forEach((k) => delete env.env[k]);
      Object.assign(env.env, bad);
      try {
        const refused = await env.cli(["status"]);
        assert.equal(refused.code, 77, refused.stdout + refused.stderr);
        assert.ok(!(refused.stdout + refused.stderr).includes(wrong), refused.stderr);
        const d2 = env.spawnDaemon();
        assert.equal(await d2.exited(), 77, d2.output());
        assert.ok(!d2.output().includes(wrong), d2.output());
      } finally {
        Object.keys(env.env).forEach((k) => delete env.env[k]);
        Object.assign(env.env, saved);
      }
    });
  }

  it(
    "credentials inside a server URL (nats://user:pass@host) are not printed when the connection fails",
    async () => {
      const env = await makeVqdEnv({ natsUrl: `nats://vqd:${PASSWORD}@127.0.0.1:1`, extra: BASE });
      envs.push(env);
      const daemon = env.spawnDaemon();
      assert.equal(await daemon.exited(), 69, daemon.output());
      assert.ok(!daemon.output().includes(PASSWORD), daemon.output());
    },
  );

  it("`vqd doctor` scrubs credentials inside a server URL from what the NATS client reports", async () => {
    const env = await makeVqdEnv({ natsUrl: `nats://vqd:${PASSWORD}@127.0.0.1:1`, extra: BASE });
    envs.push(env);
    const r = await env.cli(["doctor"]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /^FAIL {2}nats {2,}cannot connect to NATS at nats:\/\/vqd:\[redacted\]@127\.0\.0\.1:1/m);
    assert.ok(!r.stdout.includes(PASSWORD), r.stdout);
  });
});
