/**
 * A graceful stop with a job still running past the shutdown deadline hands the job back to
 * the queue; the next start runs it again at once (not after the reconciler's next pass).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { countOf, startHarness, waitFor, type Harness } from "../workers/daemon-harness.js";

describe("restart with a running job", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      extra: {
        VQD_WORKERS__COUNT: "1",
        VQD_WORKERS__SHUTDOWNDEADLINEMS: "200",
        VQD_PIPELINES__SLOW__STEPS: "[{step: noop}, {step: sleep, options: {ms: 1500}}]",
      },
    });
  });
  after(async () => {
    await h?.close();
  });

  it("resumes a job stopped by shutdown as soon as the daemon is back", async () => {
    const [id] = (await h.enqueue(1, { pipeline: "slow" })) as [string];
    await waitFor(() => h.daemon.pool?.running().some((r) => r.videoId === id && r.step === "sleep"), 5000, "the job to reach its slow step");
    await h.daemon.stop();
    assert.equal(h.daemon.store === undefined, false);
    const daemon = await h.startDaemon();
    // The reconciler's next pass is a minute away: only the handed-back message can do this.
    await waitFor(() => daemon.store.get(id)?.state === "completed", 5000, `the job to complete after the restart (is ${daemon.store.get(id)?.state})`);
    const timeline = daemon.store.timeline(id);
    assert.deepEqual(
      timeline.map((e) => [e.type, (e.data as { attempt?: number; index?: number }).attempt]),
      [
        ["VideoEnqueued", undefined],
        ["AttemptStarted", 1],
        ["StepCompleted", 1],
        ["AttemptStarted", 2],
        ["StepCompleted", 2],
        ["VideoCompleted", undefined],
      ],
    );
    assert.equal(countOf(daemon, id, "AttemptFailed"), 0, "a shutdown is not a failure");
  });
});
