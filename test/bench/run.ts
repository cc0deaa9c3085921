/**
 * Bench runner: `node dist/test/bench/run.js [--json] [--only db,queue,bus] [--quick]`.
 * Goals that are missed print FAIL but exit 0; only a crashed group (or bad usage) exits non-zero.
 */
import { parseArgs } from "node:util";
import { busGroup } from "./bus.bench.js";
import { dbGroup } from "./db.bench.js";
import { pipelineGroup } from "./pipeline.bench.js";
import { queueGroup } from "./queue.bench.js";
import { formatGroup, tally, toJson, type GroupOutcome } from "./report.js";
import type { BenchContext, BenchGroup } from "./types.js";

/** Every group, in run order. A new group is one import and one entry here. */
export const GROUPS: readonly BenchGroup[] = [dbGroup, queueGroup, busGroup, pipelineGroup, (await import("./telemetry.bench.js")).telemetryGroup];

const USAGE = `usage: node dist/test/bench/run.js [--json] [--only <group,...>] [--quick]
  --json    print one JSON object of flat keys (e.g. db.insert_us) on stdout, progress on stderr
  --only    comma-separated groups to run (${GROUPS.map((g) => g.name).join(", ")})
  --quick   fewer operations: a smoke run of the harness, noisier numbers`;

async function main(argv: readonly string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        json: { type: "boolean", default: false },
        only: { type: "string" },
        quick: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.error(USAGE);
    return 0;
  }

  let selected = GROUPS;
  if (values.only !== undefined) {
    const names = values.only.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
    const unknown = names.filter((n) => !GROUPS.some((g) => g.name === n));
    if (unknown.length > 0 || names.length === 0) {
      console.error(`unknown group(s): ${unknown.join(", ") || "(none given)"}\n${USAGE}`);
      return 2;
    }
    selected = GROUPS.filter((g) => names.includes(g.name));
  }

  const ctx: BenchContext = {
    log: (message) => process.stderr.write(`[bench] ${message}\n`),
    quick: values.quick,
  };
  const outcomes: GroupOutcome[] = [];
  for (const group of selected) {
    ctx.log(`${group.name}: running${values.quick ? " (quick)" : ""}`);
    const started = Date.now();
    let outcome: GroupOutcome;
    try {
      outcome = { name: group.name, description: group.description, result: await group.run(ctx) };
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      ctx.log(`${group.name}: CRASHED: ${error.stack ?? error.message}`);
      outcome = { name: group.name, description: group.description, error };
    }
    ctx.log(`${group.name}: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    outcomes.push(outcome);
    if (!values.json) process.stdout.write(formatGroup(outcome) + "\n");
  }

  const t = tally(outcomes);
  if (values.json) {
    process.stdout.write(JSON.stringify(toJson(outcomes), null, 2) + "\n");
  } else {
    process.stdout.write(`goals: ${t.pass} pass, ${t.fail} FAIL${t.crashed ? `, ${t.crashed} group(s) CRASHED` : ""}\n`);
  }
  return t.crashed > 0 ? 1 : 0;
}

// `node --test dist/test/` also runs every .js file under dist/test/, this one included: don't bench there.
if (process.env.NODE_TEST_CONTEXT) {
  console.log("# bench runner skipped under node --test");
} else {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
