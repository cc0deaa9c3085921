/**
 * A tiny given/when/then harness for the video aggregate:
 *
 *   given([enqueued(), started()]).when(complete(0, "probe")).then(["StepCompleted"]);
 *   given([]).when(cancel()).thenThrows(VideoNotFoundError, /no video/);
 *
 * `given` events are folded with evolve(); decide() runs with a fixed `now` on a deep-frozen
 * state, so a decide() that mutated its input would throw instead of passing silently.
 */
import assert from "node:assert/strict";

import { decide, evolve, type Video, type VideoCommand, type VideoEvent, type VideoEventType } from "../../src/domain/index.js";

export const VIDEO_ID = "vid-1";
export const NOW = new Date("2025-03-01T12:00:00.000Z");

/** An expected event: just its type, or the whole event (compared deeply). */
export type Expected = VideoEventType | VideoEvent;

export interface Outcome {
  /** What decide() produced. */
  readonly events: VideoEvent[];
  /** State before the command (null: no such video). */
  readonly before: Video | null;
  /** State after folding the produced events. */
  readonly after: Video;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type ErrorClass<E extends Error> = new (...args: any[]) => E;

export function fold(events: readonly VideoEvent[], videoId = VIDEO_ID): Video | null {
  let video: Video | null = null;
  for (const e of events) video = evolve(videoId, video, e);
  return video;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export function given(history: readonly VideoEvent[], opts: { videoId?: string; now?: Date } = {}) {
  const videoId = opts.videoId ?? VIDEO_ID;
  const now = opts.now ?? NOW;
  const before = fold(history, videoId);
  const snapshot: unknown = structuredClone(before);
  deepFreeze(before);

  return {
    state: before,
    when(command: VideoCommand) {
      return {
        then(expected: readonly Expected[]): Outcome {
          const events = decide(videoId, before, command, now);
          assert.deepEqual(
            events.map((e) => e.type),
            expected.map((x) => (typeof x === "string" ? x : x.type)),
            `${command.type} produced unexpected event types`,
          );
          expected.forEach((x, i) => {
            if (typeof x !== "string") assert.deepEqual(events[i], x, `event #${i} (${x.type}) differs`);
          });
          assert.deepEqual(before, snapshot, "decide() must not modify the state it was given");
          let after = before;
          for (const e of events) after = evolve(videoId, after, e);
          assert.ok(after, "the command produced no state");
          return { events, before, after };
        },

        thenThrows<E extends Error>(errorClass: ErrorClass<E>, message: RegExp): E {
          let produced: VideoEvent[] | undefined;
          let caught: unknown;
          try {
            produced = decide(videoId, before, command, now);
          } catch (err) {
            caught = err;
          }
          assert.equal(produced, undefined, `${command.type} should have been refused, but produced ${JSON.stringify(produced?.map((e) => e.type))}`);
          assert.ok(caught instanceof errorClass, `expected ${errorClass.name}, got ${String(caught)}`);
          assert.match(caught.message, message);
          assert.deepEqual(before, snapshot, "a refused command must not modify the state");
          return caught;
        },
      };
    },
  };
}
