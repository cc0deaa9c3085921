import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import {
  ConfigError,
  defaultConfig,
  formatConfig,
  isConfigError,
  loadConfig,
  redactConfig,
  resolveSecret,
  type Config,
} from "../../src/config/index.js";
import { configSchema } from "../../src/config/schema.js";

// Compiled to dist/test/config/, so the repository root is three levels up.
const DEFAULT_YAML = fileURLToPath(new URL("../../../config/default.yaml", import.meta.url));

let root: string;
let counter = 0;

before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "vqd-config-"));
});

after(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

/** A fresh directory under the temp root. */
function freshDir(): string {
  const dir = path.join(root, `case-${++counter}`);
  fs.mkdirSync(dir);
  return dir;
}

/** Writes `content` to `name` inside a fresh directory; returns the directory and file path. */
function writeConfig(content: string, name = "vqd.yaml"): { dir: string; file: string } {
  const dir = freshDir();
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  return { dir, file };
}

function load(content: string, env: NodeJS.ProcessEnv = {}): Config {
  const { dir, file } = writeConfig(content);
  return loadConfig({ file, env, cwd: dir });
}

interface Expected {
  keyPath: string;
  source?: string;
  reason?: RegExp;
  message?: RegExp;
}

function assertConfigError(fn: () => unknown, expected: Expected): ConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, "expected a ConfigError, but nothing was thrown");
  assert.ok(isConfigError(caught), `expected a ConfigError, got ${String(caught)}`);
  assert.ok(caught instanceof Error);
  assert.equal(caught.exitCode, 78);
  assert.equal(caught.keyPath, expected.keyPath);
  assert.match(caught.message, /^invalid config: /);
  if (expected.keyPath !== "") assert.ok(caught.message.includes(`${expected.keyPath}: `), caught.message);
  if (expected.source !== undefined) {
    assert.equal(caught.source, expected.source);
    assert.ok(caught.message.includes(`[from ${expected.source}`), caught.message);
  }
  if (expected.reason) assert.match(caught.reason, expected.reason);
  if (expected.message) assert.match(caught.message, expected.message);
  return caught;
}

describe("defaults", () => {
  test("defaultConfig fills derived paths against cwd", () => {
    const dir = freshDir();
    const config = defaultConfig(dir);
    const data = path.join(dir, "data");
    assert.equal(config.dataDir, data);
    assert.equal(config.database.file, path.join(data, "vqd.db"));
    assert.equal(config.database.synchronous, "normal");
    assert.equal(config.nats.embedded.storeDir, path.join(data, "nats"));
    assert.equal(config.nats.embedded.binary, "nats-server");
    assert.equal(config.outputDir, path.join(data, "outputs"));
    assert.equal(config.reportsDir, path.join(data, "reports"));
    assert.deepEqual(config.nats.servers, []);
    assert.deepEqual(config.allowedRoots, []);
    assert.equal(config.workers.count, 3);
    assert.equal(config.lanes.default, "normal");
    assert.equal(config.defaultPipeline, "default");
    assert.deepEqual(Object.keys(config.pipelines).sort(), ["default", "noop"]);
    assert.deepEqual(
      config.pipelines.default?.steps.map((s) => s.step),
      ["probe", "thumbnail", "transcode"],
    );
    assert.deepEqual(config.pipelines.default?.steps[2]?.options, { profile: "web-720p" });
    assert.equal(config.schedules.basicProfile.cron, "0 3 * * *");
    assert.equal(config.logging.format, "auto");
  });

  test("loadConfig with no file and an empty environment gives the defaults", () => {
    const dir = freshDir();
    assert.deepEqual(loadConfig({ env: {}, cwd: dir }), defaultConfig(dir));
  });

  test("config/default.yaml lists every key with exactly the schema defaults", () => {
    const raw: unknown = parseYaml(fs.readFileSync(DEFAULT_YAML, "utf8"));
    assert.deepEqual(raw, configSchema.parse({}));
  });

  test("loading config/default.yaml alone gives the defaults", () => {
    const dir = freshDir();
    assert.deepEqual(loadConfig({ file: DEFAULT_YAML, env: {}, cwd: dir }), defaultConfig(dir));
  });

  test("the result is deeply frozen", () => {
    const config = load("pipelines: { fast: { steps: [ { step: transcode, options: { crf: 23 } } ] } }");
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.workers.backoff));
    assert.ok(Object.isFrozen(config.nats.servers));
    assert.ok(Object.isFrozen(config.pipelines.fast?.steps[0]?.options));
    assert.throws(() => {
      (config.workers as unknown as { count: number }).count = 9;
    }, TypeError);
    assert.throws(() => {
      config.allowedRoots.push("/x");
    }, TypeError);
    // Freezing one result never affects the next.
    assert.equal(defaultConfig().workers.count, 3);
    assert.ok(!Object.isFrozen(configSchema.parse({}).workers));
  });
});

describe("config file", () => {
  test("overrides defaults and resolves paths against cwd", () => {
    const { dir, file } = writeConfig(`
dataDir: state
database: { synchronous: full }
workers:
  count: 8
  backoff: { jitter: 0 }
nats:
  servers: [nats://10.0.0.1:4222, nats://10.0.0.2:4222]
  embedded: { binary: ./bin/nats-server }
allowedRoots: [videos, /srv/media]
outputDir: /srv/out
lanes: { default: high }
`);
    const config = loadConfig({ file, env: {}, cwd: dir });
    assert.equal(config.dataDir, path.join(dir, "state"));
    assert.equal(config.database.file, path.join(dir, "state", "vqd.db"));
    assert.equal(config.database.synchronous, "full");
    assert.equal(config.workers.count, 8);
    assert.equal(config.workers.backoff.jitter, 0);
    assert.equal(config.workers.backoff.multiplier, 2);
    assert.deepEqual(config.nats.servers, ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"]);
    assert.equal(config.nats.embedded.binary, path.join(dir, "bin", "nats-server"));
    assert.deepEqual(config.allowedRoots, [path.join(dir, "videos"), "/srv/media"]);
    assert.equal(config.outputDir, "/srv/out");
    assert.equal(config.reportsDir, path.join(dir, "state", "reports"));
    assert.equal(config.lanes.default, "high");
  });

  test("a relative file path resolves against cwd; empty sections keep their defaults", () => {
    const { dir } = writeConfig("workers:\nnats:\n  tls:\n", "conf.yaml");
    const config = loadConfig({ file: "conf.yaml", env: {}, cwd: dir });
    assert.deepEqual(config, defaultConfig(dir));
  });

  test("user pipelines merge over the built-ins by name", () => {
    const config = load(`
pipelines:
  default: { steps: [ { step: probe } ] }
  fast: { steps: [ { step: transcode, name: t1, options: { profile: web-480p } }, { step: transcode, name: t2 } ] }
defaultPipeline: fast
`);
    assert.deepEqual(Object.keys(config.pipelines).sort(), ["default", "fast", "noop"]);
    assert.deepEqual(config.pipelines.default, { steps: [{ step: "probe", options: {} }] });
    assert.deepEqual(config.pipelines.noop, { steps: [{ step: "noop", options: {} }] });
    assert.equal(config.pipelines.fast?.steps[1]?.name, "t2");
    assert.equal(config.defaultPipeline, "fast");
  });

  test("VQD_CONFIG names the file when no file option is given; the option wins", () => {
    const a = writeConfig("workers: { count: 11 }");
    const b = writeConfig("workers: { count: 12 }");
    assert.equal(loadConfig({ env: { VQD_CONFIG: a.file }, cwd: a.dir }).workers.count, 11);
    assert.equal(loadConfig({ file: b.file, env: { VQD_CONFIG: a.file }, cwd: a.dir }).workers.count, 12);
  });
});

describe("environment", () => {
  test("overrides nested keys, lists and booleans, case-insensitively", () => {
    const dir = freshDir();
    const config = loadConfig({
      cwd: dir,
      env: {
        VQD_WORKERS__COUNT: "4",
        vqd_ignored: "not ours (prefix is upper case)",
        VQD_Workers__MaxAttempts: "7",
        VQD_WORKERS__BACKOFF__JITTER: "0.5",
        VQD_NATS__SERVERS: "nats://a:4222, nats://b:4222",
        VQD_NATS__SUBJECT_PREFIX: "media.jobs",
        VQD_NATS__PASSWORD: "12345",
        VQD_NATS__USER: "vq",
        VQD_DATADIR: "/var/lib/vqd",
        VQD_ALLOWEDROOTS: "[/srv/a, /srv/b]",
        VQD_TELEMETRY__ENABLED: "false",
        VQD_LANES__LOW__ENABLED: "false",
        VQD_SCHEDULES__BASICPROFILE__CRON: "*/15 * * * *",
        VQD_LOGGING__LEVEL: "debug",
        VQD_PIPELINES__QUICK: "{steps: [{step: noop}]}",
        PATH: "/usr/bin",
      },
    });
    assert.equal(config.workers.count, 4);
    assert.equal(config.workers.maxAttempts, 7);
    assert.equal(config.workers.backoff.jitter, 0.5);
    assert.deepEqual(config.nats.servers, ["nats://a:4222", "nats://b:4222"]);
    assert.equal(config.nats.subjectPrefix, "media.jobs");
    assert.equal(config.nats.password, "12345", "string keys keep the text verbatim");
    assert.equal(config.dataDir, "/var/lib/vqd");
    assert.equal(config.database.file, "/var/lib/vqd/vqd.db");
    assert.deepEqual(config.allowedRoots, ["/srv/a", "/srv/b"]);
    assert.equal(config.telemetry.enabled, false);
    assert.equal(config.lanes.low.enabled, false);
    assert.equal(config.schedules.basicProfile.cron, "*/15 * * * *");
    assert.equal(config.logging.level, "debug");
    assert.deepEqual(config.pipelines.quick, { steps: [{ step: "noop", options: {} }] });
  });

  test("a single server and an empty list", () => {
    const dir = freshDir();
    assert.deepEqual(
      loadConfig({ cwd: dir, env: { VQD_NATS__SERVERS: "nats://127.0.0.1:4222" } }).nats.servers,
      ["nats://127.0.0.1:4222"],
    );
    assert.deepEqual(loadConfig({ cwd: dir, env: { VQD_ALLOWEDROOTS: "" } }).allowedRoots, []);
  });

  test("precedence: environment > file > defaults", () => {
    const { dir, file } = writeConfig("workers: { count: 8, maxAttempts: 9 }\ntelemetry: { serviceName: from-file }");
    const config = loadConfig({ file, cwd: dir, env: { VQD_WORKERS__COUNT: "4", VQD_TELEMETRY__SERVICE_NAME: "from-env" } });
    assert.equal(config.workers.count, 4);
    assert.equal(config.workers.maxAttempts, 9);
    assert.equal(config.workers.heartbeatMs, 10000);
    assert.equal(config.telemetry.serviceName, "from-env");
  });

  test("env refines a pipeline named in the file, matching its name case-insensitively", () => {
    const config = load("pipelines: { Fast: { steps: [ { step: probe } ] } }", {
      VQD_PIPELINES__FAST__STEPS: "[{step: noop}, {step: probe}]",
    });
    assert.deepEqual(
      config.pipelines.Fast?.steps.map((s) => s.step),
      ["noop", "probe"],
    );
  });
});

describe("errors", () => {
  test("ConfigError basics", () => {
    const e = new ConfigError({ keyPath: "a.b", reason: "must be x (got 1)", source: "defaults" });
    assert.equal(e.exitCode, 78);
    assert.equal(e.message, "invalid config: a.b: must be x (got 1) [from defaults]");
    assert.ok(isConfigError(e));
    assert.ok(!isConfigError(new Error("x")));
  });

  test("out of range from env: exact message", () => {
    const e = assertConfigError(() => loadConfig({ cwd: freshDir(), env: { VQD_WORKERS__COUNT: "0" } }), {
      keyPath: "workers.count",
      source: "VQD_WORKERS__COUNT",
    });
    assert.equal(e.message, "invalid config: workers.count: must be an integer between 1 and 64 (got 0) [from VQD_WORKERS__COUNT]");
  });

  test("out of range in a file names the file and line", () => {
    const { dir, file } = writeConfig("# comment\nworkers:\n  count: 65\n");
    const e = assertConfigError(() => loadConfig({ file, env: {}, cwd: dir }), {
      keyPath: "workers.count",
      source: file,
      reason: /between 1 and 64 \(got 65\)/,
    });
    assert.equal(e.line, 3);
    assert.ok(e.message.endsWith(`[from ${file}:3]`), e.message);
  });

  test("wrong type", () => {
    const { dir, file } = writeConfig("workers: { count: many }");
    assertConfigError(() => loadConfig({ file, env: {}, cwd: dir }), {
      keyPath: "workers.count",
      source: file,
      reason: /must be an integer .*\(got "many"\)/,
    });
    const e = writeConfig("telemetry: { enabled: yes }");
    assertConfigError(() => loadConfig({ file: e.file, env: {}, cwd: e.dir }), {
      keyPath: "telemetry.enabled",
      reason: /must be true or false \(got "yes"\)/,
    });
    assertConfigError(() => loadConfig({ cwd: freshDir(), env: { VQD_WORKERS__COUNT: "four" } }), {
      keyPath: "workers.count",
      source: "VQD_WORKERS__COUNT",
    });
    const s = writeConfig("workers: 5");
    assertConfigError(() => loadConfig({ file: s.file, env: {}, cwd: s.dir }), {
      keyPath: "workers",
      reason: /must be a mapping/,
    });
  });

  test("unknown key in a file, nested and top-level", () => {
    const { dir, file } = writeConfig("workers:\n  countt: 3\n");
    const e = assertConfigError(() => loadConfig({ file, env: {}, cwd: dir }), {
      keyPath: "workers.countt",
      source: file,
      reason: /unknown key \(did you mean "count"\?\)/,
    });
    assert.equal(e.line, 2);
    const top = writeConfig("workers: { count: 0 }\nlogLevel: debug\n");
    assertConfigError(() => loadConfig({ file: top.file, env: {}, cwd: top.dir }), {
      keyPath: "logLevel",
      reason: /^unknown key/,
    });
    const step = writeConfig("pipelines: { p: { steps: [ { step: probe, option: {} } ] } }");
    assertConfigError(() => loadConfig({ file: step.file, env: {}, cwd: step.dir }), {
      keyPath: "pipelines.p.steps[0].option",
      reason: /did you mean "options"/,
    });
  });

  test("unknown environment variable", () => {
    const e = assertConfigError(() => loadConfig({ cwd: freshDir(), env: { VQD_WORKERS__COUNTT: "3" } }), {
      keyPath: "workers.countt",
      source: "VQD_WORKERS__COUNTT",
      reason: /did you mean VQD_WORKERS__COUNT\?/,
    });
    assert.ok(e.message.includes("VQD_WORKERS__COUNTT"));
    assertConfigError(() => loadConfig({ cwd: freshDir(), env: { VQD_DATADIR__X: "1" } }), {
      keyPath: "dataDir.x",
      source: "VQD_DATADIR__X",
    });
    assertConfigError(() => loadConfig({ cwd: freshDir(), env: { VQD_WORKERS: "{count: 2, extra: 1}" } }), {
      keyPath: "workers.extra",
      source: "VQD_WORKERS",
    });
  });

  test("bad lane", () => {
    const { dir, file } = writeConfig("lanes: { default: urgent }");
    assertConfigError(() => loadConfig({ file, env: {}, cwd: dir }), {
      keyPath: "lanes.default",
      source: file,
      reason: /must be one of "high", "normal", "low" \(got "urgent"\)/,
    });
    assertConfigError(() => loadConfig({ cwd: freshDir(), env: { VQD_LANES__NORMAL__ENABLED: "false" } }), {
      keyPath: "lanes.default",
      source: "VQD_LANES__NORMAL__ENABLED",
      reason: /disabled/,
    });
  });

  test("bad cron and bad time zone", () => {
    const { dir, file } = writeConfig('schedules:\n  basicProfile:\n    cron: "61 * * * *"\n');
    assertConfigError(() => loadConfig({ file, env: {}, cwd: dir }), {
      keyPath: "schedules.basicProfile.cron",
      source: file,
      reason: /cron expression.*minute.*\(got "61 \* \* \* \*"\)/,
    });
    assertConfigError(() => loadConfig({ cwd: freshDir(), env: { VQD_SCHEDULES__MEMORYSNAPSHOT__CRON: "every sunday" } }), {
      keyPath: "schedules.memorySnapshot.cron",
      source: "VQD_SCHEDULES__MEMORYSNAPSHOT__CRON",
    });
    assertConfigError(() => loadConfig({ cwd: freshDir(), env: { VQD_SCHEDULES__TIMEZONE: "Mars/Olympus" } }), {
      keyPath: "schedules.timezone",
      reason: /IANA time zone/,
    });
  });

  test("malformed YAML names the file and line", () => {
    const { dir, file } = writeConfig("workers:\n  count: 3\n  backoff: [1, 2\nlanes: {}\n");
    const e = assertConfigError(() => loadConfig({ file, env: {}, cwd: dir }), {
      keyPath: "",
      source: file,
      reason: /^malformed YAML at line \d+, column \d+: /,
    });
    assert.equal(typeof e.line, "number");
    assert.ok(e.message.includes(`${file}:${e.line}`), e.message);
    const dup = writeConfig("workers: {}\nworkers: {}\n");
    const d = assertConfigError(() => loadConfig({ file: dup.file, env: {}, cwd: dup.dir }), {
      keyPath: "",
      source: dup.file,
      reason: /malformed YAML at line 2/,
    });
    assert.equal(d.line, 2);
    const list = writeConfig("- a\n- b\n");
    assertConfigError(() => loadConfig({ file: list.file, env: {}, cwd: list.dir }), {
      keyPath: "",
      reason: /must hold a mapping/,
    });
  });

  test("missing config file", () => {
    const dir = freshDir();
    const missing = path.join(dir, "nope.yaml");
    assertConfigError(() => loadConfig({ file: missing, env: {}, cwd: dir }), {
      keyPath: "",
      source: missing,
      reason: /cannot read the config file: no such file/,
    });
    assertConfigError(() => loadConfig({ env: { VQD_CONFIG: "nope.yaml" }, cwd: dir }), {
      keyPath: "",
      source: missing,
      reason: /named by VQD_CONFIG/,
    });
  });

  test("secret file missing names the key", () => {
    const { dir, file } = writeConfig("nats: { user: vq, passwordFile: secrets/pass }");
    assertConfigError(() => loadConfig({ file, env: {}, cwd: dir }), {
      keyPath: "nats.passwordFile",
      source: file,
      reason: new RegExp(`cannot read ${path.join(dir, "secrets", "pass").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: no such file`),
    });
    assertConfigError(() => loadConfig({ cwd: dir, env: { VQD_NATS__TLS__CAFILE: dir } }), {
      keyPath: "nats.tls.caFile",
      source: "VQD_NATS__TLS__CAFILE",
      reason: /not (a regular file|one)|is a directory/,
    });
  });

  test("inline secret and secret file both set", () => {
    const { dir, file } = writeConfig(`nats: { token: abc, tokenFile: ${DEFAULT_YAML} }`);
    assertConfigError(() => loadConfig({ file, env: {}, cwd: dir }), {
      keyPath: "nats.tokenFile",
      source: file,
      reason: /set either nats\.token or nats\.tokenFile, not both/,
    });
    // The environment can clear the inline value again.
    assert.equal(loadConfig({ file, cwd: dir, env: { VQD_NATS__TOKEN: "" } }).nats.tokenFile, DEFAULT_YAML);
    assert.throws(() => resolveSecret("x", DEFAULT_YAML), isConfigError);
  });

  test("pipeline with zero steps, a step without a kind, duplicate step names", () => {
    const zero = writeConfig("pipelines:\n  empty: { steps: [] }\n");
    assertConfigError(() => loadConfig({ file: zero.file, env: {}, cwd: zero.dir }), {
      keyPath: "pipelines.empty.steps",
      source: zero.file,
      reason: /at least one step/,
    });
    const noKind = writeConfig("pipelines:\n  p: { steps: [ { name: first } ] }\n");
    assertConfigError(() => loadConfig({ file: noKind.file, env: {}, cwd: noKind.dir }), {
      keyPath: "pipelines.p.steps[0].step",
      reason: /must name a step kind/,
    });
    const numeric = writeConfig("pipelines:\n  p: { steps: [ { step: 42 } ] }\n");
    assertConfigError(() => loadConfig({ file: numeric.file, env: {}, cwd: numeric.dir }), {
      keyPath: "pipelines.p.steps[0].step",
      reason: /must name a step kind.*\(got 42\)/,
    });
    const dup = writeConfig("pipelines:\n  p: { steps: [ { step: transcode }, { step: transcode } ] }\n");
    assertConfigError(() => loadConfig({ file: dup.file, env: {}, cwd: dup.dir }), {
      keyPath: "pipelines.p.steps[1]",
      reason: /appears twice/,
    });
  });

  test("defaultPipeline naming no pipeline", () => {
    assertConfigError(() => loadConfig({ cwd: freshDir(), env: { VQD_DEFAULTPIPELINE: "fast" } }), {
      keyPath: "defaultPipeline",
      source: "VQD_DEFAULTPIPELINE",
      reason: /must name a pipeline \(one of "default", "noop"\) \(got "fast"\)/,
    });
  });

  test("cross-field rules: backoff, heartbeat and prefetch", () => {
    assertConfigError(() => loadConfig({ cwd: freshDir(), env: { VQD_WORKERS__PREFETCHMAX: "3" } }), {
      keyPath: "workers.prefetchMax",
      source: "VQD_WORKERS__PREFETCHMAX",
      reason: /must be >= workers\.prefetch \(6\) \(got 3\)/,
    });
    assertConfigError(() => loadConfig({ cwd: freshDir(), env: { VQD_WORKERS__PREFETCHMAX: "lots" } }), {
      keyPath: "workers.prefetchMax",
      source: "VQD_WORKERS__PREFETCHMAX",
    });
    assertConfigError(() => loadConfig({ cwd: freshDir(), env: { VQD_WORKERS__BACKOFF__MAXMS: "10" } }), {
      keyPath: "workers.backoff.maxMs",
      source: "VQD_WORKERS__BACKOFF__MAXMS",
    });
    assertConfigError(() => loadConfig({ cwd: freshDir(), env: { VQD_NATS__ACKWAITMS: "5000" } }), {
      keyPath: "workers.heartbeatMs",
      source: "VQD_NATS__ACKWAITMS",
      reason: /less than nats\.ackWaitMs/,
    });
  });

  test("a bad secret value is never echoed", () => {
    const { dir, file } = writeConfig("nats: { user: vq, password: 987654321 }");
    const e = assertConfigError(() => loadConfig({ file, env: {}, cwd: dir }), {
      keyPath: "nats.password",
      reason: /must be a string \(got a number\)/,
    });
    assert.ok(!e.message.includes("987654321"));
  });
});

describe("secrets", () => {
  test("credential:NAME resolves against CREDENTIALS_DIRECTORY", () => {
    const dir = freshDir();
    const creds = path.join(dir, "creds");
    fs.mkdirSync(creds);
    fs.writeFileSync(path.join(creds, "nats-pass"), "s3cret-from-systemd\n");
    const config = loadConfig({
      cwd: dir,
      env: { VQD_NATS__USER: "vq", VQD_NATS__PASSWORD_FILE: "credential:nats-pass", CREDENTIALS_DIRECTORY: creds },
    });
    assert.equal(config.nats.passwordFile, path.join(creds, "nats-pass"));
    assert.equal(resolveSecret(config.nats.password, config.nats.passwordFile), "s3cret-from-systemd");
  });

  test("credential:NAME without CREDENTIALS_DIRECTORY is an error naming the key", () => {
    const { dir, file } = writeConfig("nats:\n  credsFile: credential:nats.creds\n");
    assertConfigError(() => loadConfig({ file, env: {}, cwd: dir }), {
      keyPath: "nats.credsFile",
      source: file,
      reason: /CREDENTIALS_DIRECTORY.*not set/,
    });
  });

  test("resolveSecret: inline, none", () => {
    assert.equal(resolveSecret("inline", ""), "inline");
    assert.equal(resolveSecret("", ""), undefined);
    assert.throws(() => resolveSecret("", path.join(root, "missing-secret")), isConfigError);
  });
});

describe("printing", () => {
  test("secret values are redacted, file paths are shown", () => {
    const dir = freshDir();
    const tokenFile = path.join(dir, "token.txt");
    fs.writeFileSync(tokenFile, "tok-file-content");
    const config = loadConfig({
      cwd: dir,
      env: {
        VQD_NATS__USER: "vq",
        VQD_NATS__PASSWORD: "hunter2-password",
        VQD_NATS__TOKEN_FILE: tokenFile,
        VQD_NATS__SERVERS: "nats://admin:url-pass-123@nats1:4222,nats://url-token-456@nats2:4222",
        VQD_PIPELINES__P: "{steps: [{step: upload, options: {apiSecret: s3-secret-789, bucket: b}}]}",
      },
    });
    for (const format of ["yaml", "json"] as const) {
      const text = formatConfig(config, format);
      for (const secret of ["hunter2-password", "url-pass-123", "url-token-456", "s3-secret-789", "tok-file-content"]) {
        assert.ok(!text.includes(secret), `${format} output leaks ${secret}`);
      }
      assert.ok(text.includes("[redacted]"));
      assert.ok(text.includes(tokenFile), `${format} output should show the token file path`);
      assert.ok(text.includes("nats://admin:[redacted]@nats1:4222"));
      assert.ok(text.includes("bucket"));
    }
    const json = JSON.parse(formatConfig(config, "json")) as { nats: Record<string, unknown>; workers: { count: number } };
    assert.equal(json.nats.password, "[redacted]");
    assert.equal(json.nats.token, "", "an unset secret prints as empty");
    assert.equal(json.nats.tokenFile, tokenFile);
    assert.equal(json.nats.user, "vq");
    assert.equal(json.workers.count, 3);
    assert.deepEqual(parseYaml(formatConfig(config, "yaml")), json);
  });

  test("redactConfig copies and does not touch the original", () => {
    const config = loadConfig({ cwd: freshDir(), env: { VQD_NATS__USER: "vq", VQD_NATS__PASSWORD: "pw" } });
    const copy = redactConfig(config) as { nats: { password: string } };
    assert.equal(copy.nats.password, "[redacted]");
    assert.equal(config.nats.password, "pw");
    assert.ok(!Object.isFrozen(copy));
    assert.deepEqual(redactConfig({ a: { mySecretKey: "x", seedFile: "/p", sessionToken: 5 } }), {
      a: { mySecretKey: "[redacted]", seedFile: "/p", sessionToken: "[redacted]" },
    });
  });
});

describe("transcode profiles and webhooks", () => {
  test("defaults: the built-in profiles, ffmpeg from PATH, no webhooks", () => {
    const config = defaultConfig(freshDir());
    assert.equal(config.transcode.ffmpeg, "ffmpeg");
    assert.equal(config.transcode.ffprobe, "ffprobe");
    assert.equal(config.transcode.stallTimeoutMs, 60000);
    assert.deepEqual(Object.keys(config.transcode.profiles).sort(), ["archive-1080p", "web-720p"]);
    assert.deepEqual(config.transcode.profiles["web-720p"], {
      videoCodec: "libx264",
      preset: "veryfast",
      crf: 23,
      maxHeight: 720,
      audioCodec: "aac",
      audioBitrate: "128k",
      container: "mp4",
    });
    assert.equal(config.transcode.profiles["archive-1080p"]?.preset, "slow");
    assert.equal(config.transcode.profiles["archive-1080p"]?.crf, 18);
    assert.deepEqual(config.webhooks, {});
  });

  test("user profiles merge over the built-ins by name; left-out keys take the web-720p values", () => {
    const config = load("transcode:\n  profiles:\n    mobile: { maxHeight: 360, crf: 28 }\n    web-720p: { preset: fast }\n");
    assert.deepEqual(Object.keys(config.transcode.profiles).sort(), ["archive-1080p", "mobile", "web-720p"]);
    assert.equal(config.transcode.profiles.mobile?.maxHeight, 360);
    assert.equal(config.transcode.profiles.mobile?.crf, 28);
    assert.equal(config.transcode.profiles.mobile?.videoCodec, "libx264");
    assert.equal(config.transcode.profiles["web-720p"]?.preset, "fast");
    assert.equal(config.transcode.profiles["web-720p"]?.crf, 23);
  });

  test("bad profile values name the key", () => {
    assertConfigError(() => load("transcode:\n  profiles:\n    mobile: { crf: 99 }\n"), {
      keyPath: "transcode.profiles.mobile.crf",
      reason: /^must be an integer between 0 and 51 \(got 99\)$/,
    });
    assertConfigError(() => load("transcode:\n  profiles:\n    mobile: { preset: turbo }\n"), {
      keyPath: "transcode.profiles.mobile.preset",
      reason: /must be one of "ultrafast"/,
    });
    assertConfigError(() => load("transcode:\n  profiles:\n    mobile: { audioBitrate: 128 }\n"), {
      keyPath: "transcode.profiles.mobile.audioBitrate",
      reason: /must be an audio bit rate/,
    });
    assertConfigError(() => load("transcode:\n  profiles:\n    mobile: { height: 360 }\n"), {
      keyPath: "transcode.profiles.mobile.height",
      reason: /unknown key/,
    });
  });

  test("webhooks: https, or http with allowInsecure; defaults filled in", () => {
    const config = load("webhooks:\n  catalog: { url: https://catalog.internal/hook, tokenFile: credential:catalog }\n  local: { url: http://127.0.0.1:9/x, allowInsecure: true }\n");
    assert.deepEqual(config.webhooks.catalog, {
      url: "https://catalog.internal/hook",
      tokenFile: "credential:catalog",
      allowInsecure: false,
      timeoutMs: 10000,
      caFile: "",
    });
    assert.equal(config.webhooks.local?.allowInsecure, true);
    assertConfigError(() => load("webhooks:\n  catalog: { url: http://catalog.internal/hook }\n"), {
      keyPath: "webhooks.catalog.url",
      reason: /must be an https:\/\/ URL \(http:\/\/ only with allowInsecure: true\)/,
    });
    assertConfigError(() => load("webhooks:\n  catalog: { tokenFile: /t }\n"), { keyPath: "webhooks.catalog.url" });
    assertConfigError(() => load("webhooks:\n  catalog: { url: https://x, timeoutMs: 0 }\n"), { keyPath: "webhooks.catalog.timeoutMs" });
  });
});
