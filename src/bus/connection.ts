/**
 * Client connections to NATS.
 *
 * `connectNats()` returns a plain `NatsConnection` that reconnects forever; its counters
 * (reconnects, disconnects, ...) are kept next to it and read with `natsStats(nc)`.
 * The status events the client reports are logged in the background.
 */
import { readFile } from "node:fs/promises";
import {
  AuthorizationError,
  connect,
  credsAuthenticator,
  nkeyAuthenticator,
  UserAuthenticationExpiredError,
  type Authenticator,
  type NatsConnection,
  type NodeConnectionOptions,
  type Status,
} from "@nats-io/transport-node";
import { NatsAuthError, NatsUnavailableError } from "./errors.js";
import { silentLogger, type BusLogger } from "./logger.js";

export interface NatsTlsOptions {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export interface ConnectNatsOptions {
  /** Server URLs, e.g. ["nats://127.0.0.1:4333"]. At least one. */
  servers: string[];
  /** Client name shown by the server's monitoring. */
  name?: string;
  user?: string;
  pass?: string;
  token?: string;
  /** Path to a `.creds` file (JWT + nkey seed). */
  credsFile?: string;
  /** Path to a file holding an nkey user seed ("SU..."). */
  nkeySeedFile?: string;
  /** Any non-undefined value requires TLS; the files are read by the client. */
  tls?: NatsTlsOptions;
  /** Time allowed for the initial connect handshake, per server. Default 5000. */
  timeoutMs?: number;
  /** Wait between reconnect attempts to the same server. Default 1000 (plus up to 100 jitter). */
  reconnectTimeWaitMs?: number;
  logger?: BusLogger;
}

/** Counters for one connection, updated in place as status events arrive. */
export interface NatsStats {
  /** Successful reconnects since the connection was opened. */
  readonly reconnects: number;
  /** Times the connection was lost. */
  readonly disconnects: number;
  /** Async errors reported by the server or client (not counting disconnects). */
  readonly errors: number;
  /** True while connected (false between a disconnect and the next reconnect, and after close). */
  readonly connected: boolean;
  /** The server currently (or last) connected to. */
  readonly server: string;
  readonly lastDisconnectAt: Date | null;
  readonly lastReconnectAt: Date | null;
  readonly lastError: string | null;
}

type MutableStats = { -readonly [K in keyof NatsStats]: NatsStats[K] };

const statsByConnection = new WeakMap<NatsConnection, MutableStats>();

const DEFAULT_TIMEOUT_MS = 5_000;
const DEFAULT_RECONNECT_WAIT_MS = 1_000;

/** Counters of a connection made by `connectNats()`. Throws for other connections. */
export function natsStats(nc: NatsConnection): NatsStats {
  const stats = statsByConnection.get(nc);
  if (!stats) throw new Error("natsStats(): this connection was not created by connectNats()");
  return stats;
}

/**
 * Connects to one of `opts.servers` and keeps reconnecting forever after that.
 * Failing to connect at start rejects with NatsUnavailableError (exit code 69), or with
 * NatsAuthError (a subclass, exit code 77) when the server refuses the credentials.
 */
export async function connectNats(opts: ConnectNatsOptions): Promise<NatsConnection> {
  const logger = opts.logger ?? silentLogger;
  const servers = [...opts.servers];
  if (servers.length === 0) throw new NatsUnavailableError(servers, "no NATS servers configured (nats.servers is empty)");

  const authenticators = await loadAuthenticators(opts);
  const connectOpts: NodeConnectionOptions = {
    servers,
    timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    reconnect: true,
    maxReconnectAttempts: -1,
    // Async stack traces make nats.js build an Error for every request just in case it fails:
    // measurable per job on the hot path, and our errors say what failed without them.
    noAsyncTraces: true,
    reconnectTimeWait: opts.reconnectTimeWaitMs ?? DEFAULT_RECONNECT_WAIT_MS,
    reconnectJitter: 100,
    waitOnFirstConnect: false,
  };
  if (opts.name !== undefined) connectOpts.name = opts.name;
  if (opts.user !== undefined) connectOpts.user = opts.user;
  if (opts.pass !== undefined) connectOpts.pass = opts.pass;
  if (opts.token !== undefined) connectOpts.token = opts.token;
  if (authenticators.length > 0) connectOpts.authenticator = authenticators;
  if (opts.tls) connectOpts.tls = { ...opts.tls };

  let nc: NatsConnection;
  try {
    nc = await connect(connectOpts);
  } catch (err) {
    if (err instanceof AuthorizationError || err instanceof UserAuthenticationExpiredError) {
      throw new NatsAuthError(servers, authMethod(opts), { cause: err });
    }
    throw new NatsUnavailableError(servers, undefined, { cause: err });
  }

  const stats: MutableStats = {
    reconnects: 0,
    disconnects: 0,
    errors: 0,
    connected: true,
    server: nc.getServer(),
    lastDisconnectAt: null,
    lastReconnectAt: null,
    lastError: null,
  };
  statsByConnection.set(nc, stats);
  logger.info({ server: stats.server, name: opts.name }, "NATS connected");

  void watchStatus(nc, stats, logger);
  nc.closed().then(
    (err) => {
      stats.connected = false;
      if (err) logger.error({ err, server: stats.server }, "NATS connection closed with an error");
      else logger.info({ server: stats.server }, "NATS connection closed");
    },
    () => {},
  );
  return nc;
}

async function watchStatus(nc: NatsConnection, stats: MutableStats, logger: BusLogger): Promise<void> {
  let reconnectingLogged = false;
  try {
    for await (const s of nc.status()) {
      handleStatus(s);
    }
  } catch (err) {
    logger.warn({ err }, "NATS status watcher stopped");
  }

  function handleStatus(s: Status): void {
    switch (s.type) {
      case "disconnect":
        stats.disconnects++;
        stats.connected = false;
        stats.lastDisconnectAt = new Date();
        reconnectingLogged = false;
        logger.warn({ server: s.server, disconnects: stats.disconnects }, `NATS disconnected from ${s.server}; reconnecting`);
        break;
      case "reconnecting":
        // Emitted before every attempt; one line per outage is enough.
        if (!reconnectingLogged) {
          reconnectingLogged = true;
          logger.info({}, "NATS reconnecting");
        }
        break;
      case "reconnect":
        stats.reconnects++;
        stats.connected = true;
        stats.server = s.server;
        stats.lastReconnectAt = new Date();
        logger.info({ server: s.server, reconnects: stats.reconnects }, `NATS reconnected to ${s.server}`);
        break;
      case "error":
        stats.errors++;
        stats.lastError = s.error.message;
        logger.error({ err: s.error }, `NATS error: ${s.error.message}`);
        break;
      case "ldm":
        logger.warn({ server: s.server }, `NATS server ${s.server} entered lame duck mode; it will shut down soon`);
        break;
      case "staleConnection":
        logger.warn({}, "NATS connection is stale (pings unanswered); forcing a reconnect");
        break;
      case "slowConsumer":
        logger.warn({ subject: s.sub.getSubject(), pending: s.pending }, "NATS slow consumer: messages are piling up");
        break;
      case "update":
        logger.info({ added: s.added, deleted: s.deleted }, "NATS cluster membership changed");
        break;
      case "forceReconnect":
        logger.info({}, "NATS reconnect forced");
        break;
      case "close":
        stats.connected = false;
        break;
      case "ping":
        break;
    }
  }
}

async function loadAuthenticators(opts: ConnectNatsOptions): Promise<Authenticator[]> {
  const out: Authenticator[] = [];
  if (opts.credsFile) {
    const creds = await readSecretFile(opts.credsFile, "creds file (nats.credsFile)");
    out.push(credsAuthenticator(creds));
  }
  if (opts.nkeySeedFile) {
    const raw = await readSecretFile(opts.nkeySeedFile, "nkey seed file (nats.nkeySeedFile)");
    const seed = extractSeed(new TextDecoder().decode(raw));
    if (!seed) throw new Error(`nkey seed file ${opts.nkeySeedFile} does not contain a user seed (a line starting with "SU")`);
    out.push(nkeyAuthenticator(new TextEncoder().encode(seed)));
  }
  return out;
}

async function readSecretFile(path: string, what: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`cannot read NATS ${what} ${path}: ${reason}`, { cause: err });
  }
}

/** The first token that looks like an nkey seed; tolerates comments and blank lines. */
function extractSeed(text: string): string | null {
  for (const line of text.split(/\r?\n/)) {
    const t = line.trim();
    if (/^S[A-Z][A-Z2-7]{50,}$/.test(t)) return t;
  }
  return null;
}

function authMethod(opts: ConnectNatsOptions): string {
  const methods: string[] = [];
  if (opts.credsFile) methods.push("creds");
  if (opts.nkeySeedFile) methods.push("nkey");
  if (opts.token) methods.push("token");
  if (opts.user) methods.push("user/password");
  return methods.length > 0 ? methods.join("+") : "none";
}
