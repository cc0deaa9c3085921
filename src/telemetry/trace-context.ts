/**
 * W3C trace context (`traceparent`) parsing and formatting, without the SDK: a `traceparent`
 * travels in outbox rows, event metadata and NATS headers whether or not this process exports.
 */

export interface ParsedTraceparent {
  readonly traceId: string;
  readonly spanId: string;
  /** Bit 0: sampled. */
  readonly flags: number;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = "0".repeat(32);
const ZERO_SPAN = "0".repeat(16);

/** Parses a `traceparent` header value; undefined when it is missing or malformed. */
export function parseTraceparent(value: string | undefined | null): ParsedTraceparent | undefined {
  if (!value) return undefined;
  const m = TRACEPARENT.exec(value.trim());
  if (!m) return undefined;
  const [, version, traceId, spanId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined];
  // Version ff is invalid; version 00 has exactly four fields.
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return { traceId, spanId, flags: parseInt(flags, 16) };
}

export function formatTraceparent(traceId: string, spanId: string, flags: number): string {
  return `00-${traceId}-${spanId}-${(flags & 0xff).toString(16).padStart(2, "0")}`;
}

/** Whether a traceparent says "sampled" (its flags' bit 0). Cheap: runs per command and per message. */
export function isSampled(traceparent: string | undefined | null): boolean {
  if (!traceparent) return false;
  if (traceparent.length === 55 && traceparent.startsWith("00-")) return (parseInt(traceparent.slice(53), 16) & 1) === 1;
  return ((parseTraceparent(traceparent)?.flags ?? 0) & 1) === 1;
}

/** A well-formed traceparent whose sampled flag is clear. */
export function isValidUnsampled(traceparent: string): boolean {
  return !isSampled(traceparent) && parseTraceparent(traceparent) !== undefined;
}

/**
 * The same context with the sampled flag cleared (or, with none, a fresh unsampled one): spans
 * started under it, here or in any process it travels to, are not recorded.
 */
export function unsampled(traceparent: string | undefined | null): string {
  if (traceparent && traceparent.length === 55 && TRACEPARENT.test(traceparent) && traceparent.startsWith("00-")) {
    const flags = parseInt(traceparent.slice(53), 16) & 0xfe;
    return traceparent.slice(0, 53) + flags.toString(16).padStart(2, "0");
  }
  const p = parseTraceparent(traceparent);
  if (p) return formatTraceparent(p.traceId, p.spanId, p.flags & 0xfe);
  return formatTraceparent(randomHex(32), randomHex(16), 0);
}

function randomHex(length: number): string {
  let out = "";
  while (out.length < length) out += Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, "0");
  return out.slice(0, length - 1) + "1"; // never all zeros
}

/** The `traceparent` of received headers (any capitalisation). */
export function traceparentOf(headers: Readonly<Record<string, string>> | undefined): string | undefined {
  if (!headers) return undefined;
  return headers.traceparent ?? headers.Traceparent ?? headers.TRACEPARENT;
}
