import type { NatsConnection } from "@nats-io/transport-node";
import type { Subjects } from "../bus/index.js";
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

  constructor(nc: NatsConnection, subjects: Subjects, timeoutMs: number) {
    this.#nc = nc;
    this.#subjects = subjects;
    this.#timeoutMs = timeoutMs;
  }

  async call<V extends Verb, T = unknown>(verb: V, request: Request<V>, timeoutMs = this.#timeoutMs): Promise<T> {
    let data: Uint8Array;
    try {
      const msg = await this.#nc.request(this.#subjects.api(verb), new TextEncoder().encode(JSON.stringify(request)), { timeout: timeoutMs });
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
