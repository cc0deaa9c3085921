/**
 * Loading the config: schema defaults < the config file (`--config FILE`, else `VQD_CONFIG`)
 * < `VQD_*` environment variables. The result is validated (types, ranges, unknown keys,
 * cross-field rules), its paths are made absolute, derived paths are filled in, and it is
 * deeply frozen. Every failure is a ConfigError naming the key and where its value came from.
 */
import fs from "node:fs";
import path from "node:path";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from "yaml";
import type { z } from "zod";
import { isPlainObject, readEnvSettings, type EnvSetting } from "./env.js";
import { ConfigError } from "./errors.js";
import { describeNode, keysAt, suggest } from "./introspect.js";
import { configSchema, isSecretKey, type Config, type NatsConfig, type ParsedConfig } from "./schema.js";
import { assertReadableFile, describeFsError, resolveCredentialPath } from "./secrets.js";

export interface LoadOptions {
  /** Config file (CLI `--config FILE`); when absent, `env.VQD_CONFIG` is used if set. */
  file?: string;
  /** Environment to read `VQD_*`, `VQD_CONFIG` and `CREDENTIALS_DIRECTORY` from (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Directory relative paths resolve against (default: process.cwd()). */
  cwd?: string;
}

export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const layers: Layer[] = [];

  const fromOption = options.file !== undefined && options.file !== "";
  const file = fromOption ? options.file : env.VQD_CONFIG || undefined;
  if (file !== undefined) layers.push(readFileLayer(path.resolve(cwd, file), fromOption ? undefined : "VQD_CONFIG"));

  const settings = readEnvSettings(env, configSchema, mergeLayers(layers));
  if (settings.length > 0) layers.push(envLayer(settings));

  const provenance = new Provenance(layers);
  const result = configSchema.safeParse(mergeLayers(layers), { reportInput: true });
  if (!result.success) throw issueToError(result.error.issues, provenance);
  checkCrossFieldRules(result.data, provenance);
  return deepFreeze(derive(result.data, cwd, env, provenance));
}

/** The schema defaults with derived paths filled in (relative to `cwd`), deeply frozen. */
export function defaultConfig(cwd: string = process.cwd()): Config {
  return deepFreeze(derive(configSchema.parse({}), path.resolve(cwd), {}, new Provenance([])));
}

// ---------------------------------------------------------------------------------------------
// Layers and where a value came from
// ---------------------------------------------------------------------------------------------

interface Layer {
  value: Record<string, unknown>;
  file?: { path: string; doc: Document; lines: LineCounter };
  env?: EnvSetting[];
}

type Segment = string | number;

interface Location {
  source: string;
  line?: number;
}

function readFileLayer(file: string, namedBy: string | undefined): Layer {
  const namedBySuffix = namedBy === undefined ? "" : ` (named by ${namedBy})`;
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError({
      keyPath: "",
      reason: `cannot read the config file: ${describeFsError(e)}${namedBySuffix}`,
      source: file,
      cause: e,
    });
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true });
  const [error] = doc.errors;
  if (error !== undefined) {
    const pos = error.linePos?.[0];
    const detail = (error.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "");
    throw new ConfigError({
      keyPath: "",
      reason: `malformed YAML${pos ? ` at line ${pos.line}, column ${pos.col}` : ""}: ${detail}`,
      source: file,
      line: pos?.line,
      cause: error,
    });
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) return { value: {}, file: { path: file, doc, lines } };
  if (!isPlainObject(value)) {
    throw new ConfigError({
      keyPath: "",
      reason: `the file must hold a mapping of keys to values (got ${describeInput(value, false)})`,
      source: file,
      line: 1,
    });
  }
  return { value: dropEmptyKeys(value, configSchema) as Record<string, unknown>, file: { path: file, doc, lines } };
}

/** A key written with no value (`workers:`) means "use the default", wherever the schema has fixed keys. */
function dropEmptyKeys(value: unknown, schema: z.ZodType): unknown {
  const node = describeNode(schema);
  if (node.kind === "object" && isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(value)) {
      if (child === null) continue;
      out[key] = node.keys.includes(key) ? dropEmptyKeys(child, node.child(key)) : child;
    }
    return out;
  }
  if (node.kind === "record" && isPlainObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([key, child]) => [key, dropEmptyKeys(child, node.value)]));
  }
  if (node.kind === "array" && Array.isArray(value)) return value.map((item) => dropEmptyKeys(item, node.element));
  return value;
}

function envLayer(settings: EnvSetting[]): Layer {
  let value: Record<string, unknown> = {};
  for (const setting of settings) value = setIn(value, setting.path, setting.value);
  return { value, env: settings };
}

function setIn(target: Record<string, unknown>, keys: readonly string[], value: unknown): Record<string, unknown> {
  const [key, ...rest] = keys;
  if (key === undefined) return target;
  const child = target[key];
  return { ...target, [key]: rest.length === 0 ? value : setIn(isPlainObject(child) ? child : {}, rest, value) };
}

function mergeLayers(layers: readonly Layer[]): Record<string, unknown> {
  return layers.reduce<Record<string, unknown>>((acc, layer) => deepMerge(acc, layer.value), {});
}

/** Mappings merge key by key; anything else (including lists) replaces. */
function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}

/** Finds the layer (highest precedence first) that supplied the value at a key path. */
class Provenance {
  constructor(private readonly layers: readonly Layer[]) {}

  locate(keys: readonly Segment[]): Location {
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const layer = this.layers[i];
      if (layer === undefined || !supplies(layer.value, keys)) continue;
      if (layer.env !== undefined) return { source: envSource(layer.env, keys) };
      if (layer.file !== undefined) return { source: layer.file.path, line: lineOf(layer.file, keys) };
    }
    return { source: "defaults" };
  }

  /** The source of the first of `paths` that some layer supplied, else "defaults". */
  firstSupplied(paths: readonly (readonly Segment[])[]): Location {
    for (const keys of paths) {
      const at = this.locate(keys);
      if (at.source !== "defaults") return at;
    }
    return { source: "defaults" };
  }
}

function supplies(value: unknown, keys: readonly Segment[]): boolean {
  let current = value;
  for (const key of keys) {
    if (Array.isArray(current) && typeof key === "number") {
      if (key >= current.length) return false;
      current = current[key];
    } else if (isPlainObject(current)) {
      if (!Object.hasOwn(current, String(key))) return false;
      current = current[String(key)];
    } else {
      return true; // a scalar or list where the path goes deeper: this layer set it
    }
  }
  return true;
}

function envSource(settings: readonly EnvSetting[], keys: readonly Segment[]): string {
  const target = keys.map(String);
  const isPrefix = (a: readonly string[], b: readonly string[]) => a.length <= b.length && a.every((k, i) => k === b[i]);
  const covering = settings.filter((s) => isPrefix(s.path, target)).sort((a, b) => b.path.length - a.path.length)[0];
  const inside = settings.find((s) => isPrefix(target, s.path));
  return (covering ?? inside)?.name ?? "environment";
}

function lineOf(file: NonNullable<Layer["file"]>, keys: readonly Segment[]): number | undefined {
  let node: unknown = file.doc.contents;
  let offset: number | undefined;
  for (const key of keys) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(key));
      if (pair === undefined) break;
      offset = isScalar(pair.key) ? pair.key.range?.[0] : undefined;
      node = pair.value;
    } else if (isSeq(node) && typeof key === "number") {
      const item: unknown = node.items[key];
      if (!isMap(item) && !isSeq(item) && !isScalar(item)) break;
      offset = item.range?.[0];
      node = item;
    } else {
      break;
    }
  }
  return offset === undefined ? undefined : file.lines.linePos(offset).line;
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

export function formatKeyPath(keys: readonly PropertyKey[]): string {
  let out = "";
  for (const key of keys) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out;
}

function issueToError(issues: readonly z.core.$ZodIssue[], provenance: Provenance): ConfigError {
  // An unknown key is usually a typo and explains other problems, so report it first.
  const issue = issues.find((i) => i.code === "unrecognized_keys") ?? issues[0];
  if (issue === undefined) return new ConfigError({ keyPath: "", reason: "is invalid", source: "defaults" });
  const parent = issue.path.filter((k): k is Segment => typeof k === "string" || typeof k === "number");

  if (issue.code === "unrecognized_keys") {
    const [key = "", ...more] = issue.keys;
    const keys = [...parent, key];
    const guess = suggest(key, keysAt(configSchema, parent));
    const also = more.length === 0 ? "" : ` (also unknown here: ${more.map((k) => JSON.stringify(k)).join(", ")})`;
    const reason = `unknown key${guess === undefined ? "" : ` (did you mean "${guess}"?)`}${also}`;
    return new ConfigError({ keyPath: formatKeyPath(keys), reason, ...provenance.locate(keys) });
  }

  const last = parent[parent.length - 1];
  const secret = typeof last === "string" && isSecretKey(last);
  const got = issue.input === undefined ? "nothing" : describeInput(issue.input, secret);
  const reason =
    issue.code === "invalid_key"
      ? `${issue.issues[0]?.message ?? "is not an allowed name"} (got ${JSON.stringify(last)})`
      : `${issue.message} (got ${got})`;
  return new ConfigError({ keyPath: formatKeyPath(parent), reason, ...provenance.locate(parent) });
}

/** A short rendering of a bad value; secrets are described by type only. */
function describeInput(value: unknown, secret: boolean): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return secret ? "a list" : truncate(JSON.stringify(value));
  if (typeof value === "object") return secret ? "a mapping" : truncate(JSON.stringify(value));
  if (secret) return `a ${typeof value}`;
  return typeof value === "string" ? truncate(JSON.stringify(value)) : String(value);
}

function truncate(text: string): string {
  return text.length <= 60 ? text : `${text.slice(0, 57)}...`;
}

// ---------------------------------------------------------------------------------------------
// Cross-field rules
// ---------------------------------------------------------------------------------------------

function checkCrossFieldRules(config: ParsedConfig, provenance: Provenance): void {
  /** Fails at the first key path, blaming whichever of the related paths a layer supplied. */
  const fail = (paths: readonly (readonly Segment[])[], reason: string): never => {
    throw new ConfigError({ keyPath: formatKeyPath(paths[0] ?? []), reason, ...provenance.firstSupplied(paths) });
  };
  const { nats, workers, lanes, pipelines } = config;

  for (const [inline, file] of [
    ["password", "passwordFile"],
    ["token", "tokenFile"],
  ] as const) {
    if (nats[inline] !== "" && nats[file] !== "") {
      fail([["nats", file], ["nats", inline]], `set either nats.${inline} or nats.${file}, not both`);
    }
  }
  const hasPassword = nats.password !== "" || nats.passwordFile !== "";
  if (nats.user !== "" && !hasPassword) {
    fail([["nats", "user"]], "a NATS user needs nats.password or nats.passwordFile");
  }
  if (nats.user === "" && hasPassword) {
    fail([["nats", "user"], ["nats", "password"], ["nats", "passwordFile"]], "must be set when a NATS password is");
  }
  if ((nats.tls.certFile === "") !== (nats.tls.keyFile === "")) {
    fail([["nats", "tls", "certFile"], ["nats", "tls", "keyFile"]], "set both nats.tls.certFile and nats.tls.keyFile, or neither");
  }

  if (workers.backoff.maxMs < workers.backoff.initialMs) {
    fail(
      [["workers", "backoff", "maxMs"], ["workers", "backoff", "initialMs"]],
      `must be >= workers.backoff.initialMs (${workers.backoff.initialMs}) (got ${workers.backoff.maxMs})`,
    );
  }
  if (workers.prefetchMax < workers.prefetch) {
    fail([["workers", "prefetchMax"], ["workers", "prefetch"]], `must be >= workers.prefetch (${workers.prefetch}) (got ${workers.prefetchMax})`);
  }
  if (workers.heartbeatMs >= nats.ackWaitMs) {
    fail(
      [["workers", "heartbeatMs"], ["nats", "ackWaitMs"]],
      `must be less than nats.ackWaitMs (${nats.ackWaitMs}), or jobs are redelivered while still running (got ${workers.heartbeatMs})`,
    );
  }

  if (!lanes[lanes.default].enabled) {
    fail([["lanes", "default"], ["lanes", lanes.default, "enabled"]], `names lane "${lanes.default}", which is disabled`);
  }

  if (!Object.hasOwn(pipelines, config.defaultPipeline)) {
    const names = Object.keys(pipelines).map((n) => JSON.stringify(n)).join(", ");
    fail([["defaultPipeline"]], `must name a pipeline (one of ${names}) (got ${JSON.stringify(config.defaultPipeline)})`);
  }
  for (const [name, pipeline] of Object.entries(pipelines)) {
    const seen = new Map<string, number>();
    pipeline.steps.forEach((step, index) => {
      const id = step.name ?? step.step;
      const first = seen.get(id);
      if (first !== undefined) {
        fail(
          [["pipelines", name, "steps", index]],
          `step "${id}" appears twice (also steps[${first}]); give one of them a distinct name`,
        );
      }
      seen.set(id, index);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Derived and absolute paths
// ---------------------------------------------------------------------------------------------

function derive(parsed: ParsedConfig, cwd: string, env: NodeJS.ProcessEnv, provenance: Provenance): Config {
  const abs = (p: string) => path.resolve(cwd, p);
  const dataDir = abs(parsed.dataDir);
  const orDerived = (p: string, name: string) => (p === "" ? path.join(dataDir, name) : abs(p));

  /** A secret/TLS file key: `credential:NAME` expanded, made absolute, and checked readable now. */
  const existingFile = (keys: readonly string[], value: string): string => {
    if (value === "") return "";
    const where = { keyPath: formatKeyPath(["nats", ...keys]), ...provenance.locate(["nats", ...keys]) };
    const file = abs(resolveCredentialPath(value, env, where));
    assertReadableFile(file, where);
    return file;
  };
  const { nats: n } = parsed;
  const nats: NatsConfig = {
    ...n,
    embedded: {
      ...n.embedded,
      // A bare command name is looked up in PATH; only a path is made absolute.
      binary: /[\\/]/.test(n.embedded.binary) ? abs(n.embedded.binary) : n.embedded.binary,
      storeDir: orDerived(n.embedded.storeDir, "nats"),
    },
    passwordFile: existingFile(["passwordFile"], n.passwordFile),
    tokenFile: existingFile(["tokenFile"], n.tokenFile),
    credsFile: existingFile(["credsFile"], n.credsFile),
    nkeySeedFile: existingFile(["nkeySeedFile"], n.nkeySeedFile),
    tls: {
      caFile: existingFile(["tls", "caFile"], n.tls.caFile),
      certFile: existingFile(["tls", "certFile"], n.tls.certFile),
      keyFile: existingFile(["tls", "keyFile"], n.tls.keyFile),
    },
  };

  return {
    ...parsed,
    dataDir,
    database: {
      ...parsed.database,
      file: parsed.database.file === ":memory:" ? ":memory:" : orDerived(parsed.database.file, "vqd.db"),
    },
    nats,
    allowedRoots: parsed.allowedRoots.map(abs),
    outputDir: orDerived(parsed.outputDir, "outputs"),
    reportsDir: orDerived(parsed.reportsDir, "reports"),
  };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
