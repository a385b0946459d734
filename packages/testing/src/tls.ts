import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A throw-away certificate authority and a server certificate it signed, as PEM files. */
export interface TestCertificates {
  dir: string;
  /** The CA's certificate: what clients trust (RBEE_TLS_CA). */
  caFile: string;
  /** The server certificate (for `names`) and its unencrypted key: what daemons serve. */
  certFile: string;
  keyFile: string;
  /** A self-signed certificate of another CA, which nothing trusts. */
  strangerCaFile: string;
  ca: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

/**
 * Makes a CA and a server certificate for `names` (default 127.0.0.1 and localhost) with the real
 * `openssl` command, valid for two days: the same commands docs/security.md shows.
 */
export function makeTestCertificates(names = ["IP:127.0.0.1", "DNS:localhost"]): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), "rbee-tls-"));
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(
    [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "2",
      "-subj",
      "/CN=rbee test CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  openssl(["req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=rbee test server"], dir);
  writeFileSync(
    join(dir, "server.ext"),
    `subjectAltName=${names.join(",")}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`,
  );
  openssl(
    [
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "server.pem",
      "-days",
      "2",
      "-extfile",
      "server.ext",
    ],
    dir,
  );
  openssl(
    ["req", "-x509", ...ec, "-keyout", "stranger.key", "-out", "stranger.pem", "-days", "2", "-subj", "/CN=stranger"],
    dir,
  );
  const caFile = join(dir, "ca.pem");
  return {
    dir,
    caFile,
    certFile: join(dir, "server.pem"),
    keyFile: join(dir, "server.key"),
    strangerCaFile: join(dir, "stranger.pem"),
    ca: readFileSync(caFile, "utf8"),
  };
}
