/** The path checker's worker thread (see path-checker.ts): checks each batch synchronously. */
import { parentPort } from "node:worker_threads";
import { isInputError } from "./errors.js";
import type { CheckReply, CheckRequest, WorkerOutcome } from "./path-checker.js";
import { checkVideoPathSync, realRootsSync } from "./validate-path.js";

parentPort?.on("message", (req: CheckRequest) => {
  let reply: CheckReply;
  try {
    const roots = realRootsSync(req.allowedRoots);
    const outcomes = req.inputs.map((input): WorkerOutcome => {
      try {
        return { path: checkVideoPathSync(input, req.allowedRoots, roots, req.cwd) };
      } catch (err) {
        if (isInputError(err)) return { problem: err.problem, message: err.message };
        return { problem: "unreadable", message: `cannot check ${JSON.stringify(input)}: ${(err as Error).message}` };
      }
    });
    reply = { id: req.id, outcomes };
  } catch (err) {
    reply = { id: req.id, failure: (err as Error).message };
  }
  parentPort?.postMessage(reply);
});
