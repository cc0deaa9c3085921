import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  backoffDelay,
  currentStep,
  decide,
  evolve,
  IllegalTransitionError,
  nextStepIndex,
  replay,
  StaleJobError,
  VideoExistsError,
  VideoNotFoundError,
  wantsDispatch,
  type BackoffPolicy,
  type Lane,
  type StepOutputs,
  type Video,
  type VideoCommand,
  type VideoEvent,
} from "../../src/domain/index.js";
import { fold, given, NOW, VIDEO_ID } from "./given.js";

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

const AT = NOW.toISOString();
const T0 = "2025-03-01T11:00:00.000Z";
const STEPS = ["probe", "transcode", "thumbnail"] as const;
const BACKOFF: BackoffPolicy = { initialMs: 1_000, maxMs: 60_000, multiplier: 2, jitter: 0.2 };
const NO_JITTER: BackoffPolicy = { ...BACKOFF, jitter: 0 };

// Events (history)
const enqueued = (o: { steps?: readonly string[]; lane?: Lane; maxAttempts?: number } = {}): VideoEvent => ({
  type: "VideoEnqueued",
  data: {
    path: "/in/a.mp4",
    pipeline: "web",
    steps: [...(o.steps ?? STEPS)],
    lane: o.lane ?? "normal",
    maxAttempts: o.maxAttempts ?? 3,
    metadata: { owner: "alice" },
    at: T0,
  },
});
const started = (attempt: number, dispatch: number, worker = "w1"): VideoEvent => ({
  type: "AttemptStarted",
  data: { attempt, dispatch, worker, at: T0 },
});
const stepDone = (attempt: number, index: number, step: string, outputs: StepOutputs = { file: `/out/${step}-${index}` }): VideoEvent => ({
  type: "StepCompleted",
  data: { attempt, index, step, outputs, durationMs: 10, at: T0 },
});
const attemptFailed = (attempt: number, index: number, step: string, retryable: boolean, message = "boom"): VideoEvent => ({
  type: "AttemptFailed",
  data: { attempt, error: { step, index, message, retryable }, at: T0 },
});
const retryScheduled = (nextAttempt: number, delayMs = 1_000): VideoEvent => ({
  type: "RetryScheduled",
  data: { nextAttempt, delayMs, notBefore: "2025-03-01T11:00:01.000Z", at: T0 },
});
const videoCompleted = (attempts: number, outputs: Record<string, StepOutputs>): VideoEvent => ({
  type: "VideoCompleted",
  data: { attempts, outputs, at: T0 },
});
const deadLettered = (attempts: number, reason = "not retryable: boom"): VideoEvent => ({
  type: "VideoDeadLettered",
  data: { attempts, reason, at: T0 },
});
const cancelled = (previousState: string): VideoEvent => ({
  type: "VideoCancelled",
  data: { reason: "operator", previousState, at: T0 },
});

// Commands
const enqueue = (o: { steps?: readonly string[]; lane?: Lane; maxAttempts?: number; metadata?: Record<string, string> } = {}): VideoCommand => ({
  type: "EnqueueVideo",
  path: "/in/a.mp4",
  pipeline: "web",
  steps: o.steps ?? STEPS,
  lane: o.lane ?? "normal",
  maxAttempts: o.maxAttempts ?? 3,
  ...(o.metadata ? { metadata: o.metadata } : {}),
});
const start = (dispatch: number, worker = "w1", redelivered = false): VideoCommand => ({ type: "StartAttempt", dispatch, worker, redelivered });
const complete = (attempt: number, index: number, step: string, outputs: StepOutputs = { file: `/out/${step}-${index}` }): VideoCommand => ({
  type: "CompleteStep",
  attempt,
  index,
  step,
  outputs,
  durationMs: 42,
});
const fail = (attempt: number, o: { index?: number; step?: string; retryable?: boolean; random?: number; backoff?: BackoffPolicy } = {}): VideoCommand => ({
  type: "FailAttempt",
  attempt,
  index: o.index ?? 0,
  step: o.step ?? "probe",
  message: "ffmpeg exited with 1",
  retryable: o.retryable ?? true,
  backoff: o.backoff ?? BACKOFF,
  random: o.random ?? 0.5,
});
const cancel = (reason = "operator"): VideoCommand => ({ type: "CancelVideo", reason });
const retry = (): VideoCommand => ({ type: "RetryVideo" });
const priority = (lane: Lane): VideoCommand => ({ type: "ChangePriority", lane });

// Histories, one per state. The comment gives attempts / dispatch after folding.
const QUEUED = [enqueued()]; //                                                   0 / 1
const RUNNING = [...QUEUED, started(1, 1)]; //                                     1 / 1
const RETRYING = [...RUNNING, attemptFailed(1, 0, "probe", true), retryScheduled(2)]; // 1 / 2
const RUNNING_2 = [...RETRYING, started(2, 2)]; //                                 2 / 2
const COMPLETED = [
  ...RUNNING,
  stepDone(1, 0, "probe"),
  stepDone(1, 1, "transcode"),
  stepDone(1, 2, "thumbnail"),
  videoCompleted(1, { probe: {}, transcode: {}, thumbnail: {} }),
];
const DEAD = [...RUNNING, attemptFailed(1, 0, "probe", false), deadLettered(1)]; // 1 / 1
/** Dead after the first step succeeded: a redrive must resume at step 1. */
const DEAD_AT_STEP_1 = [...RUNNING, stepDone(1, 0, "probe"), attemptFailed(1, 1, "transcode", false), deadLettered(1)];
const CANCELLED = [...QUEUED, cancelled("queued")];

const STATES: Record<string, VideoEvent[]> = {
  queued: QUEUED,
  running: RUNNING,
  retrying: RETRYING,
  completed: COMPLETED,
  dead: DEAD,
  cancelled: CANCELLED,
};

const stateOf = (events: readonly VideoEvent[]): Video => {
  const v = fold(events);
  assert.ok(v);
  return v;
};

// ---------------------------------------------------------------------------------------------
// Sanity check on the fixtures themselves
// ---------------------------------------------------------------------------------------------

describe("fixtures", () => {
  it("each history folds to the state it is named after", () => {
    for (const [name, events] of Object.entries(STATES)) assert.equal(stateOf(events).state, name, name);
    assert.equal(stateOf(RUNNING_2).state, "running");
    assert.equal(stateOf(DEAD_AT_STEP_1).state, "dead");
  });
});

// ---------------------------------------------------------------------------------------------
// EnqueueVideo
// ---------------------------------------------------------------------------------------------

describe("EnqueueVideo", () => {
  it("refuses maxAttempts below 1", () => {
    given([]).when(enqueue({ maxAttempts: 0 })).thenThrows(IllegalTransitionError, /maxAttempts must be a whole number >= 1, got 0/);
  });

  it("enqueues a new video: queued, dispatch 1, attempts 0", () => {
    const { after } = given([])
      .when(enqueue({ lane: "high", metadata: { owner: "bob" } }))
      .then([
        {
          type: "VideoEnqueued",
          data: { path: "/in/a.mp4", pipeline: "web", steps: [...STEPS], lane: "high", maxAttempts: 3, metadata: { owner: "bob" }, at: AT },
        },
      ]);
    assert.equal(after.id, VIDEO_ID);
    assert.equal(after.state, "queued");
    assert.equal(after.dispatch, 1);
    assert.equal(after.attempts, 0);
    assert.equal(after.version, 1);
    assert.equal(after.lane, "high");
    assert.deepEqual(after.completedSteps, []);
    assert.equal(after.lastError, null);
    assert.equal(after.enqueuedAt, AT);
    assert.equal(after.startedAt, null);
    assert.equal(after.finishedAt, null);
    assert.ok(wantsDispatch(after));
  });

  it("defaults metadata to an empty object", () => {
    const { events } = given([]).when(enqueue()).then(["VideoEnqueued"]);
    assert.deepEqual(events[0]?.type === "VideoEnqueued" && events[0].data.metadata, {});
  });

  it("copies the steps so the command can't alias the event", () => {
    const steps = ["probe"];
    const { events } = given([]).when(enqueue({ steps })).then(["VideoEnqueued"]);
    steps.push("extra");
    assert.deepEqual(events[0]?.type === "VideoEnqueued" && events[0].data.steps, ["probe"]);
  });

  for (const [name, history] of Object.entries(STATES)) {
    it(`refuses to enqueue an existing (${name}) video: VideoExistsError`, () => {
      const err = given(history).when(enqueue()).thenThrows(VideoExistsError, new RegExp(`video with id ${VIDEO_ID} already exists`));
      assert.equal(err.videoId, VIDEO_ID);
    });
  }

  it("refuses a pipeline with no steps: IllegalTransitionError", () => {
    const err = given([]).when(enqueue({ steps: [] })).thenThrows(IllegalTransitionError, /cannot enqueue video vid-1: it is new \(its pipeline has no steps\)/);
    assert.equal(err.state, "new");
    assert.equal(err.command, "EnqueueVideo");
  });
});

// ---------------------------------------------------------------------------------------------
// StartAttempt
// ---------------------------------------------------------------------------------------------

describe("StartAttempt", () => {
  it("from queued: attempt 1, running, startedAt set", () => {
    const { after } = given(QUEUED)
      .when(start(1, "w7"))
      .then([{ type: "AttemptStarted", data: { attempt: 1, dispatch: 1, worker: "w7", at: AT } }]);
    assert.equal(after.state, "running");
    assert.equal(after.attempts, 1);
    assert.equal(after.dispatch, 1, "starting does not dispatch");
    assert.equal(after.startedAt, AT);
    assert.equal(currentStep(after), "probe");
    assert.ok(!wantsDispatch(after));
  });

  it("from retrying: next attempt, notBefore cleared, startedAt kept from the first attempt", () => {
    const before = stateOf(RETRYING);
    assert.notEqual(before.notBefore, null);
    const { after } = given(RETRYING)
      .when(start(2))
      .then([{ type: "AttemptStarted", data: { attempt: 2, dispatch: 2, worker: "w1", at: AT } }]);
    assert.equal(after.state, "running");
    assert.equal(after.attempts, 2);
    assert.equal(after.notBefore, null);
    assert.equal(after.startedAt, T0);
  });

  it("from running with the same dispatch (redelivery after a worker crash): the attempt increments", () => {
    const { after } = given(RUNNING)
      .when(start(1, "w2", true))
      .then([{ type: "AttemptStarted", data: { attempt: 2, dispatch: 1, worker: "w2", at: AT } }]);
    assert.equal(after.state, "running");
    assert.equal(after.attempts, 2);
    assert.equal(after.dispatch, 1);
  });

  it("a first delivery of a running video's dispatch is a duplicate message: stale", () => {
    given(RUNNING).when(start(1, "w2")).thenThrows(StaleJobError, /already running attempt 1 \(duplicate message\)/);
  });

  it("redelivery keeps completed steps: the new attempt resumes at the next step", () => {
    const { after } = given([...RUNNING, stepDone(1, 0, "probe")]).when(start(1, "w1", true)).then(["AttemptStarted"]);
    assert.equal(nextStepIndex(after), 1);
    assert.equal(currentStep(after), "transcode");
  });

  for (const [name, history, dispatch] of [
    ["queued", QUEUED, 2],
    ["queued", QUEUED, 0],
    ["retrying (old dispatch)", RETRYING, 1],
    ["running", RUNNING, 2],
  ] as const) {
    it(`a message for the wrong dispatch on a ${name} video is stale`, () => {
      const v = stateOf(history);
      given(history)
        .when(start(dispatch))
        .thenThrows(StaleJobError, new RegExp(`stale job for video ${VIDEO_ID}: message is for dispatch ${dispatch}, video is at dispatch ${v.dispatch}`));
    });
  }

  for (const name of ["completed", "dead", "cancelled"] as const) {
    it(`on a ${name} video (even with its current dispatch) is stale and names the state`, () => {
      const history = STATES[name];
      assert.ok(history);
      const v = stateOf(history);
      given(history)
        .when(start(v.dispatch))
        .thenThrows(StaleJobError, new RegExp(`stale job for video ${VIDEO_ID}: video is ${name}`));
    });
  }
});

// ---------------------------------------------------------------------------------------------
// CompleteStep
// ---------------------------------------------------------------------------------------------

describe("CompleteStep", () => {
  it("a middle step produces StepCompleted only and advances the next step", () => {
    const { after } = given([...RUNNING, stepDone(1, 0, "probe")])
      .when(complete(1, 1, "transcode", { file: "/out/t.mp4" }))
      .then([{ type: "StepCompleted", data: { attempt: 1, index: 1, step: "transcode", outputs: { file: "/out/t.mp4" }, durationMs: 42, at: AT } }]);
    assert.equal(after.state, "running");
    assert.equal(nextStepIndex(after), 2);
    assert.equal(currentStep(after), "thumbnail");
    assert.deepEqual(after.completedSteps[1], { index: 1, step: "transcode", outputs: { file: "/out/t.mp4" }, durationMs: 42 });
  });

  it("the first step produces StepCompleted only", () => {
    given(RUNNING).when(complete(1, 0, "probe")).then(["StepCompleted"]);
  });

  it("the last step produces StepCompleted + VideoCompleted with outputs keyed by step name", () => {
    const { after } = given([...RUNNING, stepDone(1, 0, "probe", { duration: 3.5 }), stepDone(1, 1, "transcode", { file: "/out/t.mp4" })])
      .when(complete(1, 2, "thumbnail", { file: "/out/t.jpg" }))
      .then([
        "StepCompleted",
        {
          type: "VideoCompleted",
          data: { attempts: 1, outputs: { probe: { duration: 3.5 }, transcode: { file: "/out/t.mp4" }, thumbnail: { file: "/out/t.jpg" } }, at: AT },
        },
      ]);
    assert.equal(after.state, "completed");
    assert.equal(after.finishedAt, AT);
    assert.equal(after.completedSteps.length, 3);
    assert.equal(currentStep(after), null);
    assert.ok(!wantsDispatch(after));
  });

  it("a single-step pipeline completes on its only step", () => {
    const history = [enqueued({ steps: ["probe"] }), started(1, 1)];
    given(history)
      .when(complete(1, 0, "probe", { ok: true }))
      .then(["StepCompleted", { type: "VideoCompleted", data: { attempts: 1, outputs: { probe: { ok: true } }, at: AT } }]);
  });

  it("a repeated step name is keyed `name#index`; unique names stay plain", () => {
    const steps = ["probe", "thumbnail", "transcode", "thumbnail"];
    const history = [enqueued({ steps }), started(1, 1), stepDone(1, 0, "probe", { p: 1 }), stepDone(1, 1, "thumbnail", { t: 1 }), stepDone(1, 2, "transcode", { x: 1 })];
    given(history)
      .when(complete(1, 3, "thumbnail", { t: 2 }))
      .then([
        "StepCompleted",
        { type: "VideoCompleted", data: { attempts: 1, outputs: { probe: { p: 1 }, "thumbnail#1": { t: 1 }, transcode: { x: 1 }, "thumbnail#3": { t: 2 } }, at: AT } },
      ]);
  });

  it("VideoCompleted reports the attempt count of the attempt that finished", () => {
    given([...RUNNING_2, stepDone(2, 0, "probe"), stepDone(2, 1, "transcode")])
      .when(complete(2, 2, "thumbnail"))
      .then(["StepCompleted", "VideoCompleted"])
      .events.forEach((e) => {
        if (e.type === "VideoCompleted") assert.equal(e.data.attempts, 2);
      });
  });

  it("a report from an older attempt is stale", () => {
    given(RUNNING_2).when(complete(1, 0, "probe")).thenThrows(StaleJobError, /stale job for video vid-1: report from attempt 1, current attempt is 2/);
  });

  it("a report from a future attempt is stale", () => {
    given(RUNNING).when(complete(2, 0, "probe")).thenThrows(StaleJobError, /report from attempt 2, current attempt is 1/);
  });

  it("a report for the wrong index is stale (skipping ahead)", () => {
    given(RUNNING).when(complete(1, 1, "transcode")).thenThrows(StaleJobError, /step 1 \(transcode\) reported, next step is 0 \(probe\)/);
  });

  it("a duplicate report for an already completed step is stale", () => {
    given([...RUNNING, stepDone(1, 0, "probe")]).when(complete(1, 0, "probe")).thenThrows(StaleJobError, /step 0 \(probe\) reported, next step is 1 \(transcode\)/);
  });

  it("a report with the right index but the wrong step name is stale", () => {
    given(RUNNING).when(complete(1, 0, "transcode")).thenThrows(StaleJobError, /step 0 \(transcode\) reported, next step is 0 \(probe\)/);
  });

  it("an index past the end is stale", () => {
    given(RUNNING).when(complete(1, 9, "probe")).thenThrows(StaleJobError, /step 9 \(probe\) reported, next step is 0/);
  });

  for (const name of ["queued", "retrying", "dead", "cancelled"] as const) {
    it(`on a ${name} video (not running) is an illegal transition naming the state`, () => {
      const history = STATES[name];
      assert.ok(history);
      const err = given(history).when(complete(1, 0, "probe")).thenThrows(IllegalTransitionError, new RegExp(`cannot complete a step of video ${VIDEO_ID}: it is ${name}`));
      assert.equal(err.state, name);
      assert.equal(err.command, "CompleteStep");
      assert.equal(err.videoId, VIDEO_ID);
    });
  }

  it("completing a completed video again is refused: exactly one VideoCompleted", () => {
    given(COMPLETED).when(complete(1, 2, "thumbnail")).thenThrows(IllegalTransitionError, /cannot complete a step of video vid-1: it is completed/);
    // Drive it end to end through decide(), then replay the last report: one VideoCompleted only.
    let history: VideoEvent[] = [...RUNNING, stepDone(1, 0, "probe"), stepDone(1, 1, "transcode")];
    const last = complete(1, 2, "thumbnail");
    history = [...history, ...decide(VIDEO_ID, fold(history), last, NOW)];
    assert.throws(() => decide(VIDEO_ID, fold(history), last, NOW), IllegalTransitionError);
    assert.equal(history.filter((e) => e.type === "VideoCompleted").length, 1);
  });
});

// ---------------------------------------------------------------------------------------------
// FailAttempt and backoff
// ---------------------------------------------------------------------------------------------

describe("backoffDelay", () => {
  it("starts at initialMs for the first failure (and for 0)", () => {
    assert.equal(backoffDelay(NO_JITTER, 1, 0.5), 1_000);
    assert.equal(backoffDelay(NO_JITTER, 0, 0.5), 1_000);
  });

  it("multiplies by `multiplier` per failed attempt", () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((n) => backoffDelay(NO_JITTER, n, 0.5)),
      [1_000, 2_000, 4_000, 8_000, 16_000],
    );
    assert.equal(backoffDelay({ ...NO_JITTER, multiplier: 3 }, 3, 0), 9_000);
  });

  it("caps at maxMs", () => {
    assert.equal(backoffDelay(NO_JITTER, 6, 0.5), 32_000);
    assert.equal(backoffDelay(NO_JITTER, 7, 0.5), 60_000); // 64 000 capped
    assert.equal(backoffDelay(NO_JITTER, 50, 0.5), 60_000);
  });

  it("jitter is symmetric around the delay: random 0 -> -jitter, random 0.999 -> almost +jitter, 0.5 -> none", () => {
    assert.equal(backoffDelay(BACKOFF, 1, 0), 800);
    assert.equal(backoffDelay(BACKOFF, 1, 0.999), 1_200); // 1000 * (1 + 0.2 * 0.998) = 1199.6
    assert.equal(backoffDelay(BACKOFF, 1, 0.5), 1_000);
    assert.equal(backoffDelay(BACKOFF, 3, 0), 3_200);
    assert.equal(backoffDelay(BACKOFF, 3, 0.999), Math.round(4_000 * (1 + 0.2 * 0.998)));
  });

  it("stays within [d * (1 - jitter), d * (1 + jitter)] for every failure count", () => {
    for (let n = 1; n <= 12; n++) {
      const d = Math.min(BACKOFF.maxMs, BACKOFF.initialMs * BACKOFF.multiplier ** (n - 1));
      const lo = backoffDelay(BACKOFF, n, 0);
      const hi = backoffDelay(BACKOFF, n, 0.999);
      assert.ok(lo >= Math.floor(d * 0.8) && lo <= hi && hi <= Math.min(BACKOFF.maxMs, Math.ceil(d * 1.2)), `n=${n}: ${lo}..${hi} around ${d}`);
    }
  });

  it("jitter applies below the cap, and maxMs stays a hard ceiling", () => {
    assert.equal(backoffDelay(BACKOFF, 20, 0), 48_000);
    assert.equal(backoffDelay(BACKOFF, 20, 0.999), 60_000);
  });

  it("never negative, even with jitter above 1", () => {
    assert.equal(backoffDelay({ ...BACKOFF, jitter: 1.5 }, 1, 0), 0);
  });
});

describe("FailAttempt", () => {
  it("retryable with attempts < max: AttemptFailed + RetryScheduled with the backoff delay", () => {
    const delayMs = backoffDelay(BACKOFF, 1, 0);
    assert.equal(delayMs, 800);
    const { after } = given(RUNNING)
      .when(fail(1, { random: 0 }))
      .then([
        { type: "AttemptFailed", data: { attempt: 1, error: { step: "probe", index: 0, message: "ffmpeg exited with 1", retryable: true }, at: AT } },
        { type: "RetryScheduled", data: { nextAttempt: 2, delayMs: 800, notBefore: new Date(NOW.getTime() + 800).toISOString(), at: AT } },
      ]);
    assert.equal(after.state, "retrying");
    assert.equal(after.dispatch, 2, "a retry is a new dispatch");
    assert.equal(after.attempts, 1);
    assert.equal(after.notBefore, "2025-03-01T12:00:00.800Z");
    assert.deepEqual(after.lastError, { step: "probe", index: 0, message: "ffmpeg exited with 1", retryable: true });
    assert.equal(after.finishedAt, null);
    assert.ok(wantsDispatch(after));
  });

  it("the delay grows with the number of failed attempts (second failure, random 0.999)", () => {
    given(RUNNING_2)
      .when(fail(2, { random: 0.999 }))
      .then(["AttemptFailed", { type: "RetryScheduled", data: { nextAttempt: 3, delayMs: 2_399, notBefore: "2025-03-01T12:00:02.399Z", at: AT } }]); // 2000 * 1.1996
  });

  it("a failure reported for another step than the next one is stale", () => {
    given([...RUNNING, stepDone(1, 0, "probe")])
      .when(fail(1, { index: 0, step: "probe" }))
      .thenThrows(StaleJobError, /failure reported for step 0, next step is 1/);
  });

  it("failing mid-pipeline keeps completed steps for the retry", () => {
    const { after } = given([...RUNNING, stepDone(1, 0, "probe")]).when(fail(1, { index: 1, step: "transcode" })).then(["AttemptFailed", "RetryScheduled"]);
    assert.equal(nextStepIndex(after), 1);
  });

  it("retryable at max attempts: AttemptFailed + VideoDeadLettered", () => {
    const history = [enqueued({ maxAttempts: 2 }), started(1, 1), attemptFailed(1, 0, "probe", true), retryScheduled(2), started(2, 2)];
    const { after } = given(history)
      .when(fail(2))
      .then(["AttemptFailed", { type: "VideoDeadLettered", data: { attempts: 2, reason: "gave up after 2 attempt(s): ffmpeg exited with 1", at: AT } }]);
    assert.equal(after.state, "dead");
    assert.equal(after.finishedAt, AT);
    assert.equal(after.dispatch, 2, "dead-lettering is not a dispatch");
    assert.ok(!wantsDispatch(after));
  });

  it("retryable with maxAttempts 1 dead-letters on the first failure", () => {
    given([enqueued({ maxAttempts: 1 }), started(1, 1)]).when(fail(1)).then(["AttemptFailed", "VideoDeadLettered"]);
  });

  it("non-retryable: dead-lettered at once, whatever the attempt count", () => {
    const { after } = given(RUNNING)
      .when(fail(1, { retryable: false }))
      .then([
        { type: "AttemptFailed", data: { attempt: 1, error: { step: "probe", index: 0, message: "ffmpeg exited with 1", retryable: false }, at: AT } },
        { type: "VideoDeadLettered", data: { attempts: 1, reason: "not retryable: ffmpeg exited with 1", at: AT } },
      ]);
    assert.equal(after.state, "dead");
    assert.equal(after.lastError?.retryable, false);
  });

  it("a report from an older attempt is stale", () => {
    given(RUNNING_2).when(fail(1)).thenThrows(StaleJobError, /stale job for video vid-1: report from attempt 1, current attempt is 2/);
  });

  it("a report from a future attempt is stale", () => {
    given(RUNNING).when(fail(3)).thenThrows(StaleJobError, /report from attempt 3, current attempt is 1/);
  });

  for (const name of ["queued", "retrying", "completed", "dead", "cancelled"] as const) {
    it(`on a ${name} video (not running) is refused naming the state`, () => {
      const history = STATES[name];
      assert.ok(history);
      const err = given(history).when(fail(1)).thenThrows(IllegalTransitionError, new RegExp(`cannot fail an attempt of video ${VIDEO_ID}: it is ${name}`));
      assert.equal(err.state, name);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// CancelVideo
// ---------------------------------------------------------------------------------------------

describe("CancelVideo", () => {
  for (const name of ["queued", "retrying", "running"] as const) {
    it(`from ${name}: VideoCancelled recording the previous state`, () => {
      const history = STATES[name];
      assert.ok(history);
      const before = stateOf(history);
      const { after } = given(history)
        .when(cancel("user asked"))
        .then([{ type: "VideoCancelled", data: { reason: "user asked", previousState: name, at: AT } }]);
      assert.equal(after.state, "cancelled");
      assert.equal(after.finishedAt, AT);
      assert.equal(after.notBefore, null);
      assert.equal(after.dispatch, before.dispatch, "cancelling is not a dispatch");
      assert.ok(!wantsDispatch(after));
    });
  }

  for (const name of ["completed", "dead", "cancelled"] as const) {
    it(`from ${name}: IllegalTransitionError naming the state`, () => {
      const history = STATES[name];
      assert.ok(history);
      const err = given(history).when(cancel()).thenThrows(IllegalTransitionError, new RegExp(`^cannot cancel video ${VIDEO_ID}: it is ${name}$`));
      assert.equal(err.state, name);
      assert.equal(err.command, "CancelVideo");
    });
  }

  it("a worker report after the cancel is refused", () => {
    given([...RUNNING, cancelled("running")]).when(complete(1, 0, "probe")).thenThrows(IllegalTransitionError, /it is cancelled/);
    given([...RUNNING, cancelled("running")]).when(start(1)).thenThrows(StaleJobError, /video is cancelled/);
  });
});

// ---------------------------------------------------------------------------------------------
// RetryVideo (operator redrive)
// ---------------------------------------------------------------------------------------------

describe("RetryVideo", () => {
  it("from dead: VideoRequeued, queued, attempts reset, dispatch incremented", () => {
    const before = stateOf(DEAD);
    const { after } = given(DEAD)
      .when(retry())
      .then([{ type: "VideoRequeued", data: { previousState: "dead", resumeAt: 0, at: AT } }]);
    assert.equal(after.state, "queued");
    assert.equal(after.attempts, 0);
    assert.equal(after.dispatch, before.dispatch + 1);
    assert.equal(after.finishedAt, null);
    assert.equal(after.notBefore, null);
    assert.ok(wantsDispatch(after));
  });

  it("keeps completed steps and resumes at the failed step (nextStepIndex unchanged)", () => {
    const before = stateOf(DEAD_AT_STEP_1);
    assert.equal(nextStepIndex(before), 1);
    const { after } = given(DEAD_AT_STEP_1)
      .when(retry())
      .then([{ type: "VideoRequeued", data: { previousState: "dead", resumeAt: 1, at: AT } }]);
    assert.equal(nextStepIndex(after), 1);
    assert.deepEqual(after.completedSteps, before.completedSteps);
  });

  it("after a redrive, a worker picks up the new dispatch at attempt 1 and finishes the remaining steps", () => {
    let history: VideoEvent[] = [...DEAD_AT_STEP_1];
    const run = (c: VideoCommand): VideoEvent[] => {
      const events = decide(VIDEO_ID, fold(history), c, NOW);
      history = [...history, ...events];
      return events;
    };
    run(retry());
    assert.throws(() => run(start(1)), StaleJobError, "the old message is stale");
    assert.deepEqual(run(start(2)).map((e) => e.type), ["AttemptStarted"]);
    assert.equal(stateOf(history).attempts, 1);
    assert.throws(() => run(complete(1, 0, "probe")), StaleJobError, "the completed step is not rerun");
    run(complete(1, 1, "transcode"));
    const last = run(complete(1, 2, "thumbnail"));
    assert.deepEqual(last.map((e) => e.type), ["StepCompleted", "VideoCompleted"]);
    const done = last[1];
    assert.ok(done?.type === "VideoCompleted");
    assert.deepEqual(Object.keys(done.data.outputs), ["probe", "transcode", "thumbnail"]);
  });

  for (const name of ["completed", "cancelled", "queued", "running", "retrying"] as const) {
    it(`from ${name}: refused naming the state`, () => {
      const history = STATES[name];
      assert.ok(history);
      const err = given(history)
        .when(retry())
        .thenThrows(IllegalTransitionError, new RegExp(`^cannot retry video ${VIDEO_ID}: it is ${name} \\(only dead-lettered videos can be retried\\)$`));
      assert.equal(err.state, name);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// ChangePriority
// ---------------------------------------------------------------------------------------------

describe("ChangePriority", () => {
  it("queued: PriorityChanged, new lane, dispatch + 1 (re-sent in its new lane)", () => {
    const { after } = given(QUEUED)
      .when(priority("high"))
      .then([{ type: "PriorityChanged", data: { from: "normal", to: "high", at: AT } }]);
    assert.equal(after.lane, "high");
    assert.equal(after.dispatch, 2);
    assert.equal(after.state, "queued");
  });

  it("retrying: new lane, dispatch + 1, still waits for its backoff", () => {
    const before = stateOf(RETRYING);
    const { after } = given(RETRYING).when(priority("low")).then(["PriorityChanged"]);
    assert.equal(after.lane, "low");
    assert.equal(after.dispatch, before.dispatch + 1);
    assert.equal(after.state, "retrying");
    assert.equal(after.notBefore, before.notBefore);
  });

  it("running: the lane changes but the dispatch does not (it keeps its current message)", () => {
    const { after } = given(RUNNING)
      .when(priority("low"))
      .then([{ type: "PriorityChanged", data: { from: "normal", to: "low", at: AT } }]);
    assert.equal(after.lane, "low");
    assert.equal(after.dispatch, 1);
    assert.equal(after.state, "running");
    // ...so the running attempt's reports still count.
    given([...RUNNING, ...decide(VIDEO_ID, stateOf(RUNNING), priority("low"), NOW)])
      .when(complete(1, 0, "probe"))
      .then(["StepCompleted"]);
  });

  it("the old message of a re-prioritised queued video is stale", () => {
    const history = [...QUEUED, ...decide(VIDEO_ID, stateOf(QUEUED), priority("high"), NOW)];
    given(history).when(start(1)).thenThrows(StaleJobError, /message is for dispatch 1, video is at dispatch 2/);
    given(history).when(start(2)).then(["AttemptStarted"]);
  });

  for (const name of ["queued", "running", "retrying"] as const) {
    it(`same lane on a ${name} video is refused`, () => {
      const history = STATES[name];
      assert.ok(history);
      given(history)
        .when(priority("normal"))
        .thenThrows(IllegalTransitionError, new RegExp(`^cannot change the priority of video ${VIDEO_ID}: it is ${name} \\(it is already in lane normal\\)$`));
    });
  }

  for (const name of ["completed", "dead", "cancelled"] as const) {
    it(`on a ${name} video is refused naming the state`, () => {
      const history = STATES[name];
      assert.ok(history);
      const err = given(history).when(priority("high")).thenThrows(IllegalTransitionError, new RegExp(`^cannot change the priority of video ${VIDEO_ID}: it is ${name}$`));
      assert.equal(err.state, name);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Unknown video
// ---------------------------------------------------------------------------------------------

describe("unknown video (state null)", () => {
  const commands: VideoCommand[] = [start(1), complete(1, 0, "probe"), fail(1), cancel(), retry(), priority("high")];
  for (const command of commands) {
    it(`${command.type} -> VideoNotFoundError naming the id`, () => {
      const err = given([], { videoId: "missing-42" }).when(command).thenThrows(VideoNotFoundError, /^no video with id missing-42$/);
      assert.equal(err.videoId, "missing-42");
    });
  }

  it("evolve refuses a non-creation event without a state", () => {
    assert.throws(() => evolve("missing-42", null, started(1, 1)), VideoNotFoundError);
  });
});

// ---------------------------------------------------------------------------------------------
// replay, version, and a full lifecycle
// ---------------------------------------------------------------------------------------------

describe("replay and lifecycle", () => {
  it("replay of an empty stream is null", () => {
    assert.equal(replay(VIDEO_ID, []), null);
  });

  it("full lifecycle: enqueue -> start -> fail(retryable) -> retrying -> start -> steps -> completed", () => {
    const history: VideoEvent[] = [];
    const states: Video[] = [];
    let video: Video | null = null;
    const run = (c: VideoCommand, now: Date = NOW): VideoEvent[] => {
      const events = decide(VIDEO_ID, video, c, now);
      for (const e of events) {
        video = evolve(VIDEO_ID, video, e);
        history.push(e);
        states.push(video);
        assert.equal(video.version, history.length, "version counts events");
      }
      return events;
    };
    const current = (): Video => {
      assert.ok(video);
      return video;
    };

    run(enqueue());
    assert.equal(current().state, "queued");

    run(start(1));
    assert.equal(current().state, "running");
    assert.equal(current().attempts, 1);

    assert.deepEqual(run(fail(1, { random: 0.5 })).map((e) => e.type), ["AttemptFailed", "RetryScheduled"]);
    assert.equal(current().state, "retrying");
    assert.equal(current().dispatch, 2);
    assert.equal(current().notBefore, "2025-03-01T12:00:01.000Z");

    run(start(2, "w2"), new Date("2025-03-01T12:00:05.000Z"));
    assert.equal(current().state, "running");
    assert.equal(current().attempts, 2);
    assert.equal(current().startedAt, AT, "startedAt is the first attempt's");

    run(complete(2, 0, "probe"));
    run(complete(2, 1, "transcode"));
    assert.deepEqual(run(complete(2, 2, "thumbnail")).map((e) => e.type), ["StepCompleted", "VideoCompleted"]);
    const done = current();
    assert.equal(done.state, "completed");
    assert.equal(done.attempts, 2);
    assert.deepEqual(done.lastError, { step: "probe", index: 0, message: "ffmpeg exited with 1", retryable: true });

    assert.deepEqual(
      history.map((e) => e.type),
      ["VideoEnqueued", "AttemptStarted", "AttemptFailed", "RetryScheduled", "AttemptStarted", "StepCompleted", "StepCompleted", "StepCompleted", "VideoCompleted"],
    );

    // replay() of the whole history equals the step-by-step fold, and every prefix matches too.
    assert.deepEqual(replay(VIDEO_ID, history), done);
    assert.equal(done.version, history.length);
    history.forEach((_, i) => assert.deepEqual(replay(VIDEO_ID, history.slice(0, i + 1)), states[i], `prefix ${i + 1}`));

    // Nothing more can happen to it.
    assert.throws(() => decide(VIDEO_ID, done, cancel(), NOW), IllegalTransitionError);
    assert.throws(() => decide(VIDEO_ID, done, start(done.dispatch), NOW), StaleJobError);
  });

  it("version counts events across every fixture history", () => {
    for (const [name, events] of Object.entries({ ...STATES, RUNNING_2, DEAD_AT_STEP_1 })) {
      assert.equal(replay(VIDEO_ID, events)?.version, events.length, name);
    }
  });

  it("replay equals evolving the events one by one (every fixture)", () => {
    for (const [name, events] of Object.entries(STATES)) {
      let v: Video | null = null;
      for (const e of events) v = evolve(VIDEO_ID, v, e);
      assert.deepEqual(replay(VIDEO_ID, events), v, name);
    }
  });

  it("decide is deterministic: same state, command and now give the same events", () => {
    const v = stateOf(RUNNING);
    assert.deepEqual(decide(VIDEO_ID, v, fail(1, { random: 0.3 }), NOW), decide(VIDEO_ID, v, fail(1, { random: 0.3 }), NOW));
  });
});
