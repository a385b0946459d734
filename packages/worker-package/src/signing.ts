import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";

/** The DER prefix of an ed25519 SubjectPublicKeyInfo; the 32 key bytes follow it. */
const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

/** A publisher's key pair: the private key as PKCS#8 PEM, the public key as `ed25519:<base64>`. */
export interface PublisherKeyPair {
  privateKeyPem: string;
  publicKey: string;
}

/** A new ed25519 key pair for signing packages. */
export function generatePublisherKey(): PublisherKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKey: encodePublicKey(publicKey),
  };
}

export function encodePublicKey(key: KeyObject): string {
  const der = key.export({ type: "spki", format: "der" });
  return `ed25519:${der.subarray(SPKI_PREFIX.length).toString("base64")}`;
}

/** The public key of `ed25519:<base64>`; throws a plain Error saying what is wrong. */
export function decodePublicKey(text: string): KeyObject {
  const m = /^ed25519:([A-Za-z0-9+/]{43}=)$/.exec(text.trim());
  if (m === null) throw new Error(`not an ed25519 public key (want ed25519:<base64 of 32 bytes>): '${text}'`);
  const raw = Buffer.from(m[1] as string, "base64");
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: "der", type: "spki" });
}

/** The public key of a PEM private key. */
export function publicKeyOf(privateKeyPem: string): string {
  return encodePublicKey(createPublicKey(createPrivateKey(privateKeyPem)));
}

/** A short id of a key for messages: the first 16 hex digits of the sha256 of its bytes. */
export function keyFingerprint(publicKey: string): string {
  return createHash("sha256").update(publicKey.trim()).digest("hex").slice(0, 16);
}

/** What a publisher signs: the package's id, version, platform and the sha256 of its tarball. */
export function signedStatement(id: string, version: string, platform: string, sha256: string): Buffer {
  return Buffer.from(`rbee-worker-package/1\n${id}\n${version}\n${platform}\n${sha256}\n`, "utf8");
}

/** The base64 ed25519 signature of a package's statement. */
export function signPackage(
  privateKeyPem: string,
  p: { id: string; version: string; platform: string; sha256: string },
): string {
  return sign(null, signedStatement(p.id, p.version, p.platform, p.sha256), createPrivateKey(privateKeyPem)).toString(
    "base64",
  );
}

/** Whether `signature` is `publicKey`'s signature of the statement. False for a malformed key or signature. */
export function verifyPackageSignature(
  publicKey: string,
  signature: string,
  p: { id: string; version: string; platform: string; sha256: string },
): boolean {
  try {
    return verify(
      null,
      signedStatement(p.id, p.version, p.platform, p.sha256),
      decodePublicKey(publicKey),
      Buffer.from(signature, "base64"),
    );
  } catch {
    return false;
  }
}

export function sha256Hex(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}
