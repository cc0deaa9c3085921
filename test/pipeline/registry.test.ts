import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { defaultConfig, isConfigError, loadConfig, type ConfigError } from "../../src/config/index.js";
import { defaultSteps, StepRegistry, type PipelineSpec } from "../../src/pipeline/index.js";
import { cleanupScratch, freshDir } from "./helpers.js";

after(cleanupScratch);

function configError(fn: () => void): ConfigError {
  try {
    fn();
  } catch (e) {
    assert.ok(isConfigError(e), `expected a ConfigError, got ${String(e)}`);
    assert.equal(e.exitCode, 78);
    return e;
  }
  assert.fail("expected a ConfigError");
}

const pipelines = (steps: PipelineSpec["steps"]): Record<string, PipelineSpec> => ({ ok: { steps: [{ step: "noop", options: {} }] }, fast: { steps } });

describe("StepRegistry", () => {
  test("new StepRegistry() has every built-in kind with built-in defaults", () => {
    const r = new StepRegistry();
    assert.deepEqual(r.kinds().sort(), ["checksum", "exec", "noop", "probe", "sleep", "thumbnail", "transcode", "webhook"]);
    assert.deepEqual(defaultSteps().map((s) => s.kind).sort(), r.kinds().sort());
    r.validatePipelines(defaultConfig().pipelines);
    r.validatePipelines(pipelines([{ step: "transcode", options: { profile: "archive-1080p" } }]));
  });

  test("validatePipelines: an unknown step kind names pipelines.<name>.steps.<i>", () => {
    const e = configError(() => new StepRegistry().validatePipelines(pipelines([{ step: "probe", options: {} }, { step: "transcod", options: {} }])));
    assert.equal(e.keyPath, "pipelines.fast.steps.1");
    assert.match(e.message, /^invalid config: pipelines\.fast\.steps\.1: unknown step kind "transcod" \(known kinds: checksum, exec, .*transcode, webhook\)/);
  });

  test("validatePipelines: bad options name the step and the option", () => {
    const r = new StepRegistry();
    for (const [step, options, message] of [
      ["transcode", { profile: "web-4k" }, /: transcode: options\.profile must name a profile/],
      ["thumbnail", { width: "wide" }, /thumbnail: options\.width must be an integer/],
      ["exec", {}, /exec: options\.command must be a non-empty list/],
      ["webhook", { url: "http://127.0.0.1:1/x" }, /webhook: options\.url is plain http:\/\//],
      ["checksum", { off: "x.y" }, /checksum: unknown option "off"/],
      ["sleep", { ms: -1 }, /sleep: options\.ms must be a number >= 0/],
    ] as const) {
      const e = configError(() => r.validatePipelines(pipelines([{ step: "probe", options: {} }, { step, name: "second", options }])));
      assert.equal(e.keyPath, "pipelines.fast.steps.1", step);
      assert.match(e.message, message);
      assert.match(e.message, /invalid options for step "second"/);
    }
  });

  test("fromConfig: profiles and webhooks come from the loaded config", () => {
    const dir = freshDir("cfg");
    const file = path.join(dir, "vqd.yaml");
    fs.writeFileSync(
      file,
      [
        "transcode:",
        "  profiles:",
        "    mobile: { maxHeight: 360, crf: 28 }",
        "webhooks:",
        "  catalog: { url: https://catalog.internal/hook }",
        "pipelines:",
        "  phone:",
        "    steps:",
        "      - { step: transcode, options: { profile: mobile } }",
        "      - { step: webhook, options: { webhook: catalog } }",
      ].join("\n"),
    );
    const config = loadConfig({ file, env: {}, cwd: dir });
    const r = StepRegistry.fromConfig(config);
    r.validatePipelines(config.pipelines);
    // Built-in steps without the config know neither the profile nor the webhook.
    const e = configError(() => new StepRegistry().validatePipelines(config.pipelines));
    assert.equal(e.keyPath, "pipelines.phone.steps.0");
    const e2 = configError(() => r.validatePipelines({ x: { steps: [{ step: "webhook", options: { webhook: "billing" } }] } }));
    assert.match(e2.message, /pipelines\.x\.steps\.0: .*must name a webhook in the config's webhooks \("catalog"\)/);
  });
});
