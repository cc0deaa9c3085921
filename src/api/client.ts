import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import type { Subjects } from "../bus/index.js";
import type { ParentRef, Telemetry, TraceSpan } from "../telemetry/types.js";
import type { ErrorCode, Reply, Request, Verb } from "./protocol.js";

/** The daemon answered with an error. */
export class ApiReplyError extends Error {
  readonly code: ErrorCode;
  constructor(verb: string, code: ErrorCode, message: string) {
    super(message);
    this.name = "ApiReplyError";
    this.code = code;
    void verb;
  }
}

/** Nobody serves the API: the daemon is not running (or not on this NATS). */
export class DaemonUnavailableError extends Error {
  readonly exitCode = 69;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DaemonUnavailableError";
  }
}

export const isDaemonUnavailable = (e: unknown): e is DaemonUnavailableError => e instanceof DaemonUnavailableError;
export const isApiReplyError = (e: unknown): e is ApiReplyError => e instanceof ApiReplyError;

export class ApiClient {
  readonly #nc: NatsConnection;
  readonly #subjects: Subjects;
  readonly #timeoutMs: number;
  readonly #tel: Telemetry | undefined;

  /** With telemetry, each call is a CLIENT span whose context travels in the request's headers. */
  constructor(nc: NatsConnection, subjects: Subjects, timeoutMs: number, telemetry?: Telemetry) {
    this.#nc = nc;
    this.#subjects = subjects;
    this.#timeoutMs = timeoutMs;
    this.#tel = telemetry;
  }

  async call<V extends Verb, T = unknown>(verb: V, request: Request<V>, timeoutMs = this.#timeoutMs, parent?: ParentRef): Promise<T> {
    const subject = this.#subjects.api(verb);
    const span = this.#tel?.span(`request ${subject}`, {
      kind: "client",
      parent,
      attributes: { "messaging.system": "nats", "messaging.destination.name": subject, "messaging.operation": "publish", "messaging.operation.type": "send", "vq.api.verb": verb },
    });
    try {
      return await this.#call<T>(verb, subject, request, timeoutMs, span);
    } catch (err) {
      span?.fail(err);
      throw err;
    } finally {
      span?.end();
    }
  }

  async #call<T>(verb: Verb, subject: string, request: unknown, timeoutMs: number, span: TraceSpan | undefined): Promise<T> {
    let data: Uint8Array;
    try {
      let headers: ReturnType<typeof natsHeaders> | undefined;
      if (span?.traceparent()) {
        // Sampled or not, the context travels: the daemon records the request only if it was.
        headers = natsHeaders();
        span.inject(headers);
      }
      const msg = await this.#nc.request(subject, new TextEncoder().encode(JSON.stringify(request)), headers ? { timeout: timeoutMs, headers } : { timeout: timeoutMs });
      data = msg.data;
    } catch (err) {
      const text = String((err as Error).message ?? err);
      if (/no responders|503/i.test(text) || (err as { code?: string }).code === "503") {
        throw new DaemonUnavailableError("the vqd daemon is not running (no one answers on the API subject)", { cause: err });
      }
      if (/timeout/i.test(text)) throw new DaemonUnavailableError(`the vqd daemon did not answer within ${timeoutMs} ms`, { cause: err });
      throw err;
    }
    const reply = JSON.parse(new TextDecoder().decode(data)) as Reply<T>;
    if (!reply.ok) throw new ApiReplyError(verb, reply.error.code, reply.error.message);
    return reply.result;
  }
}
