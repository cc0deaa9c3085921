/**
 * Printing a config without its secrets (`vqd config print`).
 *
 * A secret is the value of any key whose name matches /password|token|secret|seed/i, except keys
 * ending in `File` (those hold paths, which are shown). Credentials embedded in URLs
 * (`nats://user:pass@host`, `nats://token@host`) are redacted too.
 */
import { stringify as stringifyYaml } from "yaml";
import { isSecretKey } from "./schema.js";

export const REDACTED = "[redacted]";

export type ConfigFormat = "yaml" | "json";

/** A deep copy of `config` with every secret value replaced by "[redacted]". Empty values stay "". */
export function redactConfig(config: unknown): unknown {
  return redactValue(config, undefined);
}

/** The redacted config as YAML or JSON text (ending in a newline). */
export function formatConfig(config: unknown, format: ConfigFormat): string {
  const redacted = redactConfig(config);
  switch (format) {
    case "yaml":
      return stringifyYaml(redacted, { lineWidth: 0 });
    case "json":
      return `${JSON.stringify(redacted, null, 2)}\n`;
    default:
      throw new TypeError(`unknown config format ${JSON.stringify(format)} (expected "yaml" or "json")`);
  }
}

function redactValue(value: unknown, key: string | undefined): unknown {
  if (key !== undefined && isSecretKey(key) && value !== "" && value !== undefined && value !== null) {
    return REDACTED;
  }
  if (Array.isArray(value)) return value.map((item) => redactValue(item, undefined));
  if (typeof value === "string") return redactUrlCredentials(value);
  if (value !== null && typeof value === "object") {
    const copy: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) copy[k] = redactValue(v, k);
    return copy;
  }
  return value;
}

const URL_USERINFO = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^@/?#]+)@/;

/** `scheme://user:pass@host` -> `scheme://user:[redacted]@host`; `scheme://token@host` -> `scheme://[redacted]@host`. */
function redactUrlCredentials(value: string): string {
  return value.replace(URL_USERINFO, (_match, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(":");
    const redacted = colon === -1 ? REDACTED : `${userinfo.slice(0, colon)}:${REDACTED}`;
    return `${scheme}${redacted}@`;
  });
}
