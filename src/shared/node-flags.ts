/**
 * V8 flags for the long-running processes (`vqd start`, `vqd worker`), also written in the
 * systemd units and `npm start`. A 2 MB young generation (default 16 MB) keeps an idle daemon
 * near 78-85 MB RSS instead of 95 MB for its first seconds; the cost is more frequent, shorter
 * scavenges under load. It must be given on the command line: set at run time it has no effect.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=2"];
