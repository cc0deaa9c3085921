import type { NatsConnection } from "@nats-io/transport-node";
import type { Subjects } from "./subjects.js";

/** What outside subscribers receive on `<prefix>.events.<type>`. */
export interface PublishedEvent {
  readonly eventId: string;
  readonly videoId: string;
  readonly type: string;
  readonly version: number;
  readonly position: number;
  readonly recordedAt: string;
  readonly data: unknown;
}

/**
 * Domain events for other services, published on core NATS after the transaction that recorded
 * them commits. At most once: a subscriber that must not miss one reads the log (`vqd show`,
 * the API) to catch up; the event log, not this feed, is the record.
 */
export class NatsEventBus {
  readonly #nc: NatsConnection;
  readonly #subjects: Subjects;
  readonly #encoder = new TextEncoder();

  constructor(nc: NatsConnection, subjects: Subjects) {
    this.#nc = nc;
    this.#subjects = subjects;
  }

  publish(event: PublishedEvent): void {
    this.#nc.publish(this.#subjects.event(event.type), this.#encoder.encode(JSON.stringify(event)));
  }

  publishAll(events: readonly PublishedEvent[]): void {
    for (const e of events) this.publish(e);
  }
}
