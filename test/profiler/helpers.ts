/**
 * Shared by the profiler and scheduler suites: the report JSON Schema validator, report-file
 * checks, and a look at the streams a NATS server holds. Not a test file itself.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { Ajv2020 } from "ajv/dist/2020.js";
import type { ProfileReport, ReportFiles } from "../../src/profiler/index.js";

// Compiled to dist/test/profiler/: the repository root is three levels up.
export const SCHEMA_FILE = fileURLToPath(new URL("../../../schemas/profile-report.schema.json", import.meta.url));

const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
const validate = ajv.compile(JSON.parse(fs.readFileSync(SCHEMA_FILE, "utf8")) as object);

/** Fails with every schema violation listed. */
export function assertValidReport(report: unknown): asserts report is ProfileReport {
  const ok = validate(report);
  assert.ok(ok, `report does not match ${SCHEMA_FILE}:\n${JSON.stringify(validate.errors, null, 2)}`);
}

/** The three files exist, the JSON on disk validates, the Markdown links the SVG, the SVG is one well-formed-looking document. */
export function assertReportFiles(files: ReportFiles | undefined, kind: "basic" | "advanced"): ProfileReport {
  assert.ok(files, "no report files");
  const stem = kind === "basic" ? "performance_report" : "advanced_profile";
  for (const f of [files.json, files.markdown, files.svg]) {
    assert.match(f.split("/").pop() as string, new RegExp(`^${stem}_\\d{8}_\\d{6}(_\\d+)?\\.(json|md|svg)$`));
    assert.ok(fs.existsSync(f), `${f} missing`);
  }
  const report = JSON.parse(fs.readFileSync(files.json, "utf8")) as unknown;
  assertValidReport(report);
  const md = fs.readFileSync(files.markdown, "utf8");
  assert.match(md, /^# vqd /);
  assert.match(md, /\*\*Verdict: (PASS|FAIL)\*\*/);
  assert.match(md, /\| target \| source \| measured \| verdict \|/);
  assert.ok(md.includes(`](${files.svg.split("/").pop()})`), "the Markdown links the trend SVG");
  const svg = fs.readFileSync(files.svg, "utf8");
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(svg.trimEnd(), /<\/svg>$/);
  assert.equal((svg.match(/<g /g) ?? []).length, (svg.match(/<\/g>/g) ?? []).length, "balanced groups");
  return report;
}

export function figure(report: ProfileReport, id: string): number | null {
  for (const s of report.sections) for (const f of s.figures) if (f.id === id) return f.value;
  throw new Error(`no figure ${id} in the report`);
}

export function target(report: ProfileReport, id: string) {
  const t = report.targets.find((x) => x.id === id);
  assert.ok(t, `no target ${id}`);
  return t;
}

/** Stream names on a server. */
export async function streamNames(url: string): Promise<string[]> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const names: string[] = [];
    for await (const s of jsm.streams.list()) names.push(s.config.name);
    return names;
  } finally {
    await nc.close();
  }
}
