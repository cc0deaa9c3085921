import { hostname } from "node:os";
import { join } from "node:path";
import type { PriorityPuller, ReceivedJob } from "../bus/index.js";
import type { StepOutputs } from "../domain/index.js";
import { classify, StepAbortedError, type StepRegistry } from "../pipeline/index.js";
import type { JobReporter } from "./reporter.js";

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
}

interface RunningJob {
  readonly videoId: string;
  readonly controller: AbortController;
  readonly message: ReceivedJob;
  step: string | null;
}

type Settle = "ack" | "nak" | "nak-later";

/**
 * N workers, each taking the next job by priority, checking with the store that it is still
 * wanted, running the pipeline's remaining steps and reporting each result before the ack.
 */
export class WorkerPool {
  readonly #o: WorkerPoolOptions;
  readonly #running = new Map<string, RunningJob>();
  readonly #loops: Promise<void>[] = [];
  readonly #node: string;
  #stopping = false;
  #closing?: Promise<void>;

  constructor(options: WorkerPoolOptions) {
    this.#o = options;
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
      let settle: Settle = "nak-later";
      try {
        settle = await this.#process(worker, message);
      } catch (err) {
        this.#o.logger.error({ videoId: message.job.videoId, err: (err as Error).message }, "could not record a job's result; it will be redelivered");
      } finally {
        if (settle === "ack") message.ack();
        else if (settle === "nak") message.nak();
        else message.nak(1000);
      }
    }
  }

  async #process(worker: string, message: ReceivedJob): Promise<Settle> {
    const { videoId } = message.job;
    const log = this.#o.logger;
    if (this.#running.has(videoId)) {
      // A second copy of a job this node is already running: the first one will settle it.
      log.debug({ videoId }, "duplicate of a running job dropped");
      return "ack";
    }
    const start = await this.#o.reporter.start(message.job, worker, message.deliveryCount > 1 || message.job.recovery === true);
    if (!start.ok) {
      log.debug({ videoId, reason: start.reason }, "job no longer wanted; dropped");
      this.#o.onJobSettled?.(videoId, "dropped");
      return "ack";
    }
    const job = start.started;
    const steps = this.#o.pipeline(job.pipeline);
    const controller = new AbortController();
    const running: RunningJob = { videoId, controller, message, step: null };
    this.#running.set(videoId, running);
    const heartbeat = setInterval(() => message.working(), this.#o.heartbeatMs);
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
        const outputs = await impl.run(
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
        );
        if (controller.signal.aborted) throw new StepAbortedError(String(controller.signal.reason));
        const durationMs = Math.round((performance.now() - t0) * 1000) / 1000;
        const r = await this.#o.reporter.stepCompleted(videoId, { attempt: job.attempt, index, step: name, outputs, durationMs });
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
      await this.#o.reporter.failed(videoId, { attempt: job.attempt, index, step: job.steps[index] ?? "?", message: msg, retryable });
      this.#o.onJobSettled?.(videoId, "failed");
      return "ack";
    } finally {
      clearInterval(heartbeat);
      this.#running.delete(videoId);
    }
  }
}

/** The node cannot run the recorded pipeline as configured: retrying will not help. */
class StepConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StepConfigError";
  }
}
