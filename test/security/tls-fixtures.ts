/**
 * A throwaway certificate authority and a server certificate for 127.0.0.1, made with the openssl
 * command (no shell: each step is one argument list). Not a test file.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestPki {
  readonly dir: string;
  /** The CA certificate (PEM): what a client needs in nats.tls.caFile. */
  readonly caFile: string;
  /** The server certificate, signed by the CA, for IP 127.0.0.1 and localhost. */
  readonly certFile: string;
  readonly keyFile: string;
  /** A second CA that signed nothing here: trusting it must not be enough. */
  readonly otherCaFile: string;
  cleanup(): Promise<void>;
}

function openssl(args: readonly string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("openssl", [...args], { cwd, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.once("error", reject);
    child.once("close", (code) => (code === 0 ? resolve() : reject(new Error(`openssl ${args.join(" ")} failed (${code}): ${err}`))));
  });
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

export async function makeTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), "vqd-pki-"));
  const ca = ["-x509", "-days", "2", ...EC];
  await openssl(["req", ...ca, "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=vqd test CA"], dir);
  await openssl(["req", ...ca, "-keyout", "other-ca.key", "-out", "other-ca.pem", "-subj", "/CN=some other CA"], dir);
  await openssl(["req", ...EC, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"], dir);
  await writeFile(
    join(dir, "server.ext"),
    ["basicConstraints=CA:FALSE", "keyUsage=digitalSignature,keyEncipherment", "extendedKeyUsage=serverAuth", "subjectAltName=IP:127.0.0.1,DNS:localhost", ""].join("\n"),
  );
  await openssl(
    ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.pem"],
    dir,
  );
  return {
    dir,
    caFile: join(dir, "ca.pem"),
    certFile: join(dir, "server.pem"),
    keyFile: join(dir, "server.key"),
    otherCaFile: join(dir, "other-ca.pem"),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
