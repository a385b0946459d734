import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { Agent as HttpsAgent } from "node:https";
import { createSecureContext, rootCertificates, type SecureContext } from "node:tls";
import { readPem, TLS_CERT_ENV, TLS_KEY_ENV, TlsConfigError, type TlsFiles } from "./tls-config.js";

/** TLS's heavier half: a daemon's certificate checked with node:crypto, and the https agents (see tls-config.ts). */
export * from "./tls-config.js";

/** A certificate and key, read and checked, ready for https.createServer. */
export interface ServerTls extends TlsFiles {
  cert: Buffer;
  key: Buffer;
  /** The names the certificate is valid for (its subjectAltName), for the log. */
  names: string;
  validTo: string;
}

/**
 * Reads and checks a daemon's certificate and key: both PEM, the key unencrypted and belonging to
 * the certificate, the certificate not expired.
 * @throws TlsConfigError saying which file is wrong and how to fix it.
 */
export function loadServerTls(files: TlsFiles): ServerTls {
  const cert = readPem(files.certFile, "certificate", `--tls-cert (${TLS_CERT_ENV})`);
  const key = readPem(files.keyFile, "private key", `--tls-key (${TLS_KEY_ENV})`);
  if (!cert.includes("-----BEGIN CERTIFICATE-----")) {
    throw new TlsConfigError(
      `${files.certFile} is not a PEM certificate (no '-----BEGIN CERTIFICATE-----' line); give the certificate, not the key or a DER file (openssl x509 -inform der -in cert.der -out cert.pem converts one)`,
    );
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new TlsConfigError(`${files.certFile} holds no readable certificate: ${(err as Error).message}`);
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key.toString("latin1"))) {
    throw new TlsConfigError(
      `${files.keyFile} is not a PEM private key (no '-----BEGIN ... PRIVATE KEY-----' line); give the key the certificate was made for`,
    );
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    const message = (err as Error).message;
    if (/passphrase|encrypted|bad decrypt/i.test(message) || key.includes("ENCRYPTED")) {
      throw new TlsConfigError(
        `${files.keyFile} is encrypted with a passphrase, which a daemon cannot type; store it unencrypted with mode 0600 (openssl pkey -in ${files.keyFile} -out key.pem)`,
      );
    }
    throw new TlsConfigError(`${files.keyFile} holds no readable private key: ${message}`);
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new TlsConfigError(
      `the private key ${files.keyFile} does not belong to the certificate ${files.certFile}; give the key the certificate was made for`,
    );
  }
  if (Date.parse(x509.validTo) < Date.now()) {
    throw new TlsConfigError(
      `the certificate ${files.certFile} expired on ${x509.validTo}; clients will refuse it: make a new one`,
    );
  }
  return {
    ...files,
    cert,
    key,
    names: x509.subjectAltName ?? x509.subject.replace(/\n/g, ", "),
    validTo: x509.validTo,
  };
}

const agents = new Map<string, HttpsAgent>();

/**
 * The keep-alive https agent for a trust set: the default CAs, plus `ca` when given. One secure
 * context per set (not a `ca` option per request, which Node would fold into every pool key).
 */
export function httpsAgentFor(ca: string | undefined): HttpsAgent {
  const id = ca ?? "";
  let agent = agents.get(id);
  if (agent === undefined) {
    const secureContext: SecureContext | undefined =
      ca === undefined ? undefined : createSecureContext({ ca: [...rootCertificates, ...nodeExtraCa(), ca] });
    agent = new HttpsAgent({ keepAlive: true, maxSockets: 256, secureContext });
    agents.set(id, agent);
  }
  return agent;
}

/** The CAs of NODE_EXTRA_CA_CERTS, which an explicit CA list would otherwise drop (Node warns about a bad file itself). */
function nodeExtraCa(): string[] {
  const file = process.env.NODE_EXTRA_CA_CERTS;
  if (!file) return [];
  try {
    return [readFileSync(file, "utf8")];
  } catch {
    return [];
  }
}
