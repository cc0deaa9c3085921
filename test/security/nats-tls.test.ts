/**
 * NATS over TLS with authentication, against real nats-servers started with TLS and auth: one with
 * a token (`--tls --tlscert --tlskey --auth`), one with user/password from a config file
 * (`authorization { user, password }` + `tls { cert_file, key_file }`). The certificates are made
 * here with openssl. The daemon and the CLI connect with nats.tls.caFile and the credentials; a
 * wrong password exits 77 and an untrusted certificate exits 69, each with a message that says so.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startNatsServer, type TestNatsServer } from "../support/nats-server.js";
import { makeVqdEnv, type VqdEnv } from "../support/vqd-env.js";
import { makeTestPki, type TestPki } from "./tls-fixtures.js";

const TOKEN = `tok-${randomBytes(12).toString("hex")}`;
const PASSWORD = `pw-${randomBytes(12).toString("hex")}`;
const BASE = { VQD_TELEMETRY__ENABLED: "false", VQD_DEFAULTPIPELINE: "noop", VQD_WORKERS__SHUTDOWNDEADLINEMS: "500" };

describe("NATS with TLS and authentication", () => {
  let pki: TestPki;
  let tokenSrv: TestNatsServer;
  let userSrv: TestNatsServer;
  const envs: VqdEnv[] = [];
  const makeEnv = async (natsUrl: string, extra: Record<string, string>): Promise<VqdEnv> => {
    const env = await makeVqdEnv({ natsUrl, extra: { ...BASE, ...extra } });
    envs.push(env);
    return env;
  };

  before(async () => {
    pki = await makeTestPki();
    tokenSrv = await startNatsServer({ args: ["--tls", "--tlscert", pki.certFile, "--tlskey", pki.keyFile, "--auth", TOKEN] });
    const conf = join(pki.dir, "nats-user.conf");
    await writeFile(
      conf,
      [
        `authorization { user: "vqd", password: "${PASSWORD}" }`,
        `tls { cert_file: "${pki.certFile}", key_file: "${pki.keyFile}" }`,
        "",
      ].join("\n"),
    );
    userSrv = await startNatsServer({ args: ["-c", conf] });
  });
  after(async () => {
    for (const e of envs) await e.cleanup();
    await tokenSrv?.stop();
    await userSrv?.stop();
    await pki?.cleanup();
  });

  /** Starts the daemon, checks that the CLI reaches it through NATS, stops it with SIGTERM. */
  async function runsAndAnswers(env: VqdEnv): Promise<void> {
    const daemon = env.spawnDaemon();
    try {
      await daemon.ready();
      const status = await env.cli(["status", "--json"]);
      assert.equal(status.code, 0, status.stderr);
      assert.equal((JSON.parse(status.stdout) as { daemon: boolean }).daemon, true, "the CLI answered from the daemon, over TLS");
      const [file] = await env.videos(1);
      const enq = await env.cli(["enqueue", file as string]);
      assert.equal(enq.code, 0, enq.stderr);
      assert.ok(enq.stdout.includes(file as string), enq.stdout);
      const doctor = await env.cli(["doctor"]);
      assert.match(doctor.stdout, /^ok {4}nats {2,}connected to nats:\/\/127\.0\.0\.1:\d+ \(nats-server [\d.]+, TLS\)/m);
      assert.match(doctor.stdout, /^ok {4}jetstream {2,}enabled/m);
    } finally {
      daemon.child.kill("SIGTERM");
    }
    assert.equal(await daemon.exited(), 0, daemon.output());
  }

  it("TLS + token: the daemon and the CLI connect with nats.tls.caFile", async () => {
    const env = await makeEnv(tokenSrv.url, { VQD_NATS__TOKEN: TOKEN, VQD_NATS__TLS__CAFILE: pki.caFile });
    await runsAndAnswers(env);
  });

  it("TLS + user/password (password from a file): the daemon and the CLI connect", async () => {
    const env = await makeEnv(userSrv.url, {});
    const secrets = join(env.root, "secrets");
    await mkdir(secrets, { mode: 0o700 });
    await writeFile(join(secrets, "nats-password"), `${PASSWORD}\n`, { mode: 0o600 });
    Object.assign(env.env, { VQD_NATS__USER: "vqd", VQD_NATS__PASSWORDFILE: join(secrets, "nats-password"), VQD_NATS__TLS__CAFILE: pki.caFile });
    await runsAndAnswers(env);
  });

  it("a wrong password is refused: exit 77 with a message naming the auth method", async () => {
    const env = await makeEnv(userSrv.url, { VQD_NATS__USER: "vqd", VQD_NATS__PASSWORD: "not-the-password", VQD_NATS__TLS__CAFILE: pki.caFile });
    const daemon = env.spawnDaemon();
    assert.equal(await daemon.exited(), 77, daemon.output());
    assert.match(daemon.output(), /vqd: NATS at nats:\/\/127\.0\.0\.1:\d+ rejected the connection \(auth: user\/password\): Authorization Violation/);
    const status = await env.cli(["status"]);
    assert.equal(status.code, 77, status.stdout + status.stderr);
    assert.match(status.stderr, /rejected the connection \(auth: user\/password\)/);
    assert.ok(!(daemon.output() + status.stderr).includes("not-the-password"), "the refused password is not echoed");
  });

  it("a wrong token is refused: exit 77", async () => {
    const env = await makeEnv(tokenSrv.url, { VQD_NATS__TOKEN: "not-the-token", VQD_NATS__TLS__CAFILE: pki.caFile });
    const daemon = env.spawnDaemon();
    assert.equal(await daemon.exited(), 77, daemon.output());
    assert.match(daemon.output(), /rejected the connection \(auth: token\)/);
  });

  it("an untrusted certificate is refused: no caFile, or the wrong CA, exit 69 naming the certificate", async () => {
    const cases: Record<string, string>[] = [{}, { VQD_NATS__TLS__CAFILE: pki.otherCaFile }];
    for (const extra of cases) {
      const env = await makeEnv(tokenSrv.url, { VQD_NATS__TOKEN: TOKEN, ...extra });
      const daemon = env.spawnDaemon();
      assert.equal(await daemon.exited(), 69, daemon.output());
      assert.match(daemon.output(), /vqd: cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+: unable to verify the first certificate/);
      const doctor = await env.cli(["doctor"]);
      assert.equal(doctor.code, 1, doctor.stdout);
      assert.match(doctor.stdout, /^FAIL {2}nats {2,}.*certificate.*\(fix: set nats\.tls\.caFile to the CA that signed the server's certificate/m);
    }
  });
});
