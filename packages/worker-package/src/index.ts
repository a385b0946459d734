export {
  InvalidPackageError,
  MANIFEST_FILE,
  packDirectory,
  parseManifest,
  readPackage,
} from "./package-file.js";
export { compareVersions, majorOf, newestWithinMajor } from "./semver.js";
export {
  decodePublicKey,
  generatePublisherKey,
  keyFingerprint,
  type PublisherKeyPair,
  publicKeyOf,
  sha256Hex,
  signedStatement,
  signPackage,
  verifyPackageSignature,
} from "./signing.js";
export { addTrustedKey, readTrustedKeys, TRUSTED_KEYS_FILE, trustedKeysPath } from "./trusted-keys.js";
export { isSafeMemberPath, readTar, type TarEntry, TarFormatError, writeTar } from "./ustar.js";
export {
  type PackageCheck,
  PackageVerificationError,
  type TrustedKey,
  type VerifiedPackage,
  type VerifyPackageInput,
  verifyPackage,
} from "./verify-package.js";
