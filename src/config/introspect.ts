/**
 * Walking the zod schema: which keys exist under a key path, and what kind of value a key holds.
 * Used to map environment variables to keys and to suggest a key for a typo.
 */
import { z } from "zod";

export type SchemaNode =
  | { kind: "object"; keys: readonly string[]; child(key: string): z.ZodType }
  | { kind: "record"; value: z.ZodType }
  | { kind: "array"; element: z.ZodType }
  | { kind: "leaf"; leaf: "string" | "stringList" | "other" };

/** Strips default/prefault/optional/nullable/readonly wrappers and the input side of transforms. */
export function unwrap(schema: z.ZodType): z.ZodType {
  let current: z.ZodType = schema;
  for (;;) {
    if (
      current instanceof z.ZodDefault ||
      current instanceof z.ZodPrefault ||
      current instanceof z.ZodOptional ||
      current instanceof z.ZodNullable ||
      current instanceof z.ZodReadonly
    ) {
      current = current.def.innerType as z.ZodType;
    } else if (current instanceof z.ZodPipe) {
      current = current.in as z.ZodType;
    } else {
      return current;
    }
  }
}

export function describeNode(schema: z.ZodType): SchemaNode {
  const inner = unwrap(schema);
  if (inner instanceof z.ZodObject) {
    const shape = inner.shape as Record<string, z.ZodType>;
    return {
      kind: "object",
      keys: Object.keys(shape),
      child: (key) => {
        const child = shape[key];
        if (child === undefined) throw new Error(`no key ${key}`);
        return child;
      },
    };
  }
  if (inner instanceof z.ZodRecord) return { kind: "record", value: inner.def.valueType as z.ZodType };
  if (inner instanceof z.ZodString || inner instanceof z.ZodEnum) return { kind: "leaf", leaf: "string" };
  if (inner instanceof z.ZodArray) {
    const element = inner.def.element as z.ZodType;
    return unwrap(element) instanceof z.ZodString ? { kind: "leaf", leaf: "stringList" } : { kind: "array", element };
  }
  return { kind: "leaf", leaf: "other" };
}

/** The keys the schema allows directly under `path` (empty when the path holds no object). */
export function keysAt(root: z.ZodType, path: readonly PropertyKey[]): readonly string[] {
  let node = describeNode(root);
  for (const segment of path) {
    if (node.kind === "object" && typeof segment === "string" && node.keys.includes(segment)) {
      node = describeNode(node.child(segment));
    } else if (node.kind === "record" && typeof segment === "string") {
      node = describeNode(node.value);
    } else if (node.kind === "array" && typeof segment === "number") {
      node = describeNode(node.element);
    } else {
      return [];
    }
  }
  return node.kind === "object" ? node.keys : [];
}

/** The candidate closest to `word` (case-insensitive, at most 2 edits), if any. */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const target = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const distance = editDistance(target, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
