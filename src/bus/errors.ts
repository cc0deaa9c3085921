/**
 * Errors raised by the NATS layer. Each carries a sysexits-style `exitCode` the CLI can use.
 */

/** EX_UNAVAILABLE: a service the command needs is not reachable. */
export const EXIT_UNAVAILABLE = 69;
/** EX_NOPERM: the service refused our credentials. */
export const EXIT_NOPERM = 77;

/** No NATS server could be reached (at start-up; later disconnects are retried forever). */
export class NatsUnavailableError extends Error {
  readonly exitCode: number = EXIT_UNAVAILABLE;
  readonly servers: readonly string[];
  constructor(servers: readonly string[], message?: string, options?: ErrorOptions) {
    const cause = options?.cause;
    const why = cause instanceof Error ? cause.message : cause !== undefined ? String(cause) : "unknown reason";
    super(message ?? `cannot connect to NATS at ${servers.map(redactUrl).join(", ")}: ${why}`, options);
    this.name = "NatsUnavailableError";
    this.servers = servers.map(redactUrl);
  }
}

/**
 * The server was reached but rejected the connection's credentials (token, user/pass, nkey,
 * creds). A subclass of NatsUnavailableError so callers that only care "is the bus usable?"
 * need a single check, but with its own exit code and message.
 */
export class NatsAuthError extends NatsUnavailableError {
  override readonly exitCode: number = EXIT_NOPERM;
  readonly method: string;
  constructor(servers: readonly string[], method: string, options?: ErrorOptions) {
    const cause = options?.cause;
    const why = cause instanceof Error ? cause.message : String(cause ?? "authorization violation");
    super(
      servers,
      `NATS at ${servers.map(redactUrl).join(", ")} rejected the connection (auth: ${method}): ${why}; ` +
        `check nats.token / nats.user / nats.pass / nats.credsFile / nats.nkeySeedFile`,
      options,
    );
    this.name = "NatsAuthError";
    this.method = method;
  }
}

/** The `nats-server` binary for the embedded server could not be found or executed. */
export class NatsServerNotFoundError extends Error {
  readonly exitCode: number = EXIT_UNAVAILABLE;
  readonly binary: string;
  constructor(binary: string, options?: ErrorOptions) {
    super(
      `nats-server binary not found: "${binary}" (needed for the embedded NATS server). ` +
        `Install it (Debian/Ubuntu: \`apt-get install nats-server\`), ` +
        `or set nats.embedded.binary to its path, ` +
        `or set nats.servers to use an external NATS server instead`,
      options,
    );
    this.name = "NatsServerNotFoundError";
    this.binary = binary;
  }
}

/** The embedded `nats-server` started but exited or did not become ready in time. */
export class NatsServerStartError extends Error {
  readonly exitCode: number = EXIT_UNAVAILABLE;
  /** The last lines the server wrote to stderr (also included in the message). */
  readonly stderrTail: string;
  constructor(message: string, stderrTail: string, options?: ErrorOptions) {
    const tail = stderrTail.trim();
    super(tail ? `${message}\n--- nats-server stderr (tail) ---\n${tail}` : `${message} (no output from nats-server)`, options);
    this.name = "NatsServerStartError";
    this.stderrTail = stderrTail;
  }
}

export const isNatsUnavailable = (e: unknown): e is NatsUnavailableError => e instanceof NatsUnavailableError;
export const isNatsAuthError = (e: unknown): e is NatsAuthError => e instanceof NatsAuthError;
export const isNatsServerNotFound = (e: unknown): e is NatsServerNotFoundError => e instanceof NatsServerNotFoundError;
export const isNatsServerStartError = (e: unknown): e is NatsServerStartError => e instanceof NatsServerStartError;

/** `nats://user:secret@host:4222` -> `nats://user:[redacted]@host:4222`: server lists may carry credentials. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/@:]*)(:[^/@]*)?@/i, (_m, scheme: string, user: string, pass?: string) =>
    pass ? `${scheme}${user}:[redacted]@` : `${scheme}[redacted]@`,
  );
}
