/**
 * The unit files: `systemd-analyze verify` accepts both, `systemd-analyze security` scores the
 * daemon's at 2.0 or lower, and the settings the rest of vqd relies on are there (Type=notify with
 * NotifyAccess=all for src/daemon/systemd-notify.ts, a stop timeout longer than the drain, no
 * MemoryDenyWriteExecute for V8). Skipped where systemd's tools are not installed (setup.sh
 * installs them).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { defaultConfig } from "../../src/config/index.js";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const UNITS = ["vqd.service", "vqd-worker.service"].map((u) => join(repo, "systemd", u));
const hasAnalyze = spawnSync("systemd-analyze", ["--version"]).status === 0;
const skip = hasAnalyze ? false : "systemd-analyze is not installed (scripts/setup.sh installs it)";

/** Key=value settings of the [Service] section (a key given twice keeps every value). */
function serviceSettings(file: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let section = "";
  for (const raw of readFileSync(file, "utf8").split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) {
      section = s[1] as string;
      continue;
    }
    const eq = line.indexOf("=");
    if (section !== "Service" || eq < 0) continue;
    const key = line.slice(0, eq);
    settings.set(key, [...(settings.get(key) ?? []), line.slice(eq + 1)]);
  }
  return settings;
}

const seconds = (v: string): number => {
  const m = /^(\d+)(s|min)?$/.exec(v);
  assert.ok(m, `unsupported time span ${v}`);
  return Number(m[1]) * (m[2] === "min" ? 60 : 1);
};

describe("systemd units", () => {
  it("systemd-analyze verify accepts both units", { skip }, () => {
    const r = spawnSync("systemd-analyze", ["verify", ...UNITS], { encoding: "utf8" });
    // The only acceptable complaint is the program not being installed on this machine.
    const complaints = `${r.stdout}${r.stderr}`
      .split("\n")
      .filter((l) => l.trim() !== "" && !/(\/usr\/bin\/node|\/opt\/vqd).*(No such file|not executable|is not executable)/.test(l) && !/Command .* is not executable/.test(l));
    assert.deepEqual(complaints, [], `${r.stdout}${r.stderr}`);
  });

  for (const unit of UNITS) {
    it(`systemd-analyze security scores ${unit.split("/").pop()} at 2.0 or lower`, { skip }, () => {
      const r = spawnSync("systemd-analyze", ["security", "--offline=true", "--no-pager", unit], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      const m = /Overall exposure level for \S+: (\d+\.\d+)/.exec(r.stdout);
      assert.ok(m, r.stdout.slice(-500));
      assert.ok(Number(m[1]) <= 2.0, `exposure ${m[1]}:\n${r.stdout}`);
    });
  }

  it("carry what vqd relies on: notify access, drain time, V8's executable memory, a dedicated user", () => {
    const drainMs = defaultConfig().workers.shutdownDeadlineMs;
    for (const unit of UNITS) {
      const s = serviceSettings(unit);
      const one = (k: string): string => {
        const v = s.get(k);
        assert.ok(v && v.length > 0, `${unit}: ${k}= missing`);
        return v[v.length - 1] as string;
      };
      assert.equal(one("Type"), "notify");
      // The notifications come from a systemd-notify child, not from the main pid.
      assert.equal(one("NotifyAccess"), "all");
      assert.ok(seconds(one("WatchdogSec")) > 0);
      assert.ok(seconds(one("TimeoutStopSec")) * 1000 >= drainMs + 10_000, "TimeoutStopSec leaves the drain deadline plus a margin");
      assert.equal(one("KillMode"), "mixed");
      assert.equal(one("Restart"), "on-failure");
      assert.equal(one("User"), "vqd");
      assert.equal(one("StateDirectory"), "vqd");
      assert.equal(one("ConfigurationDirectory"), "vqd");
      assert.match(one("Environment"), /VQD_CONFIG=\/etc\/vqd\/vqd\.yaml/);
      assert.match(one("Environment"), /VQD_DATADIR=\/var\/lib\/vqd/);
      assert.equal(one("MemoryDenyWriteExecute"), "no");
      assert.equal(one("CapabilityBoundingSet"), "");
      assert.equal(one("UMask"), "0077");
      assert.equal(one("ProtectSystem"), "strict");
      assert.deepEqual(s.get("SystemCallFilter"), ["@system-service", "~@privileged @resources"]);
      assert.equal(one("RestrictAddressFamilies"), "AF_UNIX AF_INET AF_INET6");
      const creds = s.get("LoadCredential") ?? [];
      for (const c of ["vqd-nats-password", "vqd-nats-token", "vqd-webhook-token"]) assert.ok(creds.includes(c), `${unit}: LoadCredential=${c}`);
    }
    assert.match(serviceSettings(UNITS[0] as string).get("ExecStart")?.[0] ?? "", / start$/);
    assert.match(serviceSettings(UNITS[1] as string).get("ExecStart")?.[0] ?? "", / worker$/);
  });
});
