import type { WorkerPackageManifest } from "@rbee/contract";
import { RbeeError } from "@rbee/contract";
import { InvalidPackageError, readPackage } from "./package-file.js";
import { keyFingerprint, sha256Hex, verifyPackageSignature } from "./signing.js";
import type { TarEntry } from "./ustar.js";

/** Which check refused a package. */
export type PackageCheck = "sha256" | "signature" | "trust" | "manifest" | "archive";

/**
 * A package refused on install: 422 `package_verification_failed`, naming the check that failed
 * (`details.check`) and what to do.
 */
export class PackageVerificationError extends RbeeError {
  readonly check: PackageCheck;
  constructor(check: PackageCheck, message: string) {
    super(`${check} check failed: ${message}`, {
      statusCode: 422,
      code: "package_verification_failed",
      details: { check },
    });
    this.check = check;
  }
}

/** A publisher key a hive trusts. */
export interface TrustedKey {
  name: string;
  public_key: string;
}

export interface VerifyPackageInput {
  tarball: Buffer;
  /** What the catalog says: id, version, platform, sha256, the signature and the key it names. */
  id: string;
  version: string;
  platform: string;
  sha256: string;
  signature?: string | undefined;
  publicKey?: string | undefined;
  trusted: readonly TrustedKey[];
  /** The user allowed this package unsigned (or signed by a key not trusted here). */
  allowUnsigned: boolean;
}

export interface VerifiedPackage {
  manifest: WorkerPackageManifest;
  entries: TarEntry[];
  trust: "verified" | "allowed-unsigned";
  /** The trusted publisher who signed it. */
  publisher?: TrustedKey;
}

/**
 * The checks a hive runs before it installs a package, in order: the sha256 of the bytes against
 * the catalog's; the signature of (id, version, platform, sha256) by a key this hive trusts (an
 * unsigned or untrusted package only with `allowUnsigned`; a signature that does not verify never);
 * the archive's format; the manifest against the id and version asked for.
 */
export function verifyPackage(input: VerifyPackageInput): VerifiedPackage {
  const actual = sha256Hex(input.tarball);
  if (actual !== input.sha256) {
    throw new PackageVerificationError(
      "sha256",
      `the package's sha256 is ${actual}, the catalog says ${input.sha256}: the file was altered or damaged; nothing was installed`,
    );
  }
  const what = { id: input.id, version: input.version, platform: input.platform, sha256: actual };
  let trust: VerifiedPackage["trust"] = "allowed-unsigned";
  let publisher: TrustedKey | undefined;
  if (input.signature !== undefined && input.publicKey !== undefined) {
    if (!verifyPackageSignature(input.publicKey, input.signature, what)) {
      throw new PackageVerificationError(
        "signature",
        `the signature of ${input.id}@${input.version} does not match its bytes under key ${keyFingerprint(input.publicKey)}: the package was tampered with or signed for other bytes; nothing was installed`,
      );
    }
    publisher = input.trusted.find((k) => k.public_key.trim() === input.publicKey?.trim());
    if (publisher !== undefined) trust = "verified";
    else if (!input.allowUnsigned) {
      throw new PackageVerificationError(
        "trust",
        `${input.id}@${input.version} is signed by key ${input.publicKey} (fingerprint ${keyFingerprint(input.publicKey)}), which this hive does not trust; trust it with \`rbee catalog trust <name> ${input.publicKey}\` on the hive's machine, or install with --allow-unsigned ${input.id}`,
      );
    }
  } else if (!input.allowUnsigned) {
    throw new PackageVerificationError(
      "signature",
      `${input.id}@${input.version} is not signed; install it only if you trust where it comes from, with --allow-unsigned ${input.id}`,
    );
  }
  let read: ReturnType<typeof readPackage>;
  try {
    read = readPackage(input.tarball);
  } catch (err) {
    if (err instanceof InvalidPackageError) throw new PackageVerificationError("archive", err.message);
    throw err;
  }
  if (read.manifest.id !== input.id || read.manifest.version !== input.version) {
    throw new PackageVerificationError(
      "manifest",
      `the package says it is ${read.manifest.id}@${read.manifest.version}, the catalog says ${input.id}@${input.version}`,
    );
  }
  return { manifest: read.manifest, entries: read.entries, trust, ...(publisher ? { publisher } : {}) };
}
