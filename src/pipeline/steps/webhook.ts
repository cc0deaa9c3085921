import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import path from "node:path";
import type { WebhookConfig } from "../../config/schema.js";
import { resolveCredentialPath } from "../../config/secrets.js";
import type { StepsConfig } from "../config.js";
import { StepAbortedError, StepError } from "../errors.js";
import { boolOption, checkKnown, intOption, isPlainObject, MAX_TIMER_MS, optionError, stringOption } from "../options.js";
import { abortReason } from "../process.js";
import type { Step } from "../step.js";

const OPTIONS = ["url", "webhook", "tokenFile", "allowInsecure", "timeoutMs", "caFile", "metadata"] as const;
const TARGET_OPTIONS = ["url", "tokenFile", "allowInsecure", "timeoutMs", "caFile"] as const;
const DEFAULT_TIMEOUT_MS = 10_000;

/** TLS verification failures: a configuration problem, not a passing one. */
const TLS_VERIFY = /^(CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH)/;

type Options = Readonly<Record<string, unknown>>;

interface Target extends WebhookConfig {
  /** Where the settings came from, for messages. */
  readonly where: string;
}

/** The URL without credentials, query or fragment, for messages and logs. */
export function safeUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

function parseUrl(raw: string, allowInsecure: boolean, where: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new StepError(`webhook: ${where} is not a valid URL`, { retryable: false });
  }
  if (url.protocol === "http:" && !allowInsecure) {
    throw new StepError(
      `webhook: ${where} is plain http:// (${safeUrl(url)}); webhooks must use https:// unless allowInsecure: true is set for them`,
      { retryable: false },
    );
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new StepError(`webhook: ${where} must be an https:// URL (got ${url.protocol}//)`, { retryable: false });
  }
  return url;
}

/**
 * `webhook`: POSTs `{ videoId, pipeline, path, outputs, metadata? }` (outputs: the results of the
 * earlier steps) as JSON to `options.url`, or to the webhook `options.webhook` names in the
 * config's `webhooks`. https only unless allowInsecure; bearer token from `tokenFile` (a path or
 * credential:NAME); `caFile` to trust a private CA; `timeoutMs` (default 10000).
 * A timeout, a network error, 408, 429 and 5xx are retryable; any other status that is not 2xx is not.
 * Outputs `{ status, ms }`.
 */
export function createWebhookStep(config: StepsConfig = {}): Step {
  const named = config.webhooks ?? {};

  const targetOf = (options: Options): Target => {
    checkKnown("webhook", options, OPTIONS);
    const metadata = options.metadata;
    if (metadata !== undefined && !isPlainObject(metadata)) throw optionError("webhook", "metadata", "must be a mapping", metadata);
    const name = stringOption("webhook", options, "webhook");
    if (name !== undefined) {
      const clash = TARGET_OPTIONS.find((k) => options[k] !== undefined);
      if (clash) throw optionError("webhook", clash, `cannot be combined with options.webhook (set it in webhooks.${name} instead)`);
      const hook = Object.hasOwn(named, name) ? named[name] : undefined;
      if (!hook) {
        const known = Object.keys(named).map((n) => JSON.stringify(n)).join(", ") || "none configured";
        throw optionError("webhook", "webhook", `must name a webhook in the config's webhooks (${known})`, name);
      }
      parseUrl(hook.url, hook.allowInsecure, `webhooks.${name}.url`);
      return { ...hook, where: `webhooks.${name}` };
    }
    const url = stringOption("webhook", options, "url");
    if (url === undefined) throw optionError("webhook", "url", "or options.webhook must be set");
    const allowInsecure = boolOption("webhook", options, "allowInsecure", false);
    parseUrl(url, allowInsecure, "options.url");
    return {
      url,
      allowInsecure,
      tokenFile: stringOption("webhook", options, "tokenFile") ?? "",
      caFile: stringOption("webhook", options, "caFile") ?? "",
      timeoutMs: intOption("webhook", options, "timeoutMs", 1, MAX_TIMER_MS, DEFAULT_TIMEOUT_MS),
      where: "options",
    };
  };

  return {
    kind: "webhook",
    validateOptions(options) {
      targetOf(options);
    },
    async run(input, ctx) {
      const target = targetOf(input.options);
      const url = parseUrl(target.url, target.allowInsecure, `${target.where}.url`);
      const token = target.tokenFile === "" ? undefined : readSecretFile(target.tokenFile, `${target.where}.tokenFile`);
      const ca = target.caFile === "" ? undefined : readFile(target.caFile, `${target.where}.caFile`);
      const metadata = input.options.metadata;
      const body = Buffer.from(
        JSON.stringify({
          videoId: input.videoId,
          pipeline: input.pipeline,
          path: input.path,
          outputs: input.previous,
          ...(metadata === undefined ? {} : { metadata }),
        }),
      );
      const headers: Record<string, string> = {
        "content-type": "application/json",
        "content-length": String(body.length),
        "user-agent": "vqd",
        // The same for every attempt of this step, so the receiver can drop repeats.
        "idempotency-key": `${input.videoId}/${input.pipeline}/${input.name}`,
      };
      if (token !== undefined) headers.authorization = `Bearer ${token}`;
      const started = performance.now();
      const status = await post(url, body, headers, { ca, timeoutMs: target.timeoutMs, signal: ctx.signal });
      const ms = Math.round(performance.now() - started);
      const where = safeUrl(url);
      if (status.code >= 200 && status.code < 300) {
        ctx.progress(100);
        return { status: status.code, ms };
      }
      const detail = status.body ? `: ${status.body}` : "";
      if (status.code >= 500 || status.code === 408 || status.code === 429) {
        throw new StepError(`webhook: ${where} answered ${status.code}${detail}`, { retryable: true });
      }
      if (status.code >= 300 && status.code < 400) {
        throw new StepError(`webhook: ${where} answered ${status.code} (redirects are not followed; configure the final URL)`, { retryable: false });
      }
      throw new StepError(`webhook: ${where} refused the delivery with ${status.code}${detail}`, { retryable: false });
    },
  };
}

function readFile(file: string, key: string): Buffer {
  let resolved: string;
  try {
    resolved = path.resolve(resolveCredentialPath(file, process.env, { keyPath: key, source: "webhook" }));
  } catch (e) {
    throw new StepError(`webhook: ${key}: ${(e as Error).message}`, { retryable: false, cause: e });
  }
  try {
    return fs.readFileSync(resolved);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "error";
    throw new StepError(`webhook: cannot read ${key} ${resolved} (${code})`, { retryable: false, cause: e });
  }
}

/** The trimmed content of a secret file; the content never appears in a message. */
function readSecretFile(file: string, key: string): string {
  const value = readFile(file, key).toString("utf8").trim();
  if (value === "") throw new StepError(`webhook: ${key} ${file} is empty`, { retryable: false });
  if (/[\r\n]/.test(value)) throw new StepError(`webhook: ${key} ${file} must hold a single line`, { retryable: false });
  return value;
}

function post(
  url: URL,
  body: Buffer,
  headers: Record<string, string>,
  opts: { ca?: Buffer; timeoutMs: number; signal: AbortSignal },
): Promise<{ code: number; body: string }> {
  const where = safeUrl(url);
  if (opts.signal.aborted) return Promise.reject(new StepAbortedError(abortReason(opts.signal)));
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const req = (url.protocol === "https:" ? https : http).request(url, {
      method: "POST",
      headers,
      // One connection per delivery: no idle sockets kept open between rare webhooks.
      agent: false,
      ...(opts.ca ? { ca: opts.ca } : {}),
      signal: opts.signal,
    });
    const timer = setTimeout(() => {
      timedOut = true;
      req.destroy();
    }, opts.timeoutMs);
    req.once("response", (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        if (text.length < 200) text += chunk;
      });
      res.once("end", () => {
        clearTimeout(timer);
        resolve({ code: res.statusCode ?? 0, body: text.slice(0, 200).replace(/\s+/g, " ").trim() });
      });
      res.once("error", (e) => {
        clearTimeout(timer);
        reject(networkError(e, where, timedOut, opts));
      });
    });
    req.once("error", (e) => {
      clearTimeout(timer);
      reject(networkError(e, where, timedOut, opts));
    });
    req.end(body);
  });
}

function networkError(e: Error, where: string, timedOut: boolean, opts: { timeoutMs: number; signal: AbortSignal }): StepError {
  if (opts.signal.aborted) return new StepAbortedError(abortReason(opts.signal));
  if (timedOut) return new StepError(`webhook: no answer from ${where} within ${opts.timeoutMs} ms`, { retryable: true, cause: e });
  const code = (e as NodeJS.ErrnoException).code ?? "";
  if (TLS_VERIFY.test(code)) {
    return new StepError(`webhook: cannot verify the TLS certificate of ${where} (${code}: ${e.message}); set caFile to the CA that signed it`, {
      retryable: false,
      cause: e,
    });
  }
  return new StepError(`webhook: cannot deliver to ${where}: ${code ? `${code} ` : ""}${e.message}`, { retryable: true, cause: e });
}
