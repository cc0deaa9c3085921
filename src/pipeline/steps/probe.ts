import { checkKnown, intOption, MAX_TIMER_MS } from "../options.js";
import { probeFile } from "../media.js";
import type { Step } from "../step.js";
import { mediaSettings, type StepsConfig } from "../config.js";


const OPTIONS = ["timeoutMs"] as const;

/**
 * `probe`: ffprobe's description of the input: duration, container, size, bit rate, the first
 * video and audio streams. A file ffprobe cannot read, or one without video, fails for good
 * ("not a video: ..."). Options: `timeoutMs` (default 60000).
 */
export function createProbeStep(config: StepsConfig = {}): Step {
  const { ffprobe } = mediaSettings(config);
  return {
    kind: "probe",
    validateOptions(options) {
      checkKnown("probe", options, OPTIONS);
      intOption("probe", options, "timeoutMs", 1, MAX_TIMER_MS);
    },
    async run(input, ctx) {
      const timeoutMs = intOption("probe", input.options, "timeoutMs", 1, MAX_TIMER_MS, 60_000);
      const out = await probeFile(ffprobe, input.path, { signal: ctx.signal, timeoutMs });
      ctx.progress(100);
      return out;
    },
  };
}
