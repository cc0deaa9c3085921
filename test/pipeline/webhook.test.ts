import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { createWebhookStep, StepAbortedError, StepError } from "../../src/pipeline/index.js";
import { cleanupScratch, freshDir, runStep, stepError } from "./helpers.js";

interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

const TOKEN = "s3cret-token-value";
let dir: string;
let caFile: string;
let tokenFile: string;
let httpsUrl: string;
let httpUrl: string;
let received: Received[] = [];
const servers: (http.Server | https.Server)[] = [];

/** A CA and a server certificate for 127.0.0.1 signed by it, made with openssl. */
function makeCertificates(at: string): { ca: string; key: string; cert: string } {
  const o = (args: string[]) => execFileSync("openssl", args, { cwd: at, stdio: ["ignore", "ignore", "pipe"] });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  o(["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=vqd test CA"]);
  o(["req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
  fs.writeFileSync(path.join(at, "ext.cnf"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n");
  o(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf"]);
  return { ca: path.join(at, "ca.pem"), key: path.join(at, "server.key"), cert: path.join(at, "server.pem") };
}

const handler: http.RequestListener = (req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const text = Buffer.concat(chunks).toString("utf8");
    received.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: text ? JSON.parse(text) : undefined });
    const route = new URL(req.url ?? "/", "http://x").pathname;
    if (route === "/hang") return; // never answers
    const status = route === "/fail" ? 500 : route === "/missing" ? 404 : route === "/moved" ? 302 : 200;
    res.writeHead(status, { "content-type": "text/plain" });
    res.end(status === 200 ? "ok" : `status ${status} for ${route}`);
  });
};

async function listen(server: http.Server | https.Server, scheme: string): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

before(async () => {
  dir = freshDir("webhook");
  const { ca, key, cert } = makeCertificates(dir);
  caFile = ca;
  tokenFile = path.join(dir, "token");
  fs.writeFileSync(tokenFile, `${TOKEN}\n`);
  httpsUrl = await listen(https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, handler), "https");
  httpUrl = await listen(http.createServer(handler), "http");
});

after(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
  cleanupScratch();
});

const webhook = createWebhookStep();
const previous = { probe: { durationS: 2, container: "mov,mp4" }, transcode: { file: "/out/v1/web-720p.mp4" } };

describe("webhook", () => {
  test("POSTs the JSON summary over https with a private CA and the bearer token", async () => {
    received = [];
    const { outputs } = await runStep(webhook, {
      path: "/in/clip.mp4",
      videoId: "v7",
      previous,
      options: { url: `${httpsUrl}/hook`, caFile, tokenFile, metadata: { team: "video" } },
    });
    assert.equal(outputs.status, 200);
    assert.ok(typeof outputs.ms === "number" && outputs.ms >= 0);
    assert.equal(received.length, 1);
    const [r] = received;
    assert.equal(r?.method, "POST");
    assert.equal(r?.url, "/hook");
    assert.equal(r?.headers.authorization, `Bearer ${TOKEN}`);
    assert.equal(r?.headers["content-type"], "application/json");
    assert.equal(r?.headers["idempotency-key"], "v7/test/webhook");
    assert.deepEqual(r?.body, { videoId: "v7", pipeline: "test", path: "/in/clip.mp4", outputs: previous, metadata: { team: "video" } });
  });

  test("a server certificate the system CAs do not know is refused (no caFile)", async () => {
    const err = await stepError(runStep(webhook, { path: "/in/x.mp4", options: { url: `${httpsUrl}/hook` } }), { retryable: false, message: /cannot verify the TLS certificate.*set caFile/ });
    assert.ok(!err.message.includes(TOKEN));
  });

  test("http:// is refused without allowInsecure (nothing sent), accepted with it", async () => {
    received = [];
    await stepError(runStep(webhook, { path: "/in/x.mp4", options: { url: `${httpUrl}/hook`, tokenFile } }), {
      retryable: false,
      message: /plain http:\/\/.*must use https:\/\/ unless allowInsecure: true/,
    });
    assert.equal(received.length, 0);
    assert.throws(() => webhook.validateOptions?.({ url: `${httpUrl}/hook` }), /allowInsecure/);
    const { outputs } = await runStep(webhook, { path: "/in/x.mp4", options: { url: `${httpUrl}/hook`, allowInsecure: true } });
    assert.equal(outputs.status, 200);
    assert.equal(received.length, 1);
    assert.equal(received[0]?.headers.authorization, undefined);
  });

  test("5xx is retryable, 4xx and redirects are not; messages never carry the token", async () => {
    const common = { caFile, tokenFile };
    for (const [p, retryable, message] of [
      ["/fail", true, /answered 500: status 500 for \/fail/],
      ["/missing", false, /refused the delivery with 404/],
      ["/moved", false, /302 \(redirects are not followed/],
    ] as const) {
      const err = await stepError(runStep(webhook, { path: "/in/x.mp4", options: { url: `${httpsUrl}${p}?key=abc`, ...common } }), { retryable, message });
      assert.ok(!err.message.includes(TOKEN) && !err.message.includes("key=abc"), err.message);
    }
  });

  test("a server that never answers: timeout, retryable", async () => {
    const t0 = Date.now();
    await stepError(runStep(webhook, { path: "/in/x.mp4", options: { url: `${httpsUrl}/hang`, caFile, timeoutMs: 300 } }), {
      retryable: true,
      message: /no answer from https:\/\/127\.0\.0\.1:\d+\/hang within 300 ms/,
    });
    assert.ok(Date.now() - t0 < 3000);
  });

  test("a closed port is a retryable network error; abort is StepAbortedError", async () => {
    const closed = http.createServer();
    const url = await listen(closed, "http");
    closed.close();
    await stepError(runStep(webhook, { path: "/x", options: { url, allowInsecure: true } }), { retryable: true, message: /ECONNREFUSED/ });
    const ac = new AbortController();
    const run = runStep(webhook, { path: "/x", signal: ac.signal, options: { url: `${httpsUrl}/hang`, caFile } });
    setTimeout(() => ac.abort("cancelled"), 100);
    await assert.rejects(run, (e: unknown) => e instanceof StepAbortedError && /cancelled/.test(e.message));
  });

  test("a named webhook from the config, its token given as credential:NAME", async () => {
    const creds = freshDir("creds");
    fs.writeFileSync(path.join(creds, "hook-token"), TOKEN);
    const saved = process.env.CREDENTIALS_DIRECTORY;
    process.env.CREDENTIALS_DIRECTORY = creds;
    try {
      received = [];
      const step = createWebhookStep({
        webhooks: { catalog: { url: `${httpsUrl}/named`, tokenFile: "credential:hook-token", caFile, allowInsecure: false, timeoutMs: 5000 } },
      });
      step.validateOptions?.({ webhook: "catalog", metadata: { a: 1 } });
      const { outputs } = await runStep(step, { path: "/in/x.mp4", options: { webhook: "catalog" } });
      assert.equal(outputs.status, 200);
      assert.equal(received[0]?.url, "/named");
      assert.equal(received[0]?.headers.authorization, `Bearer ${TOKEN}`);
      assert.throws(() => step.validateOptions?.({ webhook: "billing" }), /options\.webhook must name a webhook in the config's webhooks \("catalog"\) \(got "billing"\)/);
      assert.throws(() => step.validateOptions?.({ webhook: "catalog", url: "https://x" }), /options\.url cannot be combined with options\.webhook/);
    } finally {
      if (saved === undefined) delete process.env.CREDENTIALS_DIRECTORY;
      else process.env.CREDENTIALS_DIRECTORY = saved;
    }
  });

  test("an unreadable token file is a clear non-retryable error", async () => {
    const err = await stepError(runStep(webhook, { path: "/x", options: { url: `${httpsUrl}/hook`, caFile, tokenFile: path.join(dir, "nope") } }), {
      retryable: false,
      message: /cannot read options\.tokenFile .*nope \(ENOENT\)/,
    });
    assert.ok(err instanceof StepError);
  });

  test("validateOptions names the bad option", () => {
    assert.throws(() => webhook.validateOptions?.({}), /webhook: options\.url or options\.webhook must be set/);
    assert.throws(() => webhook.validateOptions?.({ url: "not a url" }), /options\.url is not a valid URL/);
    assert.throws(() => webhook.validateOptions?.({ url: "ftp://x/y" }), /must be an https:\/\/ URL/);
    assert.throws(() => webhook.validateOptions?.({ url: "https://x", timeoutMs: 0 }), /options\.timeoutMs must be an integer/);
    assert.throws(() => webhook.validateOptions?.({ url: "https://x", metadata: [1] }), /options\.metadata must be a mapping/);
    assert.throws(() => webhook.validateOptions?.({ url: "https://x", token: "abc" }), /unknown option "token"/);
    webhook.validateOptions?.({ url: "https://hooks.example/x", tokenFile: "/etc/t", timeoutMs: 5000, metadata: { a: 1 } });
  });
});
