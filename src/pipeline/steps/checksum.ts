import { createHash } from "node:crypto";
import fs from "node:fs";
import { StepAbortedError, StepError } from "../errors.js";
import { assertInputFile } from "../media.js";
import { checkKnown, optionError } from "../options.js";
import { abortReason } from "../process.js";
import type { Step } from "../step.js";

const OPTIONS = ["of"] as const;
const REF = /^(.+)\.([A-Za-z0-9_]+)$/;

function refsOf(options: Readonly<Record<string, unknown>>): string[] {
  const of = options.of;
  if (of === undefined) return [];
  const list = typeof of === "string" ? [of] : of;
  if (!Array.isArray(list) || list.length === 0 || !list.every((r): r is string => typeof r === "string" && REF.test(r))) {
    throw optionError("checksum", "of", 'must be "<step>.<output>" (e.g. "transcode.file") or a list of them', of);
  }
  return list;
}

/** Streams a file through sha256. */
export async function sha256File(file: string, signal?: AbortSignal): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  try {
    for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20, signal })) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
  } catch (e) {
    if (signal?.aborted) throw new StepAbortedError(abortReason(signal));
    const code = (e as NodeJS.ErrnoException).code;
    throw new StepError(`checksum: cannot read ${file}: ${(e as Error).message}`, { retryable: code !== "ENOENT" && code !== "EACCES" && code !== "EISDIR", cause: e });
  }
  return { sha256: hash.digest("hex"), bytes };
}

/**
 * `checksum`: the sha256 of the input, streamed, and (with `options.of: "<step>.<output>"` or a
 * list of them) of earlier steps' output files, e.g. "transcode.file".
 * Outputs `{ sha256, bytes, of?: { "<step>.<output>": { file, sha256, bytes } } }`.
 */
export function createChecksumStep(): Step {
  return {
    kind: "checksum",
    validateOptions(options) {
      checkKnown("checksum", options, OPTIONS);
      refsOf(options);
    },
    async run(input, ctx) {
      const refs = refsOf(input.options);
      const files: { ref: string; file: string }[] = [];
      for (const ref of refs) {
        const [, step = "", key = ""] = REF.exec(ref) ?? [];
        const file = input.previous[step]?.[key];
        if (typeof file !== "string" || file === "") {
          throw new StepError(`checksum: options.of "${ref}": step "${step}" has no output "${key}" (has it run earlier in this pipeline?)`, { retryable: false });
        }
        files.push({ ref, file });
      }
      await assertInputFile(input.path);
      const main = await sha256File(input.path, ctx.signal);
      const of: Record<string, { file: string; sha256: string; bytes: number }> = {};
      for (const { ref, file } of files) of[ref] = { file, ...(await sha256File(file, ctx.signal)) };
      ctx.progress(100);
      return files.length === 0 ? main : { ...main, of };
    },
  };
}
