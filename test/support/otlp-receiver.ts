/**
 * A small OTLP/HTTP receiver for tests: a node:http server on 127.0.0.1 and a free port that the
 * real OpenTelemetry exporters send to. It accepts `POST /v1/traces`, `/v1/metrics` (and
 * `/v1/logs`, ignored) in both encodings the HTTP exporters use, http/json and http/protobuf
 * (gzip or not), and keeps what arrives as plain spans and metric points.
 *
 *   const otlp = await startOtlpReceiver();
 *   env.OTEL_EXPORTER_OTLP_ENDPOINT = otlp.url;                  // http://127.0.0.1:<port>
 *   const spans = await otlp.waitForSpans((s) => s.some((x) => x.name === "step noop"), 10_000);
 *   await otlp.close();
 *
 * Protobuf bodies are read with a minimal wire-format reader over the field numbers of the
 * OTLP protos (opentelemetry/proto/{trace,metrics,common,resource}/v1): the exporters in this
 * version serialise with their own writer and ship no decoder for requests.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { gunzipSync } from "node:zlib";

export type AttrValue = string | number | boolean | null | AttrValue[];

export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** "" for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  readonly kind: "unspecified" | "internal" | "server" | "client" | "producer" | "consumer";
  readonly startNs: bigint;
  readonly endNs: bigint;
  readonly attributes: Readonly<Record<string, AttrValue>>;
  readonly links: readonly { readonly traceId: string; readonly spanId: string }[];
  readonly status: { readonly code: number; readonly message: string };
  /** Resource attributes of the process that sent it (service.name, vq.role, process.pid...). */
  readonly resource: Readonly<Record<string, AttrValue>>;
  readonly encoding: "json" | "protobuf";
}

export interface ReceivedPoint {
  readonly attributes: Readonly<Record<string, AttrValue>>;
  /** Gauge or sum value; histogram sum. */
  readonly value: number;
  /** Histograms only. */
  readonly count?: number;
  readonly bounds?: readonly number[];
}

export interface ReceivedMetric {
  readonly name: string;
  readonly unit: string;
  readonly type: "gauge" | "sum" | "histogram" | "other";
  readonly points: readonly ReceivedPoint[];
  readonly resource: Readonly<Record<string, AttrValue>>;
  readonly encoding: "json" | "protobuf";
}

export interface OtlpReceiverOptions {
  /** false: count requests and bytes only (benchmarks: no decoding cost in the measured process). */
  readonly decode?: boolean;
}

export interface OtlpReceiver {
  /** Base URL for OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly url: string;
  readonly port: number;
  readonly spans: ReceivedSpan[];
  readonly metrics: ReceivedMetric[];
  /** Requests received per path. */
  readonly requests: Record<string, number>;
  readonly bytes: number;
  waitForSpans(done: (spans: readonly ReceivedSpan[]) => boolean, timeoutMs: number, what?: string): Promise<ReceivedSpan[]>;
  waitForMetrics(done: (metrics: readonly ReceivedMetric[]) => boolean, timeoutMs: number, what?: string): Promise<ReceivedMetric[]>;
  clear(): void;
  close(): Promise<void>;
}

export async function startOtlpReceiver(options: OtlpReceiverOptions = {}): Promise<OtlpReceiver> {
  const decode = options.decode ?? true;
  const spans: ReceivedSpan[] = [];
  const metrics: ReceivedMetric[] = [];
  const requests: Record<string, number> = {};
  let bytes = 0;
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of waiters) w();
  };

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = (req.url ?? "").split("?")[0] ?? "";
      requests[path] = (requests[path] ?? 0) + 1;
      let body = Buffer.concat(chunks);
      bytes += body.length;
      const json = (req.headers["content-type"] ?? "").includes("json");
      try {
        if (decode && req.method === "POST") {
          if (req.headers["content-encoding"] === "gzip") body = gunzipSync(body);
          if (path.endsWith("/v1/traces")) spans.push(...(json ? spansFromJson(JSON.parse(body.toString("utf8"))) : spansFromProto(body)));
          else if (path.endsWith("/v1/metrics")) metrics.push(...(json ? metricsFromJson(JSON.parse(body.toString("utf8"))) : metricsFromProto(body)));
        }
      } catch (err) {
        res.writeHead(400, { "content-type": "text/plain" });
        res.end(`cannot decode: ${(err as Error).message}`);
        return;
      }
      // An empty Export*ServiceResponse: full success.
      res.writeHead(200, { "content-type": json ? "application/json" : "application/x-protobuf" });
      res.end(json ? "{}" : undefined);
      notify();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0 }, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr !== null ? addr.port : 0;

  function waitFor<T>(get: () => T[], done: (items: readonly T[]) => boolean, timeoutMs: number, what: string): Promise<T[]> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (done(get())) {
          cleanup();
          resolve(get());
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`OTLP receiver: timed out after ${timeoutMs} ms waiting for ${what} (have ${get().length})`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  }

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    spans,
    metrics,
    requests,
    get bytes() {
      return bytes;
    },
    waitForSpans: (done, timeoutMs, what = "spans") => waitFor(() => spans, done, timeoutMs, what),
    waitForMetrics: (done, timeoutMs, what = "metrics") => waitFor(() => metrics, done, timeoutMs, what),
    clear() {
      spans.length = 0;
      metrics.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Every span id, mapped to its span, for parent walks. */
export function byId(spans: readonly ReceivedSpan[]): Map<string, ReceivedSpan> {
  return new Map(spans.map((s) => [s.spanId, s]));
}

/** The chain of span names from a span up to its root (within the spans received). */
export function ancestry(span: ReceivedSpan, spans: readonly ReceivedSpan[]): ReceivedSpan[] {
  const ids = byId(spans);
  const chain: ReceivedSpan[] = [span];
  let at = span;
  while (at.parentSpanId) {
    const p = ids.get(at.parentSpanId);
    if (!p) break;
    chain.push(p);
    at = p;
  }
  return chain;
}

// ---------------------------------------------------------------------------------------------
// OTLP/JSON
// ---------------------------------------------------------------------------------------------

const KINDS = ["unspecified", "internal", "server", "client", "producer", "consumer"] as const;

interface JsonAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number | string;
  doubleValue?: number;
  arrayValue?: { values?: JsonAnyValue[] };
}
type JsonKv = { key: string; value?: JsonAnyValue };

function jsonValue(v: JsonAnyValue | undefined): AttrValue {
  if (!v) return null;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return Number(v.doubleValue);
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(jsonValue);
  return null;
}

function jsonAttrs(kvs: JsonKv[] | undefined): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const kv of kvs ?? []) out[kv.key] = jsonValue(kv.value);
  return out;
}

/** OTLP/JSON ids are hex; some encoders send base64. */
function jsonId(v: string | undefined, bytes: number): string {
  if (!v) return "";
  if (v.length === bytes * 2 && /^[0-9a-f]+$/i.test(v)) return v.toLowerCase();
  return Buffer.from(v, "base64").toString("hex");
}

function spansFromJson(body: { resourceSpans?: unknown[] }): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of (body.resourceSpans ?? []) as { resource?: { attributes?: JsonKv[] }; scopeSpans?: { spans?: Record<string, unknown>[] }[] }[]) {
    const resource = jsonAttrs(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        const status = (s.status ?? {}) as { code?: number; message?: string };
        out.push({
          traceId: jsonId(s.traceId as string, 16),
          spanId: jsonId(s.spanId as string, 8),
          parentSpanId: jsonId(s.parentSpanId as string | undefined, 8),
          name: String(s.name),
          kind: KINDS[Number(s.kind ?? 0)] ?? "unspecified",
          startNs: BigInt(String(s.startTimeUnixNano ?? 0)),
          endNs: BigInt(String(s.endTimeUnixNano ?? 0)),
          attributes: jsonAttrs(s.attributes as JsonKv[] | undefined),
          links: ((s.links ?? []) as { traceId?: string; spanId?: string }[]).map((l) => ({ traceId: jsonId(l.traceId, 16), spanId: jsonId(l.spanId, 8) })),
          status: { code: Number(status.code ?? 0), message: String(status.message ?? "") },
          resource,
          encoding: "json",
        });
      }
    }
  }
  return out;
}

interface JsonPoint {
  attributes?: JsonKv[];
  asDouble?: number;
  asInt?: number | string;
  count?: number | string;
  sum?: number;
  explicitBounds?: number[];
}

function metricsFromJson(body: { resourceMetrics?: unknown[] }): ReceivedMetric[] {
  const out: ReceivedMetric[] = [];
  for (const rm of (body.resourceMetrics ?? []) as { resource?: { attributes?: JsonKv[] }; scopeMetrics?: { metrics?: Record<string, unknown>[] }[] }[]) {
    const resource = jsonAttrs(rm.resource?.attributes);
    for (const sm of rm.scopeMetrics ?? []) {
      for (const m of sm.metrics ?? []) {
        const kind = m.gauge ? "gauge" : m.sum ? "sum" : m.histogram ? "histogram" : "other";
        const data = (m.gauge ?? m.sum ?? m.histogram ?? {}) as { dataPoints?: JsonPoint[] };
        const points = (data.dataPoints ?? []).map(
          (p): ReceivedPoint =>
            kind === "histogram"
              ? { attributes: jsonAttrs(p.attributes), value: Number(p.sum ?? 0), count: Number(p.count ?? 0), bounds: p.explicitBounds ?? [] }
              : { attributes: jsonAttrs(p.attributes), value: p.asDouble !== undefined ? Number(p.asDouble) : Number(p.asInt ?? 0) },
        );
        out.push({ name: String(m.name), unit: String(m.unit ?? ""), type: kind, points, resource, encoding: "json" });
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// OTLP/protobuf: a minimal wire-format reader
// ---------------------------------------------------------------------------------------------

type WireValue = { wire: 0; v: bigint } | { wire: 1; b: Buffer } | { wire: 2; b: Buffer } | { wire: 5; b: Buffer };

/** Fields of one message by number, in order (repeated fields have several entries). */
function fields(buf: Buffer): Map<number, WireValue[]> {
  const out = new Map<number, WireValue[]>();
  let at = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (at >= buf.length) throw new Error("truncated varint");
      const byte = buf[at++] as number;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (at < buf.length) {
    const key = Number(varint());
    const no = key >>> 3;
    const wire = key & 7;
    let value: WireValue;
    if (wire === 0) value = { wire: 0, v: varint() };
    else if (wire === 1) {
      value = { wire: 1, b: buf.subarray(at, at + 8) };
      at += 8;
    } else if (wire === 2) {
      const len = Number(varint());
      value = { wire: 2, b: buf.subarray(at, at + len) };
      at += len;
    } else if (wire === 5) {
      value = { wire: 5, b: buf.subarray(at, at + 4) };
      at += 4;
    } else throw new Error(`unsupported wire type ${wire}`);
    if (at > buf.length) throw new Error("truncated field");
    const list = out.get(no);
    if (list) list.push(value);
    else out.set(no, [value]);
  }
  return out;
}

const msgs = (f: Map<number, WireValue[]>, no: number): Buffer[] => (f.get(no) ?? []).filter((v): v is { wire: 2; b: Buffer } => v.wire === 2).map((v) => v.b);
const msg = (f: Map<number, WireValue[]>, no: number): Buffer | undefined => msgs(f, no)[0];
const str = (f: Map<number, WireValue[]>, no: number): string => msg(f, no)?.toString("utf8") ?? "";
const hex = (f: Map<number, WireValue[]>, no: number): string => msg(f, no)?.toString("hex") ?? "";
const uint = (f: Map<number, WireValue[]>, no: number): bigint => {
  const v = f.get(no)?.[0];
  if (!v) return 0n;
  if (v.wire === 0) return v.v;
  if (v.wire === 1) return v.b.readBigUInt64LE(0);
  if (v.wire === 5) return BigInt(v.b.readUInt32LE(0));
  return 0n;
};
const double = (f: Map<number, WireValue[]>, no: number): number | undefined => {
  const v = f.get(no)?.[0];
  return v && v.wire === 1 ? v.b.readDoubleLE(0) : undefined;
};

function anyValue(buf: Buffer): AttrValue {
  const f = fields(buf);
  if (f.has(1)) return str(f, 1);
  if (f.has(2)) return uint(f, 2) !== 0n;
  if (f.has(3)) return Number(BigInt.asIntN(64, uint(f, 3)));
  if (f.has(4)) return double(f, 4) ?? 0;
  if (f.has(5)) return msgs(fields(msg(f, 5) as Buffer), 1).map(anyValue);
  return null;
}

function protoAttrs(kvs: Buffer[]): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const kv of kvs) {
    const f = fields(kv);
    const v = msg(f, 2);
    out[str(f, 1)] = v ? anyValue(v) : null;
  }
  return out;
}

function resourceOf(f: Map<number, WireValue[]>): Record<string, AttrValue> {
  const r = msg(f, 1);
  return r ? protoAttrs(msgs(fields(r), 1)) : {};
}

function spansFromProto(body: Buffer): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of msgs(fields(body), 1)) {
    const rsf = fields(rs);
    const resource = resourceOf(rsf);
    for (const ss of msgs(rsf, 2)) {
      for (const sp of msgs(fields(ss), 2)) {
        const f = fields(sp);
        const st = msg(f, 15);
        const stf = st ? fields(st) : new Map<number, WireValue[]>();
        out.push({
          traceId: hex(f, 1),
          spanId: hex(f, 2),
          parentSpanId: hex(f, 4),
          name: str(f, 5),
          kind: KINDS[Number(uint(f, 6))] ?? "unspecified",
          startNs: uint(f, 7),
          endNs: uint(f, 8),
          attributes: protoAttrs(msgs(f, 9)),
          links: msgs(f, 13).map((l) => {
            const lf = fields(l);
            return { traceId: hex(lf, 1), spanId: hex(lf, 2) };
          }),
          status: { code: Number(uint(stf, 3)), message: str(stf, 2) },
          resource,
          encoding: "protobuf",
        });
      }
    }
  }
  return out;
}

function numberPoint(buf: Buffer): ReceivedPoint {
  const f = fields(buf);
  const d = double(f, 4);
  const i = f.get(6)?.[0];
  const asInt = i && i.wire === 1 ? Number(i.b.readBigInt64LE(0)) : 0;
  return { attributes: protoAttrs(msgs(f, 7)), value: d ?? asInt };
}

function histogramPoint(buf: Buffer): ReceivedPoint {
  const f = fields(buf);
  const boundsBuf = msg(f, 7);
  const bounds: number[] = [];
  if (boundsBuf) for (let o = 0; o + 8 <= boundsBuf.length; o += 8) bounds.push(boundsBuf.readDoubleLE(o));
  return { attributes: protoAttrs(msgs(f, 9)), value: double(f, 5) ?? 0, count: Number(uint(f, 4)), bounds };
}

function metricsFromProto(body: Buffer): ReceivedMetric[] {
  const out: ReceivedMetric[] = [];
  for (const rm of msgs(fields(body), 1)) {
    const rmf = fields(rm);
    const resource = resourceOf(rmf);
    for (const sm of msgs(rmf, 2)) {
      for (const m of msgs(fields(sm), 2)) {
        const f = fields(m);
        const [type, no, point] = f.has(5)
          ? (["gauge", 5, numberPoint] as const)
          : f.has(7)
            ? (["sum", 7, numberPoint] as const)
            : f.has(9)
              ? (["histogram", 9, histogramPoint] as const)
              : (["other", 0, numberPoint] as const);
        const data = no ? msg(f, no) : undefined;
        const points = data ? msgs(fields(data), 1).map(point) : [];
        out.push({ name: str(f, 1), unit: str(f, 3), type, points, resource, encoding: "protobuf" });
      }
    }
  }
  return out;
}
