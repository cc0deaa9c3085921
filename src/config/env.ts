/**
 * Environment variables as a config layer: `VQD_<KEY>__<SUBKEY>...`, one `__` between levels,
 * each level matched case-insensitively (single `_` ignored) against the schema's camelCase keys:
 * `VQD_WORKERS__COUNT=4`, `VQD_NATS__SUBJECT_PREFIX=vq`, `VQD_DATADIR=/var/lib/vqd`.
 *
 * Values: keys of string type take the text verbatim (so `*`, `:` and `#` need no quoting);
 * string lists accept a YAML flow list `[a, b]` or a comma-separated string `a,b`; everything
 * else is parsed as a YAML scalar or flow collection (`4`, `true`, `{count: 4}`).
 */
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { ConfigError } from "./errors.js";
import { describeNode, suggest } from "./introspect.js";

export const ENV_PREFIX = "VQD_";
/** VQD_ variables that are not config keys. */
export const RESERVED_ENV_VARS: readonly string[] = ["VQD_CONFIG"];

export interface EnvSetting {
  name: string;
  path: string[];
  value: unknown;
}

/**
 * Maps every `VQD_*` variable in `env` to a key path and a parsed value. `base` is the config
 * assembled so far (used to match the names of existing pipelines case-insensitively).
 */
export function readEnvSettings(env: NodeJS.ProcessEnv, schema: z.ZodType, base: unknown): EnvSetting[] {
  const settings: EnvSetting[] = [];
  const seen = new Map<string, string>();
  const names = Object.keys(env)
    .filter((name) => name.startsWith(ENV_PREFIX) && !RESERVED_ENV_VARS.includes(name))
    .sort();
  for (const name of names) {
    const text = env[name];
    if (text === undefined) continue;
    const { path, leaf } = resolveName(name, schema, base);
    const joined = path.join(".");
    const previous = seen.get(joined);
    if (previous !== undefined) {
      throw new ConfigError({
        keyPath: joined,
        reason: `set by both ${previous} and ${name}; set only one`,
        source: name,
      });
    }
    seen.set(joined, name);
    settings.push({ name, path, value: parseValue(text, leaf, name, joined) });
  }
  // Shallower paths first, so VQD_WORKERS__COUNT refines a VQD_WORKERS={...} mapping.
  return settings.sort((a, b) => a.path.length - b.path.length);
}

type Leaf = "string" | "stringList" | "other";

function resolveName(name: string, schema: z.ZodType, base: unknown): { path: string[]; leaf: Leaf } {
  const segments = name.slice(ENV_PREFIX.length).split("__");
  const path: string[] = [];
  let node = describeNode(schema);
  let existing: unknown = base;
  for (const segment of segments) {
    const normalized = normalize(segment);
    if (node.kind === "object") {
      const key = node.keys.find((k) => normalize(k) === normalized);
      if (key === undefined || normalized === "") throw unknownVariable(name, path, segment, node.keys);
      path.push(key);
      node = describeNode(node.child(key));
    } else if (node.kind === "record") {
      if (segment === "") throw unknownVariable(name, path, segment, []);
      const names = isPlainObject(existing) ? Object.keys(existing) : [];
      const key = names.find((k) => k.toLowerCase() === segment.toLowerCase()) ?? segment.toLowerCase();
      path.push(key);
      node = describeNode(node.value);
    } else {
      throw unknownVariable(name, path, segment, []);
    }
    existing = isPlainObject(existing) ? existing[path[path.length - 1] as string] : undefined;
  }
  return { path, leaf: node.kind === "leaf" ? node.leaf : "other" };
}

function parseValue(text: string, leaf: Leaf, name: string, keyPath: string): unknown {
  if (leaf === "string") return text;
  if (leaf === "stringList" && !text.trimStart().startsWith("[")) {
    return text
      .split(",")
      .map((item) => item.trim())
      .filter((item) => item !== "");
  }
  try {
    return parseYaml(text);
  } catch (e) {
    const detail = (e instanceof Error ? (e.message.split("\n")[0] ?? "") : String(e)).replace(/ at line \d+, column \d+:?$/, "");
    throw new ConfigError({ keyPath, reason: `cannot parse the value as YAML: ${detail}`, source: name, cause: e });
  }
}

function unknownVariable(name: string, matched: string[], segment: string, candidates: readonly string[]): ConfigError {
  const guess = segment === "" ? undefined : suggest(normalize(segment), candidates.map(normalize));
  const key = guess === undefined ? undefined : candidates.find((c) => normalize(c) === guess);
  const typed = name.slice(ENV_PREFIX.length).split("__").slice(0, matched.length);
  const hint = key === undefined ? "" : ` (did you mean ${ENV_PREFIX}${[...typed, key.toUpperCase()].join("__")}?)`;
  const where = matched.length === 0 ? "" : ` under ${matched.join(".")}`;
  return new ConfigError({
    keyPath: [...matched, segment.toLowerCase()].filter((s) => s !== "").join("."),
    reason: `environment variable ${name} names no config key${where}${hint}`,
    source: name,
  });
}

function normalize(segment: string): string {
  return segment.replaceAll("_", "").toLowerCase();
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
