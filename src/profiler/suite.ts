/** Running a suite's steps: progress, per-step errors, abort, and the figures they return. */
import type { RunContext } from "./context.js";
import { isProfileAborted, now, round, throwIfAborted } from "./measure.js";
import type { Better, Figure, Section } from "./types.js";

export interface StepOutcome {
  readonly method: string;
  readonly figures: readonly Figure[];
  readonly notes?: readonly string[];
  /** One line for the progress output. */
  readonly summary: string;
}

export interface StepDef {
  readonly id: string;
  readonly title: string;
  run(ctx: RunContext): Promise<StepOutcome>;
}

/** A figure, rounded for the report; NaN and Infinity become null (not measured). */
export function fig(
  id: string,
  label: string,
  value: number | null,
  unit: string,
  better: Better,
  extra: { reference?: number; headline?: boolean; samples?: readonly number[] } = {},
): Figure {
  const v = value === null || !Number.isFinite(value) ? null : round(value);
  return {
    id,
    label,
    value: v,
    unit,
    better,
    ...(extra.reference !== undefined ? { reference: extra.reference } : {}),
    ...(extra.headline ? { headline: true } : {}),
    ...(extra.samples ? { samples: extra.samples.map((s) => round(s)) } : {}),
  };
}

/** Runs the steps in order. A failing step is recorded and the next one runs; an abort stops the run. */
export async function runSteps(ctx: RunContext, steps: readonly StepDef[]): Promise<Section[]> {
  const sections: Section[] = [];
  for (const [i, step] of steps.entries()) {
    throwIfAborted(ctx.signal);
    ctx.progress.step(i + 1, steps.length, step.title);
    const t0 = now();
    try {
      const out = await step.run(ctx);
      sections.push({ id: step.id, title: step.title, method: out.method, durationS: round((now() - t0) / 1000, 3), figures: out.figures, notes: out.notes ?? [] });
      ctx.progress.done(out.summary);
    } catch (err) {
      if (isProfileAborted(err) || ctx.signal.aborted) throw err;
      const message = (err as Error).message ?? String(err);
      ctx.logger.warn({ step: step.id, err: message }, "profiler: step failed");
      sections.push({ id: step.id, title: step.title, method: "", durationS: round((now() - t0) / 1000, 3), figures: [], notes: [], error: message.split("\n").slice(0, 12).join("\n") });
      ctx.progress.done(message.split("\n")[0] ?? "failed", true);
    }
  }
  return sections;
}

export const fmt = (n: number, digits = 1): string =>
  Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 }) : "n/a";
