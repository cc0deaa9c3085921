/**
 * File names in a watched inbox: which ones match the inbox's patterns, and which are the
 * temporary names copy tools write to before renaming (never enqueued, whatever the patterns).
 *
 * Patterns are matched against the file's base name, case-insensitively. They support `*`
 * (any run of characters), `?` (one character), `[abc]` / `[a-z]` / `[!abc]` (a class) and
 * `{mp4,mov}` (alternatives). That is all an inbox needs, so this is a dozen lines instead of a
 * dependency.
 */

/** A glob for one base name as an anchored, case-insensitive regular expression. */
export function globToRegExp(glob: string): RegExp {
  let out = "";
  let braces = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === "*") out += ".*";
    else if (c === "?") out += ".";
    else if (c === "[" && glob.indexOf("]", i + 2) > i) {
      const end = glob.indexOf("]", i + 2);
      let body = glob.slice(i + 1, end);
      const negate = body.startsWith("!") || body.startsWith("^");
      if (negate) body = body.slice(1);
      out += `[${negate ? "^" : ""}${body.replace(/[\\\]^]/g, "\\$&")}]`;
      i = end;
    } else if (c === "{") {
      braces++;
      out += "(?:";
    } else if (c === "}" && braces > 0) {
      braces--;
      out += ")";
    } else if (c === "," && braces > 0) out += "|";
    else out += c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  out += ")".repeat(braces);
  return new RegExp(`^${out}$`, "is");
}

/** A matcher for a list of globs: true when any of them matches the base name. */
export function nameMatcher(patterns: readonly string[]): (name: string) => boolean {
  const res = patterns.map(globToRegExp);
  return (name) => res.some((re) => re.test(name));
}

/** Suffixes of names that copy and download tools write to before the final rename. */
const TEMP_SUFFIXES = [".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", ".filepart", ".swp", "~"];

/**
 * Temporary or hidden names: dot-files (rsync writes `.name.XXXXXX`), `~$` lock files and the
 * suffixes above. Such a file is considered only once it is renamed to a matching name.
 */
export function isTemporaryName(name: string): boolean {
  if (name.startsWith(".") || name.startsWith("~$")) return true;
  const lower = name.toLowerCase();
  return TEMP_SUFFIXES.some((s) => lower.endsWith(s));
}
