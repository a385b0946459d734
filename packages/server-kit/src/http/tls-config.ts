import { readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { RbeeError } from "@rbee/contract/light";

/**
 * TLS for rbee's daemons and clients. A daemon serves HTTPS when it is given a certificate and its
 * key (--tls-cert/--tls-key, or RBEE_TLS_CERT/RBEE_TLS_KEY); every rbee client trusts the default
 * CAs plus the one in RBEE_TLS_CA (a PEM file), read when a request is made, so that a private CA
 * works without NODE_EXTRA_CA_CERTS (which Node reads only at start).
 *
 * This module is what a client needs without node:tls, node:https and node:crypto (configuration,
 * errors, the extra CA); `tls.ts` adds the server's certificate checks and the https agents, and a
 * client imports it only for an https:// URL.
 */
export const TLS_CERT_ENV = "RBEE_TLS_CERT";
export const TLS_KEY_ENV = "RBEE_TLS_KEY";
export const TLS_CA_ENV = "RBEE_TLS_CA";

/** A certificate or key that cannot be used: the daemon does not start. */
export class TlsConfigError extends RbeeError {
  constructor(message: string) {
    super(message, { statusCode: 400, code: "tls_config" });
  }
}

/** A peer whose certificate this client does not accept (unknown CA, wrong name, expired). */
export class TlsTrustError extends RbeeError {
  constructor(
    readonly url: string,
    message: string,
  ) {
    super(message, { statusCode: 502, code: "tls_untrusted", details: { url } });
  }
}

/** Where a daemon's certificate and private key are (PEM files). */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/**
 * The certificate and key files from the flags, else from RBEE_TLS_CERT/RBEE_TLS_KEY; undefined when
 * neither is given (plain HTTP). One without the other is an error. Paths are made absolute.
 */
export function tlsFilesFrom(
  given: { tlsCert?: string; tlsKey?: string } = {},
  env: NodeJS.ProcessEnv = process.env,
): TlsFiles | undefined {
  const certFile = given.tlsCert || env[TLS_CERT_ENV] || undefined;
  const keyFile = given.tlsKey || env[TLS_KEY_ENV] || undefined;
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (keyFile === undefined) {
    throw new TlsConfigError(
      `a TLS certificate (${certFile}) was given without its private key: HTTPS needs both; give --tls-key <key.pem> (or ${TLS_KEY_ENV})`,
    );
  }
  if (certFile === undefined) {
    throw new TlsConfigError(
      `a TLS private key (${keyFile}) was given without its certificate: HTTPS needs both; give --tls-cert <cert.pem> (or ${TLS_CERT_ENV})`,
    );
  }
  // absolute, so that a daemon started in another directory (rbee starts them in ~) finds them
  return { certFile: resolve(certFile), keyFile: resolve(keyFile) };
}

export function readPem(file: string, what: string, flag: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === "ENOENT"
        ? "no such file"
        : e.code === "EACCES"
          ? "permission denied (the daemon's user must be able to read it)"
          : e.code === "EISDIR"
            ? "it is a directory"
            : e.message;
    throw new TlsConfigError(`cannot read the TLS ${what} ${file}: ${why}; check ${flag}`);
  }
}

/** Whether a key file can be read by others than its owner (worth a warning, not a refusal). */
export function keyFileIsShared(keyFile: string): boolean {
  try {
    return (statSync(keyFile).mode & 0o077) !== 0;
  } catch {
    return false;
  }
}

/** The environment that makes a child process (a worker) serve with the same certificate. */
export function tlsEnv(files: TlsFiles | undefined): Record<string, string> {
  return files ? { [TLS_CERT_ENV]: files.certFile, [TLS_KEY_ENV]: files.keyFile } : {};
}

let cachedCa: { file: string; pem: string } | undefined;

/**
 * The extra CA clients trust (the PEM file RBEE_TLS_CA names), undefined when unset. Read once per
 * file name.
 * @throws TlsConfigError when the file cannot be read or holds no certificate.
 */
export function extraCa(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const file = env[TLS_CA_ENV];
  if (!file) return undefined;
  if (cachedCa?.file === file) return cachedCa.pem;
  const pem = readPem(file, "CA certificate", TLS_CA_ENV).toString("utf8");
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new TlsConfigError(`${TLS_CA_ENV}=${file} is not a PEM certificate (no '-----BEGIN CERTIFICATE-----' line)`);
  }
  cachedCa = { file, pem };
  return pem;
}

/** OpenSSL's reasons for not trusting a certificate chain, as Node names them in `err.code`. */
const UNTRUSTED = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
  "INVALID_CA",
  "INVALID_PURPOSE",
]);

/**
 * A TLS failure of a client request, as an error a person can act on; undefined when `err` is not
 * about TLS. `what` names the peer ("the queen", "hive gpu-box").
 */
export function describeTlsFailure(
  err: NodeJS.ErrnoException & { cert?: { subjectaltname?: string } },
  url: string,
  what: string,
): RbeeError | undefined {
  const code = err.code ?? "";
  const https = url.startsWith("https:");
  if (UNTRUSTED.has(code)) {
    const ca = process.env[TLS_CA_ENV];
    const fix = ca
      ? `${TLS_CA_ENV}=${ca} does not hold the CA that signed it; point ${TLS_CA_ENV} at that CA's certificate`
      : `if it was signed by your own CA, set ${TLS_CA_ENV} to that CA's certificate (a PEM file)`;
    return new TlsTrustError(
      url,
      `${what} at ${url} presented a certificate this client does not trust (${err.message}): ${fix}`,
    );
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    const listed = err.cert?.subjectaltname ?? "none";
    return new TlsTrustError(
      url,
      `${what} at ${url} presented a certificate for other names (it lists ${listed}): use a name the certificate lists, or make a certificate whose subjectAltName includes ${new URL(url).hostname}`,
    );
  }
  if (code === "CERT_HAS_EXPIRED" || code === "CERT_NOT_YET_VALID") {
    return new TlsTrustError(
      url,
      `${what} at ${url} presented a certificate that is ${code === "CERT_HAS_EXPIRED" ? "expired" : "not valid yet"}: renew it (or check the clocks)`,
    );
  }
  if (
    https &&
    (code === "EPROTO" || code.startsWith("ERR_SSL_")) &&
    /wrong version number|packet length too long/i.test(err.message)
  ) {
    return new RbeeError(
      `${what} at ${url} does not speak TLS: use an http:// URL, or start it with --tls-cert and --tls-key`,
      { statusCode: 502, code: "tls_mismatch", details: { url } },
    );
  }
  return undefined;
}
