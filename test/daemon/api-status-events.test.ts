/**
 * What operators and other services see of a running daemon: `vqd status --json` and the domain
 * events published on `<prefix>.events.>`.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { PublishedEvent } from "../../src/bus/index.js";
import { startHarness, waitFor, type Harness } from "../workers/daemon-harness.js";

interface StatusJson {
  daemon: boolean;
  pid: number;
  uptimeS: number;
  depth: Record<string, number>;
  inFlight: number;
  states: Record<string, number>;
  total: number;
  workers: { size: number; busy: number; running: { videoId: string; step: string | null }[] };
  nats: { ok: boolean; server: string; embedded: boolean; reconnects: number; lanes: Record<string, { waiting: number; inFlight: number }> };
  database: { ok: boolean; file: string };
}

describe("status and events of a running daemon", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      extra: {
        VQD_WORKERS__COUNT: "2",
        VQD_PIPELINES__LONG__STEPS: "[{step: sleep, options: {ms: 10000}}]",
      },
    });
  });
  after(async () => {
    await h?.close();
  });

  it("`vqd status --json` reports depth per lane, in-flight jobs, states, workers, NATS and the database", async () => {
    const long = await h.enqueue(2, { pipeline: "long" });
    try {
      await statusWhileRunning(long);
    } finally {
      // Free the workers whatever happened, so the next test has them.
      for (const id of long) await h.api.call("cancel", { id }).catch(() => undefined);
    }
  });

  /** `vqd status --json`, as the CLI prints it (it falls back to the store if no daemon answers). */
  const cliStatus = async (): Promise<StatusJson> => {
    const r = await h.env.cli(["status", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as StatusJson;
  };

  async function statusWhileRunning(long: string[]): Promise<void> {
    await waitFor(() => h.daemon.pool?.busy === 2 && h.daemon.pool.running().every((r) => r.step === "sleep"), 5000, "both workers to run a long step");
    const normal = await h.enqueue(3, { priority: "normal" });
    const low = await h.enqueue(2, { priority: "low" });
    const high = await h.enqueue(1, { priority: "high" });
    // The relay has published the 6 waiting jobs (the status below checks the lanes too).
    await waitFor(async () => {
      const lanes = ((await h.daemon.status()).nats as StatusJson["nats"]).lanes;
      return Object.values(lanes).reduce((n, l) => n + l.waiting + l.inFlight, 0) === 8;
    }, 5000, "the waiting jobs to reach their lanes");

    const s = await cliStatus();
    assert.equal(s.daemon, true, `answered by the daemon, not from the store: ${JSON.stringify(s)}`);
    assert.equal(s.pid, process.pid);
    assert.equal(typeof s.uptimeS, "number");
    assert.ok(s.uptimeS >= 0 && s.uptimeS < 120);
    assert.deepEqual(s.depth, { high: 1, normal: 3, low: 2 });
    assert.equal(s.inFlight, 2);
    assert.deepEqual(s.states, { queued: 6, running: 2, retrying: 0, completed: 0, dead: 0, cancelled: 0 });
    assert.equal(s.total, 8);
    assert.equal(s.workers.size, 2);
    assert.equal(s.workers.busy, 2, "idle = size - busy = 0");
    assert.deepEqual(s.workers.running.map((x) => x.videoId).sort(), [...long].sort());
    assert.ok(s.workers.running.every((x) => x.step === "sleep"));
    assert.equal(s.nats.ok, true);
    assert.equal(s.nats.server, h.srv.url.replace("nats://", ""));
    assert.equal(s.nats.embedded, false);
    assert.equal(s.nats.reconnects, 0);
    assert.deepEqual(Object.keys(s.nats.lanes).sort(), ["high", "low", "normal"]);
    // Every job message is either waiting in its lane or held by this node.
    const lane = (l: string) => (s.nats.lanes[l]?.waiting ?? 0) + (s.nats.lanes[l]?.inFlight ?? 0);
    assert.deepEqual([lane("high"), lane("normal"), lane("low")], [1, 5, 2]);
    assert.equal(s.database.ok, true);
    assert.equal(s.database.file, h.env.config().database.file);

    // Free the workers; the waiting jobs then run.
    for (const id of long) await h.api.call("cancel", { id });
    const rest = [...normal, ...low, ...high];
    await waitFor(() => rest.every((id) => h.daemon.store.get(id)?.state === "completed") && h.daemon.pool?.busy === 0, 5000, "the waiting jobs to complete");
    const idle = await cliStatus();
    assert.equal(idle.daemon, true);
    assert.deepEqual(idle.depth, { high: 0, normal: 0, low: 0 });
    assert.equal(idle.inFlight, 0);
    assert.equal(idle.workers.busy, 0);
    assert.deepEqual(idle.states, { queued: 0, running: 0, retrying: 0, completed: 6, dead: 0, cancelled: 2 });
  }

  it("publishes VideoEnqueued, AttemptStarted, StepCompleted and VideoCompleted, in order, after commit", async () => {
    const seen: { subject: string; event: PublishedEvent }[] = [];
    const sub = h.nc.subscribe(h.subjects.eventsWildcard, {
      callback: (_err, msg) => {
        seen.push({ subject: msg.subject, event: JSON.parse(new TextDecoder().decode(msg.data)) as PublishedEvent });
      },
    });
    try {
      await h.nc.flush();
      const [id] = (await h.enqueue(1, { pipeline: "noop" })) as [string];
      await waitFor(() => seen.some((s) => s.event.videoId === id && s.event.type === "VideoCompleted"), 5000, "VideoCompleted on the events subject");
      const mine = seen.filter((s) => s.event.videoId === id);
      assert.deepEqual(
        mine.map((s) => s.event.type),
        ["VideoEnqueued", "AttemptStarted", "StepCompleted", "VideoCompleted"],
      );
      assert.deepEqual(
        mine.map((s) => s.subject),
        mine.map((s) => `${h.subjects.prefix}.events.${s.event.type}`),
      );
      assert.deepEqual(
        mine.map((s) => s.event.version),
        [1, 2, 3, 4],
      );
      const positions = mine.map((s) => s.event.position);
      assert.deepEqual(positions, [...positions].sort((a, b) => a - b));
      // Each one is the committed event of the record, with its id and data.
      const timeline = h.daemon.store.timeline(id);
      assert.deepEqual(
        mine.map((s) => [s.event.eventId, s.event.position, s.event.recordedAt]),
        timeline.map((e) => [e.eventId, e.position, e.recordedAt]),
      );
      assert.deepEqual(mine[3]?.event.data, timeline[3]?.data);
      assert.equal((mine[0]?.event.data as { pipeline: string }).pipeline, "noop");
    } finally {
      sub.unsubscribe();
    }
  });
});
