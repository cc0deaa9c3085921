/** Port helpers for tests. Everything binds 127.0.0.1; nothing here ever uses 4222. */
import { createServer, type Server } from "node:net";

/** A port that was free a moment ago on 127.0.0.1 (listen on 0, read the port, close). */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen({ host, port: 0, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

export interface HeldPort {
  port: number;
  close(): Promise<void>;
}

/** Occupies a free port on 127.0.0.1 (a plain TCP listener) until close(). */
export function holdPort(host = "127.0.0.1"): Promise<HeldPort> {
  return new Promise((resolve, reject) => {
    const srv: Server = createServer((sock) => sock.destroy());
    srv.once("error", reject);
    srv.listen({ host, port: 0, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      resolve({ port, close: () => new Promise<void>((r) => srv.close(() => r())) });
    });
  });
}
