/**
 * bus group: domain events through our event bus (NatsEventBus.publish: JSON-encoded inside the
 * bus, subject `<prefix>.events.<type>`) against plain nats.js doing the same work by hand
 * (JSON.stringify + encode + nc.publish), side by side on the harness nats-server.
 *
 * Both sides: one publishing connection, one subscribing connection on `<prefix>.events.>` whose
 * callback JSON.parses every message and counts it. The publisher sends in chunks of CHUNK and
 * lets the event loop turn between chunks (the subscriber lives in the same process), then
 * flushes. The clock runs from the first publish until the subscriber has every event; a run
 * that stops receiving for IDLE_MS ends early and reports what was delivered.
 */
import { performance } from "node:perf_hooks";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NatsEventBus, subjects as makeSubjects, type PublishedEvent } from "../../src/bus/index.js";
import { startNatsServer, type TestNatsServer } from "../support/nats-server.js";
import { alternate, median } from "./measure.js";
import type { BenchContext, BenchGroup, BenchResult, Figure } from "./types.js";

/** The reference app's event storm (in process, no network): 100,000 events in 0.334 s. */
const REFERENCE_EVENTS_S = 299_424;

interface Plan {
  readonly events: number;
  readonly reps: number;
  readonly warmup: number;
}

const FULL: Plan = { events: 100_000, reps: 3, warmup: 20_000 };
const QUICK: Plan = { events: 20_000, reps: 1, warmup: 5_000 };
const CHUNK = 1_000;
const IDLE_MS = 3_000;

/** Realistic event objects, the shapes the daemon publishes for a no-op job, made before the clock. */
export function makeEvents(n: number): PublishedEvent[] {
  const out: PublishedEvent[] = [];
  const at = new Date(Date.UTC(2025, 0, 1)).toISOString();
  for (let i = 0; i < n; i++) {
    const videoId = `01jbench${String(i >> 2).padStart(12, "0")}`;
    const version = (i & 3) + 1;
    const base = { eventId: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`, videoId, version, position: i + 1, recordedAt: at };
    switch (i & 3) {
      case 0:
        out.push({ ...base, type: "VideoEnqueued", data: { path: `/srv/videos/incoming/clip-${i}.mp4`, pipeline: "noop", steps: ["noop"], lane: "normal", maxAttempts: 5, metadata: {}, at } });
        break;
      case 1:
        out.push({ ...base, type: "AttemptStarted", data: { attempt: 1, dispatch: 1, worker: "bench-host:1234/1", at } });
        break;
      case 2:
        out.push({ ...base, type: "StepCompleted", data: { attempt: 1, index: 0, step: "noop", outputs: {}, durationMs: 0.012, at } });
        break;
      default:
        out.push({ ...base, type: "VideoCompleted", data: { attempts: 1, outputs: { noop: {} }, at } });
    }
  }
  return out;
}

interface RunResult {
  readonly eventsPerSec: number;
  readonly delivered: number;
}

let runCounter = 0;
let sink = 0;

/** One storm: `publish` is called for every event; a fresh prefix so no run sees another's messages. */
async function stormOnce(
  pub: NatsConnection,
  sub: NatsConnection,
  events: readonly PublishedEvent[],
  makePublish: (nc: NatsConnection, prefix: string) => (e: PublishedEvent) => void,
): Promise<RunResult> {
  const prefix = `vqbus${process.pid}r${++runCounter}`;
  const subj = makeSubjects(prefix);
  const n = events.length;
  const decoder = new TextDecoder();
  let received = 0;
  let lastAt = 0;
  let lastProgress = performance.now();
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((r) => (resolveDone = r));
  const subscription = sub.subscribe(subj.eventsWildcard, {
    callback: (_err, msg) => {
      const e = JSON.parse(decoder.decode(msg.data)) as PublishedEvent;
      sink += e.version;
      received++;
      lastProgress = performance.now();
      if (received === n) {
        lastAt = lastProgress;
        resolveDone();
      }
    },
  });
  await sub.flush();
  const publish = makePublish(pub, prefix);
  try {
    const start = performance.now();
    for (let i = 0; i < n; i += CHUNK) {
      const end = Math.min(n, i + CHUNK);
      for (let j = i; j < end; j++) publish(events[j] as PublishedEvent);
      await new Promise<void>((r) => setImmediate(r));
    }
    await pub.flush();
    // Done, or stalled (messages dropped somewhere): stop waiting after IDLE_MS without progress.
    lastProgress = performance.now();
    for (;;) {
      const idle = await Promise.race([done.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 200))]);
      if (!idle) break;
      if (performance.now() - lastProgress > IDLE_MS) {
        lastAt = lastProgress;
        break;
      }
    }
    return { eventsPerSec: received / ((lastAt - start) / 1000), delivered: received / n };
  } finally {
    subscription.unsubscribe();
  }
}

const ours = (nc: NatsConnection, prefix: string) => {
  const bus = new NatsEventBus(nc, makeSubjects(prefix));
  return (e: PublishedEvent) => bus.publish(e);
};

const raw = (nc: NatsConnection, prefix: string) => {
  const encoder = new TextEncoder();
  return (e: PublishedEvent) => nc.publish(`${prefix}.events.${e.type}`, encoder.encode(JSON.stringify(e)));
};

async function run(ctx: BenchContext): Promise<BenchResult> {
  const plan = ctx.quick ? QUICK : FULL;
  let srv: TestNatsServer | undefined;
  let pub: NatsConnection | undefined;
  let sub: NatsConnection | undefined;
  const slow: string[] = [];
  try {
    srv = await startNatsServer({ jetstream: false });
    pub = await connect({ servers: srv.url, name: "vqd-bench-pub" });
    sub = await connect({ servers: srv.url, name: "vqd-bench-sub" });
    for (const nc of [pub, sub]) {
      void (async () => {
        for await (const s of nc.status()) if (s.type === "slowConsumer" || s.type === "error") slow.push(s.type);
      })();
    }
    const events = makeEvents(plan.events);
    const p = pub;
    const s = sub;
    ctx.log(`bus: warm-up, ${plan.warmup} events each side`);
    await stormOnce(p, s, events.slice(0, plan.warmup), ours);
    await stormOnce(p, s, events.slice(0, plan.warmup), raw);
    const samples = { a: [] as RunResult[], b: [] as RunResult[] };
    await alternate(
      plan.reps,
      async (rep) => {
        const r = await stormOnce(p, s, events, ours);
        ctx.log(`bus: ours rep ${rep + 1}: ${Math.round(r.eventsPerSec)} events/s, delivered ${(r.delivered * 100).toFixed(2)}%`);
        samples.a.push(r);
        return r.eventsPerSec;
      },
      async (rep) => {
        const r = await stormOnce(p, s, events, raw);
        ctx.log(`bus: raw  rep ${rep + 1}: ${Math.round(r.eventsPerSec)} events/s, delivered ${(r.delivered * 100).toFixed(2)}%`);
        samples.b.push(r);
        return r.eventsPerSec;
      },
    );
    const delivered = Math.min(...samples.a.map((r) => r.delivered));
    const rawDelivered = Math.min(...samples.b.map((r) => r.delivered));
    const fmt = (xs: readonly RunResult[]): string => xs.map((r) => Math.round(r.eventsPerSec).toLocaleString("en-US")).join(", ");
    const figures: Figure[] = [
      {
        key: "bus.events_s",
        label: `event storm, ${plan.events.toLocaleString("en-US")} events, pub -> sub over NATS`,
        value: median(samples.a.map((r) => r.eventsPerSec)),
        unit: "events/s",
        baselineKey: "bus.raw_events_s",
        goal: { kind: "ratio-min", value: 0.85 },
        reference: REFERENCE_EVENTS_S,
      },
      { key: "bus.raw_events_s", value: median(samples.b.map((r) => r.eventsPerSec)), unit: "events/s" },
      { key: "bus.delivered_ratio", label: "delivered, worst rep (1 = 100%)", value: delivered, unit: "", goal: { kind: "min", value: 1 } },
    ];
    return {
      figures,
      notes: [
        `ours = NatsEventBus.publish(PublishedEvent) (JSON inside the bus); raw = JSON.stringify + TextEncoder + nc.publish by hand; ` +
          `both: subscriber on <prefix>.events.> on a second connection, JSON.parse of every message; chunks of ${CHUNK} with an event-loop turn between, then flush`,
        `median of ${plan.reps} alternating reps after ${plan.warmup.toLocaleString("en-US")}-event warm-ups; ours ${fmt(samples.a)}; raw ${fmt(samples.b)} events/s; ` +
          `raw delivered ${(rawDelivered * 100).toFixed(2)}% (worst rep); slow-consumer/error status events: ${slow.length}`,
        `reference app: ${REFERENCE_EVENTS_S.toLocaleString("en-US")} events/s, in process (no network, no encoding)`,
        ...(sink === -1 ? ["(unreachable)"] : []),
      ],
    };
  } finally {
    await pub?.close();
    await sub?.close();
    await srv?.stop();
  }
}

export const busGroup: BenchGroup = {
  name: "bus",
  description: "event bus over NATS vs raw nats.js pub->sub, same run",
  run,
};
