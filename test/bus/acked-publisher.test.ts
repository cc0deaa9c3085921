import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { AckedPublisher } from "../../src/bus/acked-publisher.js";
import { startNatsServer, type TestNatsServer } from "../support/nats-server.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const withId = (id: string) => {
  const h = headers();
  h.set("Nats-Msg-Id", id);
  return h;
};

describe("AckedPublisher", () => {
  let srv: TestNatsServer;
  let nc: NatsConnection;
  before(async () => {
    srv = await startNatsServer();
    nc = await connect({ servers: srv.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "ACKED", subjects: ["acked.>"] });
  });
  after(async () => {
    await nc?.close();
    await srv?.stop();
  });

  it("reports each message's stream sequence, and duplicates by message id", async () => {
    const p = new AckedPublisher(nc);
    const out = await p.publish(
      [
        { subject: "acked.a", payload: enc("1"), headers: withId("m1") },
        { subject: "acked.b", payload: enc("2"), headers: withId("m2") },
        { subject: "acked.a", payload: enc("1 again"), headers: withId("m1") },
      ],
      5000,
    );
    assert.deepEqual(out, [
      { ok: true, seq: 1, duplicate: false },
      { ok: true, seq: 2, duplicate: false },
      { ok: true, seq: 1, duplicate: true },
    ]);
    assert.deepEqual(await p.publish([], 5000), []);
  });

  it("fails a message no stream takes, naming its subject, and still acks the others", async () => {
    const p = new AckedPublisher(nc);
    const [missing, fine] = await p.publish(
      [
        { subject: "nostream.x", payload: enc("x"), headers: withId("n1") },
        { subject: "acked.c", payload: enc("3"), headers: withId("m3") },
      ],
      5000,
    );
    assert.ok(missing && !missing.ok);
    assert.match(missing.error.message, /publish to nostream\.x: 503 no JetStream stream takes this subject/);
    assert.ok(fine?.ok);
  });

  it("fails a message that gets no answer in time, and answers that are not acknowledgements", async () => {
    // Core subscribers standing in for a misbehaving responder.
    const silent = nc.subscribe("fake.silent", { callback: () => {} });
    const garbage = nc.subscribe("fake.garbage", { callback: (_e, m) => void m.respond(enc("not json")) });
    const refusal = nc.subscribe("fake.refuse", {
      callback: (_e, m) => void m.respond(enc(JSON.stringify({ error: { code: 400, err_code: 10060, description: "expected stream sequence does not match" } }))),
    });
    const empty = nc.subscribe("fake.empty", { callback: (_e, m) => void m.respond(enc("{}")) });
    try {
      const p = new AckedPublisher(nc);
      const t0 = performance.now();
      const out = await p.publish(
        ["fake.silent", "fake.garbage", "fake.refuse", "fake.empty"].map((subject) => ({ subject, payload: enc("x"), headers: withId(subject) })),
        300,
      );
      const messages = out.map((o) => (o.ok ? "ok" : o.error.message));
      assert.match(messages[0] as string, /publish to fake\.silent: no acknowledgement from JetStream within 300 ms/);
      assert.match(messages[1] as string, /publish to fake\.garbage: JetStream answered with something that is not JSON/);
      assert.match(messages[2] as string, /publish to fake\.refuse: JetStream refused the message: expected stream sequence does not match \(code 400, err_code 10060\)/);
      assert.match(messages[3] as string, /publish to fake\.empty: JetStream answered without a stream and sequence/);
      assert.ok(performance.now() - t0 >= 290, "the silent one waited for its timeout");
    } finally {
      silent.unsubscribe();
      garbage.unsubscribe();
      refusal.unsubscribe();
      empty.unsubscribe();
    }
  });

  it("fails every message at once when the connection is closed, and close() fails those waiting", async () => {
    const other = await connect({ servers: srv.url });
    const p = new AckedPublisher(other);
    const hang = other.subscribe("fake.hang", { callback: () => {} });
    const pending = p.publish([{ subject: "fake.hang", payload: enc("x"), headers: withId("h1") }], 60_000);
    await other.flush();
    p.close();
    const [closed] = await pending;
    assert.ok(closed && !closed.ok);
    assert.match(closed.error.message, /publish to fake\.hang: the publisher was closed/);
    hang.unsubscribe();
    await other.close();
    const [after] = await p.publish([{ subject: "acked.d", payload: enc("4"), headers: withId("m4") }], 5000);
    assert.ok(after && !after.ok, "a publish on a closed connection fails");
    assert.match(after.error.message, /publish to acked\.d: .*closed/i);
  });

  it("fails the publishes still waiting as soon as the connection closes, not at their timeout", async () => {
    const other = await connect({ servers: srv.url });
    other.subscribe("fake.hang2", { callback: () => {} });
    const p = new AckedPublisher(other);
    const pending = p.publish([{ subject: "fake.hang2", payload: enc("x"), headers: withId("h2") }], 60_000);
    await other.flush();
    const t0 = performance.now();
    await other.close();
    const [closed] = await pending;
    assert.ok(closed && !closed.ok);
    assert.match(closed.error.message, /publish to fake\.hang2: the connection to NATS was closed/);
    assert.ok(performance.now() - t0 < 5000, "failed when the connection closed");
  });
});
