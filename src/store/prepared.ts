import type BetterSqlite3 from "better-sqlite3";
import type { CompiledQuery } from "kysely";

/**
 * Kysely builds and type-checks our SQL; better-sqlite3 runs it. Kysely's own execution path is
 * async and costs 20-30 us per query here, so the hot paths compile each query once, with named
 * placeholders, and keep the prepared statement.
 */
const PLACEHOLDER = "\u0000vqd:param:";

/** A named placeholder to put where a value goes in a query that will be prepared once. */
export function param(name: string): never {
  // Typed never so that it fits any column; prepare() swaps it for the caller's value.
  return (PLACEHOLDER + name) as never;
}

export interface Prepared<P, R> {
  readonly sql: string;
  get(params: P): R | undefined;
  all(params: P): R[];
  run(params: P): BetterSqlite3.RunResult;
}

export function prepare<R, P extends object = Record<string, never>>(
  db: BetterSqlite3.Database,
  query: { compile(): CompiledQuery<R> },
): Prepared<P, R> {
  const compiled = query.compile();
  const fixed = compiled.parameters.slice();
  const slots: (string | null)[] = fixed.map((v) =>
    typeof v === "string" && v.startsWith(PLACEHOLDER) ? v.slice(PLACEHOLDER.length) : null,
  );
  const stmt = db.prepare(compiled.sql);
  const bind = (params: P): unknown[] => {
    const values = new Array<unknown>(slots.length);
    for (let i = 0; i < slots.length; i++) {
      const name = slots[i];
      if (name === null || name === undefined) {
        values[i] = fixed[i];
        continue;
      }
      const v = (params as Record<string, unknown>)[name];
      if (v === undefined) throw new TypeError(`missing query parameter "${name}" for: ${compiled.sql}`);
      values[i] = v;
    }
    return values;
  };
  const reader = stmt.reader;
  return {
    sql: compiled.sql,
    get: (p) => (reader ? (stmt.get(...bind(p)) as R | undefined) : undefined),
    all: (p) => (reader ? (stmt.all(...bind(p)) as R[]) : []),
    run: (p) => stmt.run(...bind(p)),
  };
}
