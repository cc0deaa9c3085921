/**
 * `vqd doctor`: checks what the daemon needs, one result per check. A config that does not load
 * is a failed check like any other (the line names the key): the doctor still reports what it can
 * check without one (node, systemd-notify) and exits 1, where other commands exit 78 on a bad
 * config. The doctor's exit code answers one question, "is anything broken?".
 */
import { isConfigError, redactConfig, REDACTED, resolveSecret, type Config } from "../config/index.js";
import {
  checkAllowedRoots,
  checkDatabase,
  checkDataDir,
  checkMediaTool,
  checkNats,
  checkNatsServer,
  checkNode,
  checkOutputSpace,
  checkSpawnHelper,
  checkSystemdNotify,
  DEFAULT_SPACE,
  type SpaceThresholds,
} from "./checks.js";
import { fail, makeReport, ok, type CheckResult, type DoctorReport } from "./report.js";

export { formatReport, type CheckResult, type CheckStatus, type DoctorReport } from "./report.js";
export { DEFAULT_SPACE, type SpaceThresholds } from "./checks.js";

export interface DoctorOptions {
  /** Loads the configuration; a thrown ConfigError becomes the failed `config` check. */
  readonly loadConfig: () => Config;
  /** Where the config came from, for the `config` line ("defaults" when nothing was given). */
  readonly configSource?: string;
  readonly space?: SpaceThresholds;
}

export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const results: CheckResult[] = [checkNode()];
  let config: Config | undefined;
  try {
    config = options.loadConfig();
    results.push(ok("config", `valid (${options.configSource ?? "built-in defaults"})`));
  } catch (err) {
    const message = (err as Error).message;
    const source = isConfigError(err) ? err.source : undefined;
    results.push(fail("config", message, source && source !== "defaults" ? `correct it in ${source}; the other checks need a valid config` : "correct the configuration; the other checks need a valid config"));
  }
  if (config) {
    const c = config;
    // Independent checks run concurrently; the output keeps this order.
    const groups = await Promise.all([
      checkNatsServer(c),
      checkMediaTool(c, "ffmpeg"),
      checkMediaTool(c, "ffprobe"),
      checkSystemdNotify(),
      checkSpawnHelper(c),
      checkNats(c),
      checkDataDir(c),
      checkDatabase(c),
      checkOutputSpace(c, options.space ?? DEFAULT_SPACE),
      checkAllowedRoots(c),
    ]);
    const scrub = scrubber(c);
    results.push(...groups.flat().map((r) => ({ ...r, detail: scrub(r.detail), ...(r.fix ? { fix: scrub(r.fix) } : {}) })));
  } else {
    results.push(await checkSystemdNotify());
  }
  return makeReport(results);
}

/**
 * Messages from outside (the NATS client, the server) may quote a server URL with credentials in
 * it (`nats://user:pass@host`) or, in theory, a secret: replace both before anything is printed.
 */
function scrubber(config: Config): (text: string) => string {
  const replacements: [string, string][] = [];
  for (const url of config.nats.servers) {
    const shown = redactConfig(url) as string;
    if (shown !== url) replacements.push([url, shown]);
  }
  const n = config.nats;
  for (const [inline, file] of [
    [n.password, n.passwordFile],
    [n.token, n.tokenFile],
  ] as const) {
    try {
      const secret = resolveSecret(inline, file);
      if (secret && secret.length >= 4) replacements.push([secret, REDACTED]);
    } catch {
      // unreadable: the nats line reports it
    }
  }
  return (text) => replacements.reduce((t, [from, to]) => t.split(from).join(to), text);
}
