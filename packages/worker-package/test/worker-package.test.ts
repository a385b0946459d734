import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  generatePublisherKey,
  MANIFEST_FILE,
  PackageVerificationError,
  packDirectory,
  readTar,
  sha256Hex,
  signPackage,
  verifyPackage,
  writeTar,
} from "@rbee/worker-package";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

const manifest = {
  id: "parrot",
  version: "1.0.0",
  description: "echoes",
  category: "llm",
  capabilities: ["text-generation", "chat"],
  device_kinds: ["cpu"],
  platforms: ["any"],
  entry: "worker.mjs",
};

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "rbee-pkg-"));
  await mkdir(join(dir, "src", "deep"), { recursive: true });
  await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(manifest));
  await writeFile(join(dir, "worker.mjs"), "console.log('hi')\n");
  await writeFile(join(dir, "src", "deep", `${"x".repeat(90)}.txt`), Buffer.alloc(1300, 7));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function signed(tarball: Buffer, key = generatePublisherKey()) {
  const sha256 = sha256Hex(tarball);
  const signature = signPackage(key.privateKeyPem, { id: "parrot", version: "1.0.0", platform: "any", sha256 });
  return { sha256, signature, key };
}

function failedCheck(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof PackageVerificationError) return `${err.check}: ${err.message}`;
    throw err;
  }
  return "passed";
}

describe("worker package tarballs", () => {
  it("packs a directory that GNU tar lists and extracts byte for byte, and reads GNU tar's ustar back", async () => {
    const { tarball } = await packDirectory(dir);
    expect((await packDirectory(dir)).tarball.equals(tarball)).toBe(true);
    const file = join(dir, "..", `${Date.now()}-pkg.tar`);
    await writeFile(file, tarball);
    const listed = execFileSync("tar", ["-tf", file], { encoding: "utf8" }).trim().split("\n").sort();
    expect(listed).toContain(`src/deep/${"x".repeat(90)}.txt`);
    expect(listed).toContain("worker.mjs");
    const out = await mkdtemp(join(tmpdir(), "rbee-pkg-out-"));
    execFileSync("tar", ["-xf", file, "-C", out]);
    expect(await readFile(join(out, "src", "deep", `${"x".repeat(90)}.txt`))).toEqual(Buffer.alloc(1300, 7));
    const gnu = execFileSync("tar", ["--format=ustar", "-cf", "-", "-C", dir, "."]);
    const read = readTar(gnu);
    expect(read.find((e) => e.path === "worker.mjs")?.data?.toString()).toBe("console.log('hi')\n");
    await rm(out, { recursive: true, force: true });
    await rm(file, { force: true });
  });

  it("refuses members that would leave the install directory, links, and truncated archives", () => {
    expect(() => readTar(writeTar([{ path: "../evil", data: Buffer.from("x"), mode: 0o644 }]))).toThrow(/unsafe path/);
    const link = writeTar([{ path: "a", data: Buffer.from("x"), mode: 0o644 }]);
    link.write("2", 156, "ascii"); // a symlink's type flag; the header checksum no longer matches either
    expect(() => readTar(link)).toThrow(/checksum|regular file/);
    const whole = writeTar([{ path: "a", data: Buffer.alloc(2000), mode: 0o644 }]);
    expect(() => readTar(whole.subarray(0, 1024))).toThrow(/truncated|cut short/);
  });
});

describe("verifying a package before it is installed", () => {
  it("passes a package signed by a trusted key, and names the check that refuses each bad one", async () => {
    const { tarball } = await packDirectory(dir);
    const { sha256, signature, key } = signed(tarball);
    const base = {
      tarball,
      id: "parrot",
      version: "1.0.0",
      platform: "any",
      sha256,
      signature,
      publicKey: key.publicKey,
      trusted: [{ name: "me", public_key: key.publicKey }],
      allowUnsigned: false,
    };
    const ok = verifyPackage(base);
    expect(ok.trust).toBe("verified");
    expect(ok.manifest.entry).toBe("worker.mjs");

    const tampered = Buffer.from(tarball);
    tampered.writeUInt8((tampered.at(-1200) ?? 0) ^ 1, tampered.length - 1200);
    expect(failedCheck(() => verifyPackage({ ...base, tarball: tampered }))).toMatch(/^sha256: sha256 check failed/);
    // a catalog that also changed the sha256 still cannot forge the signature
    expect(failedCheck(() => verifyPackage({ ...base, tarball: tampered, sha256: sha256Hex(tampered) }))).toMatch(
      /^signature: .*does not match its bytes/,
    );
    const other = generatePublisherKey();
    expect(failedCheck(() => verifyPackage({ ...base, publicKey: other.publicKey }))).toMatch(/^signature:/);
    const byOther = signed(tarball, other);
    expect(
      failedCheck(() => verifyPackage({ ...base, signature: byOther.signature, publicKey: other.publicKey })),
    ).toMatch(/^trust: .*does not trust/);
    expect(
      verifyPackage({ ...base, signature: byOther.signature, publicKey: other.publicKey, allowUnsigned: true }).trust,
    ).toBe("allowed-unsigned");
    expect(failedCheck(() => verifyPackage({ ...base, signature: undefined }))).toMatch(/^signature: .*not signed/);
    expect(verifyPackage({ ...base, signature: undefined, allowUnsigned: true }).trust).toBe("allowed-unsigned");
    expect(failedCheck(() => verifyPackage({ ...base, version: "1.0.1" }))).toMatch(/^signature:/);
  });
});
