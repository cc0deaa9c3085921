import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Subjects } from "../bus/index.js";
import type { Logger } from "../shared/logger.js";
import { NOOP_SPAN } from "../telemetry/facade.js";
import type { Telemetry, TraceSpan } from "../telemetry/types.js";
import { describeIssues, requests, VERBS, type ErrorCode, type Reply, type Request, type Verb } from "./protocol.js";

/** What a handler knows about the request besides its body: the SERVER span it runs in. */
export interface ApiCall {
  readonly span: TraceSpan;
}

export type Handlers = { [V in Verb]: (request: Request<V>, call: ApiCall) => Promise<unknown> | unknown };

/** An error a handler throws to choose the reply's code (anything else is "internal"). */
export class ApiError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = "ApiError";
    this.code = code;
  }
}

export interface ApiServerOptions {
  readonly subjects: Subjects;
  readonly maxPayloadBytes: number;
  readonly logger: Logger;
  /** Maps domain/input errors to reply codes; returns null for unexpected errors. */
  readonly classify: (err: unknown) => ErrorCode | null;
  /** Each request is a SERVER span, continuing the trace its headers carry. */
  readonly telemetry?: Telemetry;
}

/**
 * Serves `<prefix>.api.*`. Each request is validated before it reaches a handler; a bad one is
 * answered with an error that names the problem and nothing else happens.
 */
export class ApiServer {
  readonly #nc: NatsConnection;
  readonly #handlers: Handlers;
  readonly #o: ApiServerOptions;
  #sub?: Subscription;

  constructor(nc: NatsConnection, handlers: Handlers, options: ApiServerOptions) {
    this.#nc = nc;
    this.#handlers = handlers;
    this.#o = options;
  }

  start(): void {
    const prefix = this.#o.subjects.api("");
    this.#sub = this.#nc.subscribe(this.#o.subjects.apiWildcard, {
      callback: (err, msg) => {
        if (err) {
          this.#o.logger.warn({ err: err.message }, "api subscription error");
          return;
        }
        if (!msg.reply) return;
        const verb = msg.subject.slice(prefix.length);
        const known = (VERBS as string[]).includes(verb);
        const span = this.#o.telemetry
          ? this.#o.telemetry.span(`process ${known ? msg.subject : this.#o.subjects.apiWildcard}`, {
              kind: "server",
              parent: msg.headers?.get("traceparent") || undefined,
              attributes: { "messaging.system": "nats", "messaging.destination.name": msg.subject, "messaging.operation": "process", "messaging.operation.type": "process", "vq.api.verb": known ? verb : undefined },
            })
          : NOOP_SPAN;
        void this.#handle(verb, msg.data, span).then((reply) => {
          if (!reply.ok) span.setAttribute("vq.api.error", reply.error.code);
          if (!reply.ok && reply.error.code === "internal") span.fail(new Error(reply.error.message));
          try {
            msg.respond(new TextEncoder().encode(JSON.stringify(reply)));
          } catch (e) {
            this.#o.logger.warn({ verb, err: (e as Error).message }, "could not send api reply");
          }
          span.end();
        });
      },
    });
  }

  async stop(): Promise<void> {
    if (!this.#sub) return;
    this.#sub.unsubscribe();
    this.#sub = undefined;
  }

  async #handle(verb: string, data: Uint8Array, span: TraceSpan): Promise<Reply> {
    const fail = (code: ErrorCode, message: string): Reply => ({ ok: false, error: { code, message } });
    if (!(VERBS as string[]).includes(verb)) return fail("unknown_verb", `unknown verb ${JSON.stringify(verb)} (known: ${VERBS.join(", ")})`);
    if (data.length > this.#o.maxPayloadBytes) {
      return fail("too_large", `payload of ${data.length} bytes exceeds the limit of ${this.#o.maxPayloadBytes} bytes`);
    }
    let body: unknown;
    try {
      body = data.length === 0 ? {} : JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data));
    } catch (err) {
      return fail("bad_request", `payload is not valid JSON: ${(err as Error).message}`);
    }
    const parsed = requests[verb as Verb].safeParse(body);
    if (!parsed.success) return fail("bad_request", `invalid ${verb} request: ${describeIssues(parsed.error)}`);
    try {
      const handler = this.#handlers[verb as Verb] as (r: unknown, call: ApiCall) => Promise<unknown> | unknown;
      return { ok: true, result: await handler(parsed.data, { span }) };
    } catch (err) {
      if (err instanceof ApiError) return fail(err.code, err.message);
      const code = this.#o.classify(err);
      if (code) return fail(code, (err as Error).message);
      this.#o.logger.error({ verb, err: (err as Error).stack }, "api handler failed");
      return fail("internal", `internal error: ${(err as Error).message}`);
    }
  }
}

export { requests, VERBS, describeIssues } from "./protocol.js";
