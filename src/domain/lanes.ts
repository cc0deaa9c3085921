/** Priority lanes, highest first. Workers always drain a higher lane before looking at a lower one. */
export const LANES = ["high", "normal", "low"] as const;
export type Lane = (typeof LANES)[number];

export function isLane(value: unknown): value is Lane {
  return typeof value === "string" && (LANES as readonly string[]).includes(value);
}
