/**
 * The configuration schema: every key, its type, its allowed range and its default.
 * `config/default.yaml` is the commented copy of these defaults; a test keeps the two equal.
 *
 * Every object is strict (unknown keys are errors) and every error message is phrased as
 * "must be ..." so the loader can append "(got X)" and the key's source.
 */
import { validate as validateCron, validateDetailed as validateCronDetailed } from "node-cron";
import { z } from "zod";
import { LANES, type Lane } from "../domain/index.js";

// ---------------------------------------------------------------------------------------------
// The Config type (explicit, so editors show named sub-types; checked against the schema below).
// Properties are readonly because a loaded config is deeply frozen.
// ---------------------------------------------------------------------------------------------

export type SqliteSynchronous = "normal" | "full";
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";
export type LogFormat = "auto" | "json" | "pretty";

export interface DatabaseConfig {
  /** Absolute path of the SQLite file (defaults to `<dataDir>/vqd.db`). */
  readonly file: string;
  readonly synchronous: SqliteSynchronous;
  readonly busyTimeoutMs: number;
}

export interface EmbeddedNatsConfig {
  readonly host: string;
  readonly port: number;
  /** Command name (looked up in PATH) or absolute path of the nats-server binary. */
  readonly binary: string;
  /** Absolute JetStream store directory (defaults to `<dataDir>/nats`). */
  readonly storeDir: string;
}

export interface NatsTlsConfig {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface NatsConfig {
  /** Empty: vqd runs an embedded nats-server. */
  readonly servers: string[];
  readonly embedded: EmbeddedNatsConfig;
  readonly subjectPrefix: string;
  readonly stream: string;
  readonly user: string;
  readonly password: string;
  readonly passwordFile: string;
  readonly token: string;
  readonly tokenFile: string;
  readonly credsFile: string;
  readonly nkeySeedFile: string;
  readonly tls: NatsTlsConfig;
  readonly ackWaitMs: number;
  /** 0 = unlimited. */
  readonly maxDeliver: number;
  readonly duplicateWindowMs: number;
  readonly connectTimeoutMs: number;
  /** How often the store is compared with the stream to republish lost job messages. */
  readonly reconcileIntervalMs: number;
  /** Safety-net poll of the outbox for rows written by another process. */
  readonly outboxPollMs: number;
}

export interface BackoffConfig {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly multiplier: number;
  /** Fraction 0..1 of each delay that is randomised. */
  readonly jitter: number;
}

export interface WorkersConfig {
  readonly count: number;
  readonly maxAttempts: number;
  readonly backoff: BackoffConfig;
  readonly shutdownDeadlineMs: number;
  readonly heartbeatMs: number;
  /** Job messages held per lane ahead of the workers. */
  readonly prefetch: number;
  /** Upper bound of the held messages when jobs finish fast (the puller holds ~100 ms of work). */
  readonly prefetchMax: number;
  /** Start step programs through the python3 spawn helper (posix_spawn) rather than forking the daemon. */
  readonly spawnHelper: boolean;
}

export interface LaneConfig {
  readonly enabled: boolean;
}

export type LanesConfig = { readonly default: Lane } & { readonly [L in Lane]: LaneConfig };

export interface StepConfig {
  /** The step kind, e.g. "probe", "thumbnail", "transcode". */
  readonly step: string;
  /** Optional display name; a step is identified by `name ?? step`, unique within a pipeline. */
  readonly name?: string;
  readonly options: Readonly<Record<string, unknown>>;
}

export interface PipelineConfig {
  readonly steps: StepConfig[];
}

export interface TelemetryConfig {
  readonly enabled: boolean;
  readonly serviceName: string;
  /** OTLP collector base URL; "" = from OTEL_EXPORTER_OTLP_ENDPOINT (nothing is exported when neither is set). */
  readonly endpoint: string;
  readonly protocol: "http/protobuf" | "http/json" | "grpc";
  readonly metricIntervalMs: number;
  /** Jobs whose spans are recorded, per second, at most (the rest are counted in metrics only); 0 = no limit. */
  readonly tracedJobsPerSecond: number;
  readonly slowOperationMs: number;
  readonly queueDepthAlert: number;
}

export interface SnapshotsConfig {
  /** Also write a .heapsnapshot file with each scheduled memory snapshot. */
  readonly heapSnapshot: boolean;
  /** Folder of the .heapsnapshot files (defaults to `<dataDir>/snapshots`). */
  readonly heapSnapshotDir: string;
  /** .heapsnapshot files kept. */
  readonly heapSnapshotRetain: number;
  /** Memory snapshot rows kept in the database; 0 keeps all. */
  readonly retainRows: number;
}

export interface ScheduleConfig {
  readonly enabled: boolean;
  readonly cron: string;
}

export interface SchedulesConfig {
  readonly timezone: string;
  readonly basicProfile: ScheduleConfig;
  readonly advancedProfile: ScheduleConfig;
  readonly memorySnapshot: ScheduleConfig;
}

export interface ProfilerConfig {
  /** Reports of each kind kept in reportsDir (older ones are pruned after a run); 0 keeps all. */
  readonly retention: number;
  /** Heap growth per create/close iteration above which the leak test says "possible leak". */
  readonly leakThresholdKbPerIteration: number;
}

export interface LoggingConfig {
  readonly level: LogLevel;
  readonly format: LogFormat;
}

export interface ApiConfig {
  readonly maxPayloadBytes: number;
  readonly requestTimeoutMs: number;
}

export type VideoEncoder = "libx264" | "libx265";
export type AudioEncoder = "aac" | "libopus" | "libmp3lame";
export type OutputContainer = "mp4" | "mov" | "mkv";
export type EncoderPreset = (typeof ENCODER_PRESETS)[number];

/** A named set of transcode settings (`transcode.profiles.<name>`), chosen by a step's `options.profile`. */
export interface TranscodeProfile {
  readonly videoCodec: VideoEncoder;
  readonly preset: EncoderPreset;
  /** Constant rate factor: lower is better quality and bigger files. */
  readonly crf: number;
  /** Largest output height; taller inputs are scaled down keeping their aspect. 0 = keep the height. */
  readonly maxHeight: number;
  readonly audioCodec: AudioEncoder;
  /** Audio bit rate for ffmpeg's -b:a, e.g. "128k". */
  readonly audioBitrate: string;
  readonly container: OutputContainer;
}

export interface TranscodeConfig {
  /** Command name (looked up in PATH) or path of the ffmpeg binary (thumbnail, transcode). */
  readonly ffmpeg: string;
  /** Command name (looked up in PATH) or path of the ffprobe binary (probe). */
  readonly ffprobe: string;
  /** A transcode whose progress stops for this long is killed and retried. */
  readonly stallTimeoutMs: number;
  /** Profile name -> profile; always contains the built-ins unless replaced by name. */
  readonly profiles: Readonly<Record<string, TranscodeProfile>>;
}

/** A named webhook target (`webhooks.<name>`), used by the webhook step's `options.webhook`. */
export interface WebhookConfig {
  /** https:// URL (http:// only with allowInsecure). */
  readonly url: string;
  /** File whose content (trimmed) is sent as a bearer token. Path or credential:NAME; "" = none. */
  readonly tokenFile: string;
  readonly allowInsecure: boolean;
  readonly timeoutMs: number;
  /** PEM CA bundle that verifies the server instead of the system CAs; "" = system CAs. */
  readonly caFile: string;
}

/** A watched folder (`inboxes[i]`): settled new files in it are enqueued. */
export interface InboxConfig {
  /** Folder watched; must be inside allowedRoots. Relative paths resolve against the working directory. */
  readonly folder: string;
  /** Pipeline of the videos enqueued from here; absent means defaultPipeline. */
  readonly pipeline?: string;
  /** Lane of the videos enqueued from here; absent means lanes.default. */
  readonly lane?: Lane;
  /** Base-name globs (case-insensitive) a file must match. */
  readonly patterns: string[];
  /** A file is enqueued once its size and mtime have not changed for this long. */
  readonly settleMs: number;
  /** Also watch sub-folders (not hidden ones, not the done/failed folders). */
  readonly recursive: boolean;
  /** Where the original moves when its video completes; "" leaves it in place. */
  readonly doneFolder: string;
  /** Where the original moves when its video is dead-lettered; "" leaves it in place. */
  readonly failedFolder: string;
  /** Full rescan interval; catches what file events miss (NFS and other network file systems). */
  readonly rescanMs: number;
}

export interface Config {
  /** Absolute. */
  readonly dataDir: string;
  readonly database: DatabaseConfig;
  readonly nats: NatsConfig;
  readonly workers: WorkersConfig;
  readonly lanes: LanesConfig;
  /** Pipeline name -> pipeline; always contains the built-ins unless replaced by name. */
  readonly pipelines: Readonly<Record<string, PipelineConfig>>;
  readonly defaultPipeline: string;
  /** Absolute folders videos may come from; empty means enqueue refuses everything. */
  readonly allowedRoots: string[];
  /** Absolute (defaults to `<dataDir>/outputs`). */
  readonly outputDir: string;
  /** Absolute (defaults to `<dataDir>/reports`). */
  readonly reportsDir: string;
  readonly telemetry: TelemetryConfig;
  readonly snapshots: SnapshotsConfig;
  readonly schedules: SchedulesConfig;
  readonly profiler: ProfilerConfig;
  readonly logging: LoggingConfig;
  readonly api: ApiConfig;
  readonly transcode: TranscodeConfig;
  readonly webhooks: Readonly<Record<string, WebhookConfig>>;
  readonly inboxes: InboxConfig[];
}

// ---------------------------------------------------------------------------------------------
// Building blocks with uniform "must be ..." messages.
// ---------------------------------------------------------------------------------------------

/** Largest delay a Node timer accepts (about 24.8 days). */
export const MAX_TIMER_MS = 2_147_483_647;

function intBetween(min: number, max: number, def: number) {
  const error = `must be an integer between ${min} and ${max}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error }).default(def);
}

function intAtLeast(min: number, def: number) {
  const error = `must be an integer >= ${min}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(Number.MAX_SAFE_INTEGER, { error }).default(def);
}

function ms(min: number, def: number) {
  const error = `must be a whole number of milliseconds between ${min} and ${MAX_TIMER_MS}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(MAX_TIMER_MS, { error }).default(def);
}

function bool(def: boolean) {
  return z.boolean({ error: "must be true or false" }).default(def);
}

function str(def: string) {
  return z.string({ error: "must be a string" }).default(def);
}

function nonEmpty(def: string) {
  const error = "must be a non-empty string";
  return z.string({ error }).min(1, { error }).default(def);
}

function pattern(re: RegExp, what: string, def: string) {
  const error = `must be ${what}`;
  return z.string({ error }).regex(re, { error }).default(def);
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T, def: T[number]) {
  const error = `must be one of ${values.map((v) => JSON.stringify(v)).join(", ")}`;
  return z.enum(values, { error }).default(def);
}

function stringList() {
  return z
    .array(z.string({ error: "must be a non-empty string" }).min(1, { error: "must be a non-empty string" }), {
      error: "must be a list of strings",
    })
    .default([]);
}

/** A strict mapping whose keys all have defaults, so an absent section means "all defaults". */
function section<S extends z.core.$ZodLooseShape>(shape: S) {
  // `{}` is valid input because every key in `shape` has a default; TS cannot see that generically.
  return z.strictObject(shape, { error: "must be a mapping of keys to values" }).prefault({} as never);
}

const cron = (def: string) =>
  z
    .string({ error: "must be a cron expression string" })
    .superRefine((value, ctx) => {
      if (validateCron(value)) return;
      const detail = validateCronDetailed(value).errors[0];
      const where = detail ? `; bad ${detail.field} field${detail.value === undefined ? "" : ` "${detail.value}"`}` : "";
      ctx.addIssue({
        code: "custom",
        message: `must be a cron expression "minute hour day-of-month month day-of-week" (optionally with a leading seconds field)${where}`,
        input: value,
      });
    })
    .default(def);

const OTLP_ENDPOINT_ERROR = 'must be "" or an http:// or https:// URL such as "http://127.0.0.1:4318"';

function isHttpUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return u.protocol === "http:" || u.protocol === "https:";
  } catch {
    return false;
  }
}

const TIME_ZONE_ERROR = 'must be an IANA time zone name such as "UTC" or "Europe/Paris"';

function isTimeZone(value: string): boolean {
  if (value === "") return false;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: value });
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Pipelines
// ---------------------------------------------------------------------------------------------

/** Built-in pipelines; a user pipeline of the same name replaces one of these. */
export const BUILTIN_PIPELINES: Readonly<Record<string, PipelineConfig>> = {
  default: {
    steps: [
      { step: "probe", options: {} },
      { step: "thumbnail", options: {} },
      { step: "transcode", options: { profile: "web-720p" } },
    ],
  },
  noop: { steps: [{ step: "noop", options: {} }] },
};

const PIPELINE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

const stepSchema = z.strictObject(
  {
    step: z
      .string({ error: "must name a step kind (a non-empty string)" })
      .min(1, { error: "must name a step kind (a non-empty string)" }),
    name: z.string({ error: "must be a non-empty string" }).min(1, { error: "must be a non-empty string" }).optional(),
    options: z.record(z.string(), z.unknown(), { error: "must be a mapping of option names to values" }).default({}),
  },
  { error: "must be a step: a mapping like { step: KIND, name?: NAME, options?: {...} }" },
);

const pipelineSchema = z.strictObject(
  {
    steps: z
      .array(stepSchema, { error: "must be a list of steps" })
      .min(1, { error: "must list at least one step" }),
  },
  { error: "must be a pipeline: a mapping like { steps: [...] }" },
);

const pipelinesSchema = z
  .record(
    z.string().regex(PIPELINE_NAME, { error: "is not a valid pipeline name: use letters, digits, '_' and '-'" }),
    pipelineSchema,
    { error: "must be a mapping of pipeline names to pipelines" },
  )
  .prefault({})
  .transform((user): Record<string, PipelineConfig> => ({ ...structuredClone(BUILTIN_PIPELINES), ...user }));

// ---------------------------------------------------------------------------------------------
// Transcode profiles and webhooks
// ---------------------------------------------------------------------------------------------

export const ENCODER_PRESETS = [
  "ultrafast",
  "superfast",
  "veryfast",
  "faster",
  "fast",
  "medium",
  "slow",
  "slower",
  "veryslow",
] as const;

/** Built-in transcode profiles; a user profile of the same name replaces one of these. */
export const BUILTIN_PROFILES: Readonly<Record<string, TranscodeProfile>> = {
  "web-720p": {
    videoCodec: "libx264",
    preset: "veryfast",
    crf: 23,
    maxHeight: 720,
    audioCodec: "aac",
    audioBitrate: "128k",
    container: "mp4",
  },
  "archive-1080p": {
    videoCodec: "libx264",
    preset: "slow",
    crf: 18,
    maxHeight: 1080,
    audioCodec: "aac",
    audioBitrate: "192k",
    container: "mp4",
  },
};

const PROFILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

/** Keys a user profile leaves out take the values of the built-in `web-720p`. */
const profileSchema = z.strictObject(
  {
    videoCodec: oneOf(["libx264", "libx265"], "libx264"),
    preset: oneOf(ENCODER_PRESETS, "veryfast"),
    crf: intBetween(0, 51, 23),
    maxHeight: intBetween(0, 8640, 720),
    audioCodec: oneOf(["aac", "libopus", "libmp3lame"], "aac"),
    audioBitrate: pattern(/^[1-9][0-9]*k$/, 'an audio bit rate in kbit/s such as "128k"', "128k"),
    container: oneOf(["mp4", "mov", "mkv"], "mp4"),
  },
  { error: "must be a transcode profile: a mapping like { preset: veryfast, crf: 23, maxHeight: 720 }" },
);

const profilesSchema = z
  .record(z.string().regex(PROFILE_NAME, { error: "is not a valid profile name: use letters, digits, '_' and '-'" }), profileSchema, {
    error: "must be a mapping of profile names to profiles",
  })
  .prefault({})
  .transform((user): Record<string, TranscodeProfile> => ({ ...structuredClone(BUILTIN_PROFILES), ...user }));

const WEBHOOK_URL_ERROR = "must be an https:// URL (http:// only with allowInsecure: true)";

const webhookSchema = z
  .strictObject(
    {
      url: z.string({ error: WEBHOOK_URL_ERROR }).min(1, { error: WEBHOOK_URL_ERROR }),
      tokenFile: str(""),
      allowInsecure: bool(false),
      timeoutMs: ms(1, 10000),
      caFile: str(""),
    },
    { error: "must be a webhook: a mapping like { url: https://..., tokenFile: PATH }" },
  )
  .superRefine((hook, ctx) => {
    let url: URL | undefined;
    try {
      url = new URL(hook.url);
    } catch {
      url = undefined;
    }
    const ok = url !== undefined && (url.protocol === "https:" || (url.protocol === "http:" && hook.allowInsecure));
    if (!ok) ctx.addIssue({ code: "custom", path: ["url"], message: WEBHOOK_URL_ERROR, input: hook.url });
  });

const webhooksSchema = z
  .record(z.string().regex(PROFILE_NAME, { error: "is not a valid webhook name: use letters, digits, '_' and '-'" }), webhookSchema, {
    error: "must be a mapping of webhook names to webhooks",
  })
  .default({});

// ---------------------------------------------------------------------------------------------
// Watched inbox folders
// ---------------------------------------------------------------------------------------------

export const DEFAULT_INBOX_PATTERNS: readonly string[] = ["*.mp4", "*.mov", "*.mkv", "*.m4v", "*.webm", "*.avi"];

const INBOX_PATTERN_ERROR = 'must be a file name pattern such as "*.mp4" (no "/")';

const inboxSchema = z.strictObject(
  {
    folder: z.string({ error: "must be a folder path (a non-empty string)" }).min(1, { error: "must be a folder path (a non-empty string)" }),
    pipeline: z.string({ error: "must name a pipeline (a non-empty string)" }).min(1, { error: "must name a pipeline (a non-empty string)" }).optional(),
    lane: z.enum(LANES, { error: `must be one of ${LANES.map((l) => JSON.stringify(l)).join(", ")}` }).optional(),
    patterns: z
      .array(z.string({ error: INBOX_PATTERN_ERROR }).min(1, { error: INBOX_PATTERN_ERROR }).regex(/^[^/]+$/, { error: INBOX_PATTERN_ERROR }), {
        error: "must be a list of file name patterns",
      })
      .min(1, { error: "must list at least one file name pattern" })
      .default(() => [...DEFAULT_INBOX_PATTERNS]),
    settleMs: ms(100, 2000),
    recursive: bool(false),
    doneFolder: str(""),
    failedFolder: str(""),
    rescanMs: ms(1000, 60000),
  },
  { error: "must be an inbox: a mapping like { folder: PATH, pipeline: NAME, patterns: [\"*.mp4\"] }" },
);

// ---------------------------------------------------------------------------------------------
// The schema
// ---------------------------------------------------------------------------------------------

const laneSchema = section({ enabled: bool(true) });
const laneShape = Object.fromEntries(LANES.map((lane) => [lane, laneSchema])) as Record<Lane, typeof laneSchema>;

const schedule = (def: string) => section({ enabled: bool(true), cron: cron(def) });

export const configSchema = z.strictObject(
  {
    dataDir: nonEmpty("./data"),
    database: section({
      file: str(""),
      synchronous: oneOf(["normal", "full"], "normal"),
      busyTimeoutMs: ms(0, 5000),
    }),
    nats: section({
      servers: stringList(),
      embedded: section({
        host: nonEmpty("127.0.0.1"),
        port: intBetween(1, 65535, 4222),
        binary: nonEmpty("nats-server"),
        storeDir: str(""),
      }),
      subjectPrefix: pattern(
        /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/,
        "NATS subject tokens of [A-Za-z0-9_-] separated by '.' (no wildcards)",
        "vq",
      ),
      stream: pattern(/^[A-Za-z0-9_-]+$/, "a JetStream stream name of [A-Za-z0-9_-] characters", "VQ_JOBS"),
      user: str(""),
      password: str(""),
      passwordFile: str(""),
      token: str(""),
      tokenFile: str(""),
      credsFile: str(""),
      nkeySeedFile: str(""),
      tls: section({ caFile: str(""), certFile: str(""), keyFile: str("") }),
      ackWaitMs: ms(1, 30000),
      maxDeliver: intAtLeast(0, 0),
      duplicateWindowMs: ms(1, 120000),
      connectTimeoutMs: ms(1, 5000),
      reconcileIntervalMs: ms(1000, 60000),
      outboxPollMs: ms(100, 5000),
    }),
    workers: section({
      count: intBetween(1, 64, 3),
      maxAttempts: intBetween(1, 100, 5),
      backoff: section({
        initialMs: ms(0, 1000),
        maxMs: ms(0, 300000),
        multiplier: z
          .number({ error: "must be a number between 1 and 100" })
          .min(1, { error: "must be a number between 1 and 100" })
          .max(100, { error: "must be a number between 1 and 100" })
          .default(2),
        jitter: z
          .number({ error: "must be a number between 0 and 1" })
          .min(0, { error: "must be a number between 0 and 1" })
          .max(1, { error: "must be a number between 0 and 1" })
          .default(0.2),
      }),
      shutdownDeadlineMs: ms(0, 30000),
      heartbeatMs: ms(1, 10000),
      prefetch: intBetween(1, 1000, 6),
      prefetchMax: intBetween(1, 10000, 256),
      spawnHelper: bool(true),
    }),
    lanes: section({ default: oneOf(LANES, "normal"), ...laneShape }),
    pipelines: pipelinesSchema,
    defaultPipeline: nonEmpty("default"),
    allowedRoots: stringList(),
    outputDir: str(""),
    reportsDir: str(""),
    telemetry: section({
      enabled: bool(true),
      serviceName: nonEmpty("vqd"),
      endpoint: z
        .string({ error: OTLP_ENDPOINT_ERROR })
        .refine((v) => v === "" || isHttpUrl(v), { error: OTLP_ENDPOINT_ERROR })
        .default(""),
      protocol: oneOf(["http/protobuf", "http/json", "grpc"], "http/protobuf"),
      metricIntervalMs: ms(100, 60000),
      tracedJobsPerSecond: intAtLeast(0, 100),
      slowOperationMs: ms(0, 100),
      queueDepthAlert: intAtLeast(1, 100),
    }),
    snapshots: section({
      heapSnapshot: bool(false),
      heapSnapshotDir: str(""),
      heapSnapshotRetain: intBetween(1, 1000, 3),
      retainRows: intAtLeast(0, 1000),
    }),
    schedules: section({
      timezone: z
        .string({ error: TIME_ZONE_ERROR })
        .refine(isTimeZone, { error: TIME_ZONE_ERROR })
        .default("UTC"),
      basicProfile: schedule("0 3 * * *"),
      advancedProfile: schedule("0 4 * * 0"),
      memorySnapshot: schedule("0 5 * * 0"),
    }),
    profiler: section({
      retention: intAtLeast(0, 30),
      leakThresholdKbPerIteration: z
        .number({ error: "must be a number >= 0" })
        .min(0, { error: "must be a number >= 0" })
        .max(1_000_000, { error: "must be a number >= 0" })
        .default(10),
    }),
    logging: section({
      level: oneOf(["trace", "debug", "info", "warn", "error", "fatal", "silent"], "info"),
      format: oneOf(["auto", "json", "pretty"], "auto"),
    }),
    api: section({
      maxPayloadBytes: intAtLeast(1, 1048576),
      requestTimeoutMs: ms(1, 5000),
    }),
    transcode: section({
      ffmpeg: nonEmpty("ffmpeg"),
      ffprobe: nonEmpty("ffprobe"),
      stallTimeoutMs: ms(100, 60000),
      profiles: profilesSchema,
    }),
    webhooks: webhooksSchema,
    inboxes: z.array(inboxSchema, { error: "must be a list of inboxes" }).default([]),
  },
  { error: "must be a mapping of keys to values" },
);

/** The schema's output before paths are made absolute and derived paths are filled in. */
export type ParsedConfig = z.output<typeof configSchema>;

// Compile-time check that the explicit Config type and the schema agree (both directions).
type Mutual<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const configTypeMatchesSchema: Mutual<ParsedConfig, Config> = true;
void configTypeMatchesSchema;

/** Keys holding a secret value (redacted when printed); keys ending in `File` hold paths. */
export const SECRET_KEY = /password|token|secret|seed/i;
export const isSecretKey = (key: string): boolean => SECRET_KEY.test(key) && !key.endsWith("File");
