import { hostname } from "node:os";
import { join } from "node:path";
import type { PriorityPuller, ReceivedJob } from "../bus/index.js";
import type { Lane, StepOutputs } from "../domain/index.js";
import { classify, StepAbortedError, type StepRegistry } from "../pipeline/index.js";
import { NOOP_SPAN, noopTelemetry, type Outcome, type Telemetry, type TraceSpan } from "../telemetry/index.js";
import type { JobReporter, ReportOutcome } from "./reporter.js";

export interface PipelineStepConfig {
  readonly step: string;
  readonly name?: string;
  readonly options: Readonly<Record<string, unknown>>;
}

export interface WorkerLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface WorkerPoolOptions {
  readonly count: number;
  readonly puller: PriorityPuller;
  readonly reporter: JobReporter;
  readonly steps: StepRegistry;
  /** The steps of a pipeline, by name, from the config of this node. */
  readonly pipeline: (name: string) => readonly PipelineStepConfig[] | undefined;
  readonly outputDir: string;
  /** How often a running job tells NATS it is alive; below the consumer's ack wait. */
  readonly heartbeatMs: number;
  readonly logger: WorkerLogger;
  /** Names workers in AttemptStarted: `<node>/<n>`. */
  readonly nodeName?: string;
  readonly onProgress?: (videoId: string, step: string, percent: number, detail?: string) => void;
  readonly onJobSettled?: (videoId: string, outcome: "completed" | "failed" | "dropped" | "stopped") => void;
  /** Each job is a CONSUMER span (`process <subject>`) continuing the trace its message carries; each step a child. */
  readonly telemetry?: Telemetry;
  /** The subject of a lane (span names); default `vq.jobs.<lane>`. */
  readonly subject?: (lane: Lane) => string;
}

interface RunningJob {
  readonly videoId: string;
  readonly controller: AbortController;
  readonly message: ReceivedJob;
  step: string | null;
  outcome?: Outcome;
}

/** "leave": neither ack nor nak; another delivery of the same stream message settles it. */
type Settle = "ack" | "nak" | "nak-later" | "leave";

/** How a job ends: how to settle its message, the commits to wait for first, and its span (ended at settlement). */
interface JobEnd {
  settle: Settle;
  readonly durable: Promise<void>[];
  span: TraceSpan;
}

/**
 * A job stopped by shutdown is handed back with this delay rather than at once. nats-server 2.9
 * redelivers an immediate nak to a pull request still open from this (stopping) node; finding
 * no one listening there, it puts the message back with its delivery count reset to 1, and the
 * next node then takes the handed-back job for a duplicate of a running one and drops it. By the
 * time the delay is over this node's connection is closed, and the job comes back as redelivered.
 */
const SHUTDOWN_REDELIVERY_DELAY_MS = 2000;

/**
 * N workers, each taking the next job by priority, checking with the store that it is still
 * wanted, running the pipeline's remaining steps and reporting each result before the ack.
 */
export class WorkerPool {
  readonly #o: WorkerPoolOptions;
  readonly #running = new Map<string, RunningJob>();
  readonly #loops: Promise<void>[] = [];
  /** Finished jobs whose messages wait for their reports' commit before the ack. */
  readonly #settling = new Set<Promise<void>>();
  readonly #node: string;
  #stopping = false;
  #closing?: Promise<void>;

  readonly #tel: Telemetry;

  constructor(options: WorkerPoolOptions) {
    // Every settled job passes here first: its outcome labels the job metrics.
    this.#o = {
      ...options,
      onJobSettled: (videoId, outcome) => {
        const r = this.#running.get(videoId);
        if (r) r.outcome = outcome;
        options.onJobSettled?.(videoId, outcome);
      },
    };
    this.#tel = options.telemetry ?? noopTelemetry;
    this.#node = options.nodeName ?? `${hostname()}:${process.pid}`;
  }

  start(): void {
    this.#o.puller.start();
    for (let i = 0; i < this.#o.count; i++) this.#loops.push(this.#loop(`${this.#node}/${i + 1}`));
  }

  /** Video ids being worked on right now, with their current step. */
  running(): { videoId: string; step: string | null }[] {
    return [...this.#running.values()].map((r) => ({ videoId: r.videoId, step: r.step }));
  }

  get busy(): number {
    return this.#running.size;
  }

  get size(): number {
    return this.#o.count;
  }

  /** Stops the running step of a video (and its child processes); false if not running here. */
  cancel(videoId: string, reason = "cancelled"): boolean {
    const r = this.#running.get(videoId);
    if (!r) return false;
    r.controller.abort(reason);
    return true;
  }

  /**
   * Stops taking jobs, lets running ones finish until the deadline, then aborts the rest and
   * hands their messages back. Calling it again returns the same promise.
   */
  close(deadlineMs: number): Promise<void> {
    this.#closing ??= (async () => {
      this.#stopping = true;
      await this.#o.puller.stop();
      const all = Promise.allSettled(this.#loops);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        all.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), deadlineMs);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        this.#o.logger.warn({ jobs: this.running() }, "shutdown deadline reached; stopping running jobs and returning them to the queue");
        for (const r of this.#running.values()) r.controller.abort("shutdown");
        await all;
      }
      await Promise.allSettled([...this.#settling]);
    })();
    return this.#closing;
  }

  async #loop(worker: string): Promise<void> {
    while (!this.#stopping) {
      const message = await this.#o.puller.take();
      if (!message) break;
      if (this.#stopping) {
        message.nak();
        break;
      }
      const job: JobEnd = { settle: "nak-later", durable: [], span: NOOP_SPAN };
      try {
        job.settle = await this.#traced(worker, message, job);
      } catch (err) {
        job.span.fail(err);
        this.#o.logger.error({ videoId: message.job.videoId, err: (err as Error).message }, "could not record a job's result; it will be redelivered");
      }
      // The worker is free for the next job now; the message is settled once the reports are stored.
      this.#settle(message, job);
    }
  }

  /** Acks once every report of the job is durable (a rollback hands the message back instead). */
  #settle(message: ReceivedJob, job: JobEnd): void {
    const apply = (settle: Settle): void => {
      if (settle === "ack") message.ack();
      else if (settle === "nak") message.nak(SHUTDOWN_REDELIVERY_DELAY_MS);
      else if (settle === "nak-later") message.nak(1000);
      job.span.end();
    };
    if (job.settle !== "ack" || job.durable.length === 0) {
      apply(job.settle);
      return;
    }
    const done = Promise.all(job.durable).then(
      () => apply("ack"),
      (err: Error) => {
        this.#o.logger.error({ videoId: message.job.videoId, err: err.message }, "a job's reports were not stored; it will be redelivered");
        job.span.fail(err);
        apply("nak-later");
      },
    );
    this.#settling.add(done);
    void done.finally(() => this.#settling.delete(done));
  }

  /** #process inside the job's CONSUMER span, whose parent is the producer's context from the message headers. */
  async #traced(worker: string, message: ReceivedJob, end: JobEnd): Promise<Settle> {
    if (this.#tel.mode === "off") return this.#process(worker, message, end);
    const { lane, videoId, dispatch } = message.job;
    const subject = this.#o.subject?.(lane) ?? `vq.jobs.${lane}`;
    // A job that arrives without a context (sent by a daemon that does not export) starts its own
    // trace, within telemetry.tracedJobsPerSecond.
    const parented = message.headers.traceparent !== undefined;
    // Ended when the message is settled, so that the commits of the job's reports fall inside it.
    end.span = this.#tel.span(`process ${subject}`, {
      kind: "consumer",
      parent: message.headers,
      record: parented || this.#tel.admitJob(),
      attributes: {
        "messaging.system": "nats",
        "messaging.destination.name": subject,
        "messaging.operation": "process",
        "messaging.operation.type": "process",
        "vq.video_id": videoId,
        "vq.dispatch": dispatch,
        "vq.delivery": message.deliveryCount,
      },
    });
    return this.#process(worker, message, end);
  }

  /**
   * A step in its own span; its duration goes to vq.step.duration. Its result is then stored in
   * the job's span: the store's commit span hangs under it (or, when one commit carries many
   * jobs' reports, links to it); a remote worker's report is a request span of its own.
   */
  async #runStep<T>(parent: TraceSpan, pipeline: string, name: string, kind: string, index: number, run: () => Promise<T>): Promise<T> {
    const span = this.#tel.span(`step ${name}`, { parent, attributes: { "vq.step": name, "vq.step.kind": kind, "vq.step.index": index } });
    const t0 = performance.now();
    let outcome: Outcome = "failed";
    try {
      const out = await run();
      outcome = "completed";
      return out;
    } catch (err) {
      span.fail(err);
      throw err;
    } finally {
      span.end();
      this.#tel.stepFinished(pipeline, name, outcome, (performance.now() - t0) / 1000);
    }
  }

  async #process(worker: string, message: ReceivedJob, end: JobEnd): Promise<Settle> {
    const { videoId } = message.job;
    const span = end.span;
    const log = this.#o.logger;
    const current = this.#running.get(videoId);
    if (current) {
      // A second copy of a job this node is already running: the first one will settle it. Acking a
      // second delivery of the same stream message would take it from under the running job.
      log.debug({ videoId, seq: message.seq }, "duplicate of a running job dropped");
      return current.message.seq === message.seq ? "leave" : "ack";
    }
    const start = await this.#o.reporter.start(message.job, worker, message.deliveryCount > 1 || message.job.recovery === true, span);
    if (start.durable) end.durable.push(start.durable);
    if (!start.ok) {
      log.debug({ videoId, reason: start.reason }, "job no longer wanted; dropped");
      this.#o.onJobSettled?.(videoId, "dropped");
      return start.busy ? "leave" : "ack";
    }
    const job = start.started;
    const steps = this.#o.pipeline(job.pipeline);
    const controller = new AbortController();
    const running: RunningJob = { videoId, controller, message, step: null };
    this.#running.set(videoId, running);
    const heartbeat = setInterval(() => message.working(), this.#o.heartbeatMs);
    const jobT0 = performance.now();
    this.#tel.jobStarted(message.job.lane);
    const previous: Record<string, StepOutputs> = { ...job.previous };
    let index = job.nextStep;
    try {
      if (!steps) throw new StepConfigError(`pipeline ${JSON.stringify(job.pipeline)} is not configured on this node`);
      for (; index < job.steps.length; index++) {
        const name = job.steps[index] as string;
        const config = steps[index];
        running.step = name;
        if (!config || (config.name ?? config.step) !== name) {
          throw new StepConfigError(`step ${index} of pipeline ${job.pipeline} is "${name}" in the record but "${config ? (config.name ?? config.step) : "missing"}" in this node's config`);
        }
        const impl = this.#o.steps.get(config.step);
        if (!impl) throw new StepConfigError(`unknown step kind "${config.step}"`);
        const t0 = performance.now();
        const outputs = await this.#runStep(span, job.pipeline, name, config.step, index, () =>
          impl.run(
            {
              videoId,
              path: job.path,
              pipeline: job.pipeline,
              index,
              name,
              previous,
              options: config.options,
              outputDir: join(this.#o.outputDir, videoId),
              attempt: job.attempt,
            },
            {
              signal: controller.signal,
              progress: (percent, detail) => this.#o.onProgress?.(videoId, name, percent, detail),
            },
          ),
        );
        if (controller.signal.aborted) throw new StepAbortedError(String(controller.signal.reason));
        const durationMs = Math.round((performance.now() - t0) * 1000) / 1000;
        // A report that cannot be stored is not a failure of the step: let it out of this try so
        // the message is handed back (nak-later) instead of the attempt being recorded as failed.
        let r: ReportOutcome;
        try {
          r = await this.#o.reporter.stepCompleted(videoId, { attempt: job.attempt, index, step: name, outputs, durationMs }, span);
        } catch (e) {
          throw new ReportError(e);
        }
        if (r.durable) end.durable.push(r.durable);
        if (!r.ok) {
          log.info({ videoId, step: name, reason: r.reason }, "step result refused by the store; job dropped");
          this.#o.onJobSettled?.(videoId, "dropped");
          return "ack";
        }
        previous[name] = outputs;
      }
      this.#o.onJobSettled?.(videoId, "completed");
      return "ack";
    } catch (err) {
      if (err instanceof ReportError) throw err.cause;
      const reason = controller.signal.aborted ? String(controller.signal.reason) : null;
      if (reason === "shutdown") {
        log.info({ videoId, step: running.step }, "job stopped by shutdown; returned to the queue");
        this.#o.onJobSettled?.(videoId, "stopped");
        return "nak";
      }
      if (reason !== null && reason !== "stalled") {
        // Cancelled: the store already says so; nothing to report.
        log.info({ videoId, step: running.step, reason }, "job stopped");
        this.#o.onJobSettled?.(videoId, "dropped");
        return "ack";
      }
      const { message: msg, retryable } = err instanceof StepConfigError ? { message: err.message, retryable: false } : classify(err);
      log.warn({ videoId, step: running.step, attempt: job.attempt, retryable, err: msg }, "step failed");
      const r = await this.#o.reporter.failed(videoId, { attempt: job.attempt, index, step: job.steps[index] ?? "?", message: msg, retryable }, span);
      if (r.durable) end.durable.push(r.durable);
      this.#o.onJobSettled?.(videoId, "failed");
      return "ack";
    } finally {
      clearInterval(heartbeat);
      span.setAttribute("vq.outcome", running.outcome ?? "failed");
      span.setAttribute("vq.attempt", job.attempt);
      this.#tel.jobFinished(message.job.lane, job.pipeline, running.outcome ?? "failed", (performance.now() - jobT0) / 1000);
      this.#running.delete(videoId);
    }
  }
}

/** A step's result could not be reported (the store or the daemon is unavailable). */
class ReportError extends Error {
  constructor(cause: unknown) {
    super(`could not report a step result: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = "ReportError";
  }
}

/** The node cannot run the recorded pipeline as configured: retrying will not help. */
class StepConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StepConfigError";
  }
}
