/**
 * Invariant 7 over the wire: bad API payloads get `{ ok: false, error: { code, message } }` naming
 * the problem and change nothing, hostile but valid values are stored verbatim, and the jobs
 * around them keep flowing.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { EnqueueResultJson, VideoJson } from "../../src/api/index.js";
import { startHarness, waitFor, type Harness } from "../workers/daemon-harness.js";

interface ErrorReply {
  ok: false;
  error: { code: string; message: string };
}

describe("API under malformed and hostile requests", () => {
  let h: Harness;
  let confDir: string;
  before(async () => {
    // The default max_payload (1 MB) would make nats-server refuse a 2 MB request before it
    // reaches the daemon; raise it so the daemon's own limit is what answers.
    confDir = await mkdtemp(join(tmpdir(), "vqd-nats-conf-"));
    const conf = join(confDir, "nats.conf");
    await writeFile(conf, "max_payload: 8MB\n");
    h = await startHarness({ nats: { args: ["-c", conf] } });
  });
  after(async () => {
    await h?.close();
    await rm(confDir, { recursive: true, force: true });
  });

  const raw = async (verb: string, payload: string | Uint8Array): Promise<unknown> => {
    const data = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
    const msg = await h.nc.request(h.subjects.api(verb), data, { timeout: 5000 });
    return JSON.parse(new TextDecoder().decode(msg.data));
  };

  const assertError = (reply: unknown, code: string, mentions: RegExp): void => {
    const r = reply as ErrorReply;
    assert.deepEqual(Object.keys(r).sort(), ["error", "ok"], JSON.stringify(r).slice(0, 300));
    assert.equal(r.ok, false);
    assert.deepEqual(Object.keys(r.error).sort(), ["code", "message"]);
    assert.equal(r.error.code, code, r.error.message);
    assert.match(r.error.message, mentions);
  };

  it("answers each bad request with an error naming the problem while 50 jobs complete", async () => {
    const before = await h.enqueue(25, { pipeline: "noop" });
    const [file] = await h.env.videos(1);
    const big = JSON.stringify({ paths: ["x".repeat(2 * 1024 * 1024)] });
    assert.ok(big.length > 2 * 1024 * 1024);

    const replies = await Promise.all([
      raw("enqueue", "{paths: ["),
      raw("enqueue", new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])),
      raw("enqueue", JSON.stringify({ paths: 5 })),
      raw("enqueue", JSON.stringify({ paths: [file], bogus: 1 })),
      raw("enqueue", JSON.stringify({ paths: [file], priority: "urgent" })),
      raw("enqueue", JSON.stringify({ paths: [file], metadata: { n: 1 } })),
      raw("enqueue", "null"),
      raw("enqueue", JSON.stringify({ paths: [] })),
      raw("frobnicate", JSON.stringify({ paths: [file] })),
      raw("enqueue", big),
      raw("show", JSON.stringify({ id: "00000000000000000000" })),
      raw("retry", JSON.stringify({ id: before[0] })),
      // JSON.parse makes "__proto__" an own key; a record copied by assignment would drop it
      // silently, so the caller must be told instead.
      raw("enqueue", `{"paths":[${JSON.stringify(file)}],"metadata":{"ok":"1","__proto__":"x"}}`),
    ]);
    const [notJson, badUtf8, wrongType, unknownField, badLane, badMetadata, nullBody, noPaths, unknownVerb, tooLarge, notFound, refused, protoKey] = replies;
    assertError(notJson, "bad_request", /not valid JSON/);
    assertError(badUtf8, "bad_request", /not valid JSON/);
    assertError(wrongType, "bad_request", /^invalid enqueue request: paths: /);
    assertError(unknownField, "bad_request", /bogus/);
    assertError(badLane, "bad_request", /priority/);
    assertError(badMetadata, "bad_request", /metadata\.n/);
    assertError(nullBody, "bad_request", /\(payload\)/);
    assertError(noPaths, "bad_request", /paths/);
    assertError(unknownVerb, "unknown_verb", /frobnicate/);
    assertError(tooLarge, "too_large", /exceeds the limit of 1048576 bytes/);
    assertError(notFound, "not_found", /00000000000000000000/);
    // Not dead (it is queued or already done): the domain refuses the redrive.
    assertError(refused, "refused", /dead/);
    assertError(protoKey, "bad_request", /metadata.*__proto__/);

    const afterIds = await h.enqueue(25, { pipeline: "noop" });
    const all = [...before, ...afterIds];
    await waitFor(() => all.every((id) => h.daemon.store.get(id)?.state === "completed"), 10_000, "50 jobs to complete");
    // The bad requests recorded nothing: only the 50 jobs exist.
    const counts = await h.daemon.store.counts();
    assert.equal(counts.total, 50);
  });

  it("stores hostile metadata values verbatim", async () => {
    const [file] = await h.env.videos(1);
    const metadata: Record<string, string> = {
      sql: "'; DROP TABLE events; --",
      "key'); DELETE FROM videos; --": "value",
      nul: "a\u0000b\u0000",
      big: "x".repeat(10 * 1024),
      unicode: "日本語 🎬 e\u0301 \u202eRTL\u202c \ud83d\ude00",
      loneSurrogate: "\ud800",
      quotes: `"\\'\n\t`,
    };
    const reply = (await raw("enqueue", JSON.stringify({ paths: [file], pipeline: "noop", metadata }))) as { ok: true; result: EnqueueResultJson[] };
    assert.equal(reply.ok, true, JSON.stringify(reply));
    const item = reply.result[0] as EnqueueResultJson;
    assert.ok("id" in item, JSON.stringify(item));
    await h.waitState(item.id, "completed");
    assert.deepEqual(h.daemon.store.get(item.id)?.metadata, metadata);
    const enqueued = h.daemon.store.timeline(item.id)[0];
    assert.deepEqual((enqueued?.data as { metadata: Record<string, string> }).metadata, metadata);
    // And back out through the API, byte for byte.
    const shown = await h.api.call<"show", VideoJson>("show", { id: item.id });
    assert.deepEqual(shown.metadata, metadata);
    // The tables the SQL text names are intact.
    assert.ok((await h.daemon.store.counts()).total >= 51);
    assert.ok(h.daemon.store.timeline(item.id).length >= 4);
  });
});
