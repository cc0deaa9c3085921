import type { Config } from "../config/index.js";
import { isLane, type Lane, type Video } from "../domain/index.js";
import { newVideoId } from "../shared/ids.js";
import type { BatchItemResult, CommandItem } from "../store/index.js";
import { InputError } from "./errors.js";
import { sharedPathChecker, type PathOutcome } from "./path-checker.js";

export interface EnqueueRequest {
  readonly paths: readonly string[];
  readonly lane?: string;
  readonly pipeline?: string;
  readonly metadata?: Readonly<Record<string, string>>;
  /** Where relative paths resolve from (the caller's working directory). */
  readonly cwd?: string;
  /** Recorded in each event's metadata: "cli", "api", "inbox". */
  readonly source: string;
  /** W3C traceparent of the enqueue (telemetry): recorded in the metadata, carried by the job messages. */
  readonly traceparent?: string;
}

/** The store itself (the CLI with no daemon) or the daemon's group commit, which resolves once committed. */
export interface CommandRunner {
  executeMany(items: readonly CommandItem[]): BatchItemResult[] | Promise<BatchItemResult[]>;
}

export type EnqueueOutcome =
  | { readonly ok: true; readonly input: string; readonly id: string; readonly path: string; readonly video: Video }
  | { readonly ok: false; readonly input: string; readonly error: string; readonly problem: string };

/** Names of the steps a pipeline runs, in order, as the domain records them. */
export function pipelineSteps(config: Config, pipeline: string): string[] {
  const p = config.pipelines[pipeline];
  if (!p) {
    throw new InputError("unknown-pipeline", pipeline, `unknown pipeline ${JSON.stringify(pipeline)} (known: ${Object.keys(config.pipelines).join(", ")})`);
  }
  return p.steps.map((s) => s.name ?? s.step);
}

export function resolveLane(config: Config, lane: string | undefined): Lane {
  if (lane === undefined) return config.lanes.default;
  if (!isLane(lane)) throw new InputError("invalid", lane, `unknown priority ${JSON.stringify(lane)} (use high, normal or low)`);
  return lane;
}

/**
 * Validates every path and records one VideoEnqueued per good path, all in one transaction.
 * A bad path is reported in its own slot; it never stops the others. Lane and pipeline are
 * checked first: when they are wrong, nothing is enqueued.
 */
export async function enqueueVideos(store: CommandRunner, config: Config, request: EnqueueRequest): Promise<EnqueueOutcome[]> {
  const lane = resolveLane(config, request.lane);
  const pipeline = request.pipeline ?? config.defaultPipeline;
  const steps = pipelineSteps(config, pipeline);
  // One batch for the whole request, checked in the path checker's worker thread.
  const outcomes = await sharedPathChecker().check(request.paths, config.allowedRoots, request.cwd ?? process.cwd());
  // check() answers one outcome per input, in order.
  const checked = request.paths.map((input, i) => {
    const o = outcomes[i] as PathOutcome;
    return "path" in o ? { input, path: o.path } : { input, error: o.error };
  });
  const good = checked.filter((c): c is { input: string; path: string } => "path" in c);
  // Ids sort by millisecond, then at random: sorted, a batch lists ("oldest first") in input order.
  const ids = good.map(() => newVideoId()).sort();
  const results = await store.executeMany(
    good.map((c, i) => ({
      videoId: ids[i] as string,
      command: {
        type: "EnqueueVideo" as const,
        path: c.path,
        pipeline,
        steps,
        lane,
        maxAttempts: config.workers.maxAttempts,
        metadata: request.metadata ?? {},
      },
      metadata: request.traceparent ? { source: request.source, traceparent: request.traceparent } : { source: request.source },
    })),
  );
  // Outcomes are matched by position, not by input text: the same path given twice is enqueued
  // twice and each occurrence must report its own id.
  const goodOutcomes: EnqueueOutcome[] = good.map((c, i) => {
    const r = results[i];
    if (!r) return { ok: false, input: c.input, error: `refusing ${JSON.stringify(c.input)}: the store returned no result`, problem: "refused" };
    return r.ok ? { ok: true, input: c.input, id: r.videoId, path: c.path, video: r.video } : { ok: false, input: c.input, error: r.error.message, problem: "refused" };
  });
  let next = 0;
  return checked.map((c): EnqueueOutcome =>
    "error" in c && c.error
      ? { ok: false, input: c.input, error: c.error.message, problem: c.error.problem }
      : (goodOutcomes[next++] as EnqueueOutcome),
  );
}
