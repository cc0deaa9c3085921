/**
 * scripts/install.sh and scripts/uninstall.sh: valid bash (shellcheck-clean where shellcheck is
 * installed), a --dry-run that prints every step and changes nothing, and a real install into a
 * staging directory (--destdir) whose units, config and `vqd` command work.
 */
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const INSTALL = join(repo, "scripts", "install.sh");
const UNINSTALL = join(repo, "scripts", "uninstall.sh");
const tmp = mkdtempSync(join(tmpdir(), "vqd-install-"));
const userExists = spawnSync("getent", ["passwd", "vqd"]).status === 0;

function bash(script: string, args: readonly string[]): SpawnSyncReturns<string> {
  return spawnSync("bash", [script, ...args], { encoding: "utf8", cwd: tmp, timeout: 120_000 });
}

describe("install and uninstall scripts", () => {
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it("are valid bash", () => {
    for (const s of [INSTALL, UNINSTALL]) {
      const r = spawnSync("bash", ["-n", s], { encoding: "utf8" });
      assert.equal(r.status, 0, `${s}: ${r.stderr}`);
    }
  });

  it("are shellcheck-clean", { skip: spawnSync("shellcheck", ["--version"]).status === 0 ? false : "shellcheck is not installed" }, () => {
    const r = spawnSync("shellcheck", ["-x", INSTALL, UNINSTALL], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  it("install --dry-run prints each step and changes nothing", () => {
    const prefix = join(tmp, "dry", "opt", "vqd");
    const bindir = join(tmp, "dry", "bin");
    const etcBefore = existsSync("/etc/vqd");
    const r = bash(INSTALL, ["--dry-run", "--systemctl", "yes", "--prefix", prefix, "--bindir", bindir]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const out = r.stdout;
    const node = spawnSync("readlink", ["-f", process.execPath], { encoding: "utf8" }).stdout.trim();
    for (const expected of [
      "+ npm run build",
      `+ cp -R -- ${repo}/dist/src ${prefix}.new/dist/`,
      `+ npm --prefix ${prefix}.new prune --omit=dev`,
      `+ mv -- ${prefix}.new ${prefix}`,
      `+ write /etc/vqd/vqd.yaml (mode 0640, owner root:vqd):`,
      "    | dataDir: /var/lib/vqd",
      "+ write /etc/systemd/system/vqd.service (mode 0644, owner root:root):",
      `    | ExecStart=${node} --max-semi-space-size=2 ${prefix}/dist/src/bin/vqd.js start`,
      `    | ExecStart=${node} --max-semi-space-size=2 ${prefix}/dist/src/bin/vqd.js worker`,
      `+ write ${bindir}/vqd (mode 0755, owner root:root):`,
      `    | exec ${node} ${prefix}/dist/src/bin/vqd.js "$@"`,
      "+ systemctl daemon-reload",
      "+ systemctl enable --now vqd.service",
    ]) {
      if (expected.includes("/etc/vqd/vqd.yaml") && etcBefore) continue; // kept when present
      assert.ok(out.includes(expected), `missing ${JSON.stringify(expected)} in:\n${out}`);
    }
    if (!userExists) assert.match(out, /^\+ useradd --system --user-group --home-dir \/var\/lib\/vqd --no-create-home --shell \S*nologin .* vqd$/m);
    // Nothing happened.
    assert.equal(existsSync(join(tmp, "dry")), false);
    assert.equal(existsSync("/etc/vqd"), etcBefore);
    assert.equal(spawnSync("getent", ["passwd", "vqd"]).status === 0, userExists);

    const worker = bash(INSTALL, ["--dry-run", "--systemctl", "yes", "--worker", "--skip-build", "--prefix", prefix]);
    assert.equal(worker.status, 0, worker.stderr);
    assert.match(worker.stdout, /^\+ systemctl enable --now vqd-worker\.service$/m);
    assert.doesNotMatch(worker.stdout, /npm run build/);
    const noStart = bash(INSTALL, ["--dry-run", "--systemctl", "yes", "--no-start", "--skip-build", "--prefix", prefix]);
    assert.match(noStart.stdout, /^\+ systemctl daemon-reload$/m);
    assert.doesNotMatch(noStart.stdout, /systemctl enable/);
  });

  it("refuses unsafe paths and unknown options (both scripts, through their shared lib/common.sh)", () => {
    const cases: [string, string[], RegExp][] = [
      ["install", ["--prefix", "relative/dir"], /--prefix must be an absolute path/],
      ["install", ["--prefix", "/"], /--prefix must be an absolute path/],
      ["install", ["--prefix", "/opt/../etc"], /--prefix must be an absolute path/],
      ["install", ["--prefix", "/opt/v qd"], /--prefix must be an absolute path/],
      ["install", ["--systemctl", "bogus"], /--systemctl takes auto, yes or no \(got 'bogus'\)/],
      ["install", ["--bogus"], /unknown option: --bogus/],
      ["uninstall", ["--bindir", "bin"], /--bindir must be an absolute path/],
      ["uninstall", ["--systemctl", "maybe"], /--systemctl takes auto, yes or no \(got 'maybe'\)/],
      ["uninstall", ["--worker"], /unknown option: --worker/],
    ];
    for (const [script, args, message] of cases) {
      const r = bash(script === "install" ? INSTALL : UNINSTALL, ["--dry-run", ...args]);
      assert.notEqual(r.status, 0, args.join(" "));
      assert.match(r.stderr, new RegExp(`^${script}: ${message.source}`, "m"));
      assert.equal(r.stdout.includes("+ "), false, "nothing was attempted");
    }
  });

  it("installs into a staging directory (--destdir): units verify, the config loads, the command runs", () => {
    const dest = join(tmp, "dest");
    const r = bash(INSTALL, ["--destdir", dest, "--skip-build"]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const prefix = join(dest, "opt", "vqd");
    assert.ok(existsSync(join(prefix, ".vqd-install")));
    assert.ok(existsSync(join(prefix, "dist", "src", "bin", "vqd.js")));
    assert.ok(!existsSync(join(prefix, "dist", "test")), "tests are not installed");
    assert.ok(existsSync(join(prefix, "node_modules", "better-sqlite3")));
    assert.ok(!existsSync(join(prefix, "node_modules", "typescript")), "dev dependencies are pruned");
    const yaml = join(dest, "etc", "vqd", "vqd.yaml");
    assert.equal(statSync(yaml).mode & 0o777, 0o640);
    assert.equal(statSync(join(dest, "etc", "credstore")).mode & 0o777, 0o700);

    // The installed program runs, and reads the installed config.
    const print = spawnSync(process.execPath, [join(prefix, "dist", "src", "bin", "vqd.js"), "config", "print", "--json"], {
      encoding: "utf8",
      env: { PATH: process.env.PATH, VQD_CONFIG: yaml },
    });
    assert.equal(print.status, 0, print.stderr);
    const config = JSON.parse(print.stdout) as { dataDir: string; database: { file: string } };
    assert.equal(config.dataDir, "/var/lib/vqd");
    assert.equal(config.database.file, "/var/lib/vqd/vqd.db");

    const units = ["vqd.service", "vqd-worker.service"].map((u) => join(dest, "etc", "systemd", "system", u));
    if (spawnSync("systemd-analyze", ["--version"]).status === 0) {
      const verify = spawnSync("systemd-analyze", ["verify", ...units], { encoding: "utf8" });
      assert.equal(verify.status, 0, verify.stdout + verify.stderr);
    }
    assert.match(readFileSync(join(dest, "usr", "local", "bin", "vqd"), "utf8"), /VQD_CONFIG:=\/etc\/vqd\/vqd\.yaml/);

    // Again (an upgrade): the edited config is kept, the program replaced.
    writeFileSync(yaml, "dataDir: /var/lib/vqd\nworkers:\n  count: 2\n");
    const again = bash(INSTALL, ["--destdir", dest, "--skip-build"]);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /keeping .*vqd\.yaml/);
    assert.equal(readFileSync(yaml, "utf8"), "dataDir: /var/lib/vqd\nworkers:\n  count: 2\n");
    assert.ok(!existsSync(`${prefix}.old`) && !existsSync(`${prefix}.new`));
  });

  it("uninstall --dry-run keeps data and config unless --purge, and changes nothing", () => {
    const prefix = join(tmp, "none", "opt", "vqd");
    const keep = bash(UNINSTALL, ["--dry-run", "--systemctl", "yes", "--prefix", prefix, "--bindir", join(tmp, "none", "bin")]);
    assert.equal(keep.status, 0, keep.stdout + keep.stderr);
    assert.match(keep.stdout, /^\+ rm -f -- \/etc\/systemd\/system\/vqd\.service$/m);
    assert.match(keep.stdout, /^\+ systemctl daemon-reload$/m);
    assert.match(keep.stdout, new RegExp(`^\\+ rm -rf -- ${prefix}$`, "m"));
    assert.doesNotMatch(keep.stdout, /^\+ .*(\/var\/lib\/vqd|\/etc\/vqd|userdel)/m);
    assert.match(keep.stdout, /kept \/var\/lib\/vqd/);

    const purge = bash(UNINSTALL, ["--dry-run", "--purge", "--prefix", prefix]);
    assert.equal(purge.status, 0, purge.stderr);
    assert.match(purge.stdout, /^\+ rm -rf -- \/var\/lib\/vqd \/etc\/vqd$/m);
    assert.match(purge.stdout, /^\+ userdel vqd$/m);
  });

  it("uninstall refuses to delete a directory install.sh did not create", () => {
    const foreign = join(tmp, "foreign");
    rmSync(foreign, { recursive: true, force: true });
    spawnSync("mkdir", ["-p", foreign]);
    writeFileSync(join(foreign, "precious.txt"), "keep me\n");
    const r = bash(UNINSTALL, ["--prefix", foreign, "--systemctl", "no"]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /no \.vqd-install marker/);
    assert.ok(existsSync(join(foreign, "precious.txt")));
  });

  it("uninstall removes a --destdir style tree it recognises", () => {
    // A real (not dry) uninstall against directories under tmp: the program and the command go.
    const dest = join(tmp, "dest2");
    const r = bash(INSTALL, ["--destdir", dest, "--skip-build"]);
    assert.equal(r.status, 0, r.stderr);
    const prefix = join(dest, "opt", "vqd");
    const bindir = join(dest, "usr", "local", "bin");
    const u = bash(UNINSTALL, ["--prefix", prefix, "--bindir", bindir, "--systemctl", "no"]);
    assert.equal(u.status, 0, u.stdout + u.stderr);
    assert.equal(existsSync(prefix), false);
    assert.equal(existsSync(join(bindir, "vqd")), false);
    assert.ok(existsSync(join(dest, "etc", "vqd", "vqd.yaml")), "the config is kept");
  });
});
