/**
 * Progress of a suite: a bar redrawn in place on a terminal, one plain line per step otherwise
 * (logs, CI, the scheduler). Always on stderr, so `--json` output on stdout stays one document.
 */

export interface Progress {
  /** Step `index` of `total` begins. */
  step(index: number, total: number, title: string): void;
  /** Part of the current step is done (0..1); only a terminal shows it. */
  advance(fraction: number, detail?: string): void;
  /** The current step ended, with a one-line summary of its figures (or its error). */
  done(summary: string, failed?: boolean): void;
  /** Something worth a line of its own. */
  note(message: string): void;
  /** The run is over (clears the bar). */
  end(): void;
}

export const silentProgress: Progress = { step() {}, advance() {}, done() {}, note() {}, end() {} };

/** Plain lines through a function (a logger, the test output). */
export function lineProgress(write: (line: string) => void, prefix = "profile"): Progress {
  let current = "";
  let started = 0;
  return {
    step(index, total, title) {
      current = `[${index}/${total}] ${title}`;
      started = Date.now();
      write(`${prefix} ${current} ...`);
    },
    advance() {},
    done(summary, failed) {
      write(`${prefix} ${current} ${failed ? "FAILED" : "done"} in ${((Date.now() - started) / 1000).toFixed(1)} s: ${summary}`);
    },
    note(message) {
      write(`${prefix} ${message}`);
    },
    end() {},
  };
}

/** A bar on a terminal stream; falls back to plain lines when the stream is not a TTY. */
export function terminalProgress(stream: NodeJS.WriteStream = process.stderr, prefix = "profile"): Progress {
  if (!stream.isTTY) return lineProgress((line) => stream.write(line + "\n"), prefix);
  const WIDTH = 24;
  let index = 0;
  let total = 1;
  let title = "";
  let started = 0;
  let lastDraw = 0;
  const clear = (): void => {
    stream.write("\r\x1b[2K");
  };
  const draw = (fraction: number, detail?: string): void => {
    const t = Date.now();
    if (t - lastDraw < 80 && fraction < 1) return;
    lastDraw = t;
    const overall = Math.min(1, (index - 1 + Math.max(0, Math.min(1, fraction))) / total);
    const filled = Math.round(overall * WIDTH);
    const bar = "#".repeat(filled) + "-".repeat(WIDTH - filled);
    const cols = stream.columns || 100;
    const text = `${prefix} [${bar}] ${index}/${total} ${title}${detail ? ` (${detail})` : ""}`;
    clear();
    stream.write(text.length > cols - 1 ? text.slice(0, cols - 2) + "…" : text);
  };
  return {
    step(i, n, t) {
      index = i;
      total = n;
      title = t;
      started = Date.now();
      lastDraw = 0;
      draw(0);
    },
    advance(fraction, detail) {
      draw(fraction, detail);
    },
    done(summary, failed) {
      clear();
      stream.write(`${prefix} [${index}/${total}] ${title} ${failed ? "FAILED" : "done"} in ${((Date.now() - started) / 1000).toFixed(1)} s: ${summary}\n`);
    },
    note(message) {
      clear();
      stream.write(`${prefix} ${message}\n`);
    },
    end() {
      clear();
    },
  };
}
