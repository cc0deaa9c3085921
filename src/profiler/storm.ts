/**
 * Domain events over NATS: NatsEventBus.publish on one connection, a subscriber on another that
 * JSON-parses and counts every message, as an outside service on `<prefix>.events.>` would.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { NatsEventBus, subjects as makeSubjects, type PublishedEvent } from "../bus/index.js";
import { now, sleep, throwIfAborted } from "./measure.js";

/** The shapes the daemon publishes for a job (enqueued, started, step done, completed), made before the clock. */
export function makeEvents(n: number): PublishedEvent[] {
  const out: PublishedEvent[] = [];
  const at = new Date().toISOString();
  for (let i = 0; i < n; i++) {
    const videoId = `01jprofile${String(i >> 2).padStart(10, "0")}`;
    const base = { eventId: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`, videoId, version: (i & 3) + 1, position: i + 1, recordedAt: at };
    switch (i & 3) {
      case 0:
        out.push({ ...base, type: "VideoEnqueued", data: { path: `/srv/videos/incoming/clip-${i}.mp4`, pipeline: "noop", steps: ["noop"], lane: "normal", maxAttempts: 5, metadata: {}, at } });
        break;
      case 1:
        out.push({ ...base, type: "AttemptStarted", data: { attempt: 1, dispatch: 1, worker: "profile-host:1/1", at } });
        break;
      case 2:
        out.push({ ...base, type: "StepCompleted", data: { attempt: 1, index: 0, step: "noop", outputs: {}, durationMs: 0.01, at } });
        break;
      default:
        out.push({ ...base, type: "VideoCompleted", data: { attempts: 1, outputs: { noop: {} }, at } });
    }
  }
  return out;
}

export interface StormResult {
  readonly elapsedMs: number;
  readonly received: number;
  readonly eventsPerSec: number;
  readonly usPerEvent: number;
}

export type Publisher = (nc: NatsConnection, prefix: string) => (e: PublishedEvent) => void;

export const viaEventBus: Publisher = (nc, prefix) => {
  const bus = new NatsEventBus(nc, makeSubjects(prefix));
  return (e) => bus.publish(e);
};

/** nats.js by hand (JSON.stringify + encode + publish): the floor the bus is compared with. */
export const rawNats: Publisher = (nc, prefix) => {
  const encoder = new TextEncoder();
  return (e) => nc.publish(`${prefix}.events.${e.type}`, encoder.encode(JSON.stringify(e)));
};

const CHUNK = 1_000;
const IDLE_MS = 3_000;

/**
 * Publishes every event (in chunks, letting the event loop turn between them: the subscriber is
 * in this process too) and waits until the subscriber has them all, or has received nothing for
 * IDLE_MS (then the delivered count says what was lost). The clock runs to the last delivery.
 */
export async function storm(
  pub: NatsConnection,
  sub: NatsConnection,
  prefix: string,
  events: readonly PublishedEvent[],
  publisher: Publisher,
  signal?: AbortSignal,
): Promise<StormResult> {
  const subj = makeSubjects(prefix);
  const n = events.length;
  const decoder = new TextDecoder();
  let received = 0;
  let lastAt = 0;
  let checksum = 0;
  const subscription = sub.subscribe(subj.eventsWildcard, {
    callback: (_err, msg) => {
      const e = JSON.parse(decoder.decode(msg.data)) as PublishedEvent;
      checksum += e.version;
      received++;
      lastAt = now();
    },
  });
  await sub.flush();
  const publish = publisher(pub, prefix);
  try {
    const start = now();
    for (let i = 0; i < n; i += CHUNK) {
      const end = Math.min(n, i + CHUNK);
      for (let j = i; j < end; j++) publish(events[j] as PublishedEvent);
      await new Promise<void>((r) => setImmediate(r));
      throwIfAborted(signal);
    }
    await pub.flush();
    let lastSeen = received;
    let idleSince = now();
    while (received < n) {
      await sleep(5, signal);
      if (received !== lastSeen) {
        lastSeen = received;
        idleSince = now();
      } else if (now() - idleSince > IDLE_MS) break;
    }
    const elapsedMs = (received > 0 ? lastAt : now()) - start;
    if (checksum < 0) throw new Error("unreachable");
    return { elapsedMs, received, eventsPerSec: received / (elapsedMs / 1000), usPerEvent: (elapsedMs * 1000) / n };
  } finally {
    subscription.unsubscribe();
  }
}
