import { z } from "zod";
import { LANES, VIDEO_STATES } from "../domain/index.js";

/**
 * Request/reply over NATS on `<prefix>.api.<verb>`, JSON both ways. Every reply is
 * `{ ok: true, result }` or `{ ok: false, error: { code, message } }`; a malformed request gets
 * the error reply and changes nothing.
 */
const id = z.string().min(1).max(200);
const lane = z.enum(LANES);
// zod strips a "__proto__" key from records (JSON.parse makes it an ordinary own key): refuse it
// with an error rather than accept the request and store less than the caller sent.
const metadata = z
  .unknown()
  .refine((v) => !(typeof v === "object" && v !== null && Object.hasOwn(v, "__proto__")), { error: 'the key "__proto__" is not allowed' })
  .pipe(z.record(z.string().max(1000), z.string().max(100_000)));

export const requests = {
  enqueue: z.strictObject({
    paths: z.array(z.string().min(1).max(16_384)).min(1).max(10_000),
    priority: lane.optional(),
    pipeline: z.string().min(1).max(200).optional(),
    metadata: metadata.optional(),
    /** Where relative paths resolve; absolute paths need none. */
    cwd: z.string().max(16_384).optional(),
  }),
  status: z.strictObject({}),
  list: z.strictObject({
    state: z.enum(VIDEO_STATES).optional(),
    lane: lane.optional(),
    limit: z.number().int().min(1).max(10_000).optional(),
    after: id.optional(),
  }),
  show: z.strictObject({ id }),
  cancel: z.strictObject({ id, reason: z.string().max(1000).optional() }),
  retry: z.strictObject({ id }),
  priority: z.strictObject({ id, lane }),
  /** A memory snapshot of the daemon, stored and sent as metrics; heap: also a .heapsnapshot file. */
  snapshot: z.strictObject({ kind: z.literal("memory"), heap: z.boolean().optional() }),
  /** Remote workers' reports: the daemon stores them before the worker acks the job. */
  report: z.discriminatedUnion("kind", [
    z.strictObject({
      kind: z.literal("start"),
      videoId: id,
      dispatch: z.number().int().min(1),
      lane,
      worker: z.string().min(1).max(500),
      redelivered: z.boolean(),
    }),
    z.strictObject({
      kind: z.literal("step"),
      videoId: id,
      attempt: z.number().int().min(1),
      index: z.number().int().min(0),
      step: z.string().min(1).max(200),
      outputs: z.record(z.string(), z.unknown()),
      durationMs: z.number().min(0),
    }),
    z.strictObject({
      kind: z.literal("fail"),
      videoId: id,
      attempt: z.number().int().min(1),
      index: z.number().int().min(0),
      step: z.string().min(1).max(200),
      message: z.string().max(100_000),
      retryable: z.boolean(),
    }),
  ]),
} as const;

export type Verb = keyof typeof requests;
export const VERBS = Object.keys(requests) as Verb[];
export type Request<V extends Verb> = z.infer<(typeof requests)[V]>;

/**
 * `busy` (report verb only): a worker's start was refused because the video is running an attempt
 * and the message is not a redelivery; the worker leaves that message unsettled (see StartOutcome).
 */
export type ErrorCode = "bad_request" | "unknown_verb" | "too_large" | "not_found" | "refused" | "busy" | "internal";

export type Reply<T = unknown> = { ok: true; result: T } | { ok: false; error: { code: ErrorCode; message: string } };

/** Turns zod issues into one line that names the field: `paths.0: expected string`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length > 0 ? i.path.join(".") : "(payload)"}: ${i.message}`)
    .join("; ");
}
