/** Process exit codes (sysexits-style where one fits). */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  /** EX_UNAVAILABLE: the daemon or NATS cannot be reached. */
  unavailable: 69,
  /** EX_CONFIG: the configuration is invalid. */
  config: 78,
} as const;
