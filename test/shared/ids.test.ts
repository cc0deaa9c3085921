/** Ids: video ids and event ids are unique, well formed, and sort in the order they were made. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { newEventId, newVideoId, VIDEO_ID_PATTERN } from "../../src/shared/ids.js";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("ids", () => {
  it("event ids: UUID v7, unique over 100,000 (past many refills of the random pool), monotonic even past 4096 in one millisecond", () => {
    const ids = Array.from({ length: 100_000 }, () => newEventId());
    for (const id of ids.slice(0, 1000)) assert.match(id, UUID_V7);
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual([...ids].sort(), ids, "made in one process, they sort in the order they were made");
    const t = Date.now() + 60_000;
    assert.equal(newEventId(t).replace(/-/g, "").slice(0, 12), t.toString(16).padStart(12, "0"), "48 bits of milliseconds first");
    const before = newEventId(t);
    assert.ok(newEventId(t - 1) > before, "never goes back, even when the clock does");
  });

  it("video ids: 20 characters, unique, and in creation order within and across milliseconds", () => {
    const ids = Array.from({ length: 50_000 }, () => newVideoId());
    for (const id of ids.slice(0, 1000)) assert.match(id, VIDEO_ID_PATTERN);
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual([...ids].sort(), ids);
    const later = newVideoId(Date.now() + 5);
    assert.ok(later > (ids.at(-1) as string));
  });
});
