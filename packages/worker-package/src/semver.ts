/** A version's numbers and pre-release, for ordering (semver's precedence, build metadata not used). */
function parts(v: string): { nums: number[]; pre: string | undefined } {
  const [main = "", pre] = v.split("-", 2);
  return { nums: main.split(".").map((n) => Number(n)), pre };
}

/** Negative when a < b, positive when a > b, 0 when equal, by semantic-version precedence. */
export function compareVersions(a: string, b: string): number {
  const x = parts(a);
  const y = parts(b);
  for (let i = 0; i < 3; i++) {
    const d = (x.nums[i] ?? 0) - (y.nums[i] ?? 0);
    if (d !== 0) return d;
  }
  if (x.pre === y.pre) return 0;
  if (x.pre === undefined) return 1;
  if (y.pre === undefined) return -1;
  return x.pre < y.pre ? -1 : 1;
}

/** The major version number. */
export function majorOf(v: string): number {
  return parts(v).nums[0] ?? 0;
}

/** The newest of `versions` with the same major as `current` and newer than it (pre-releases left out). */
export function newestWithinMajor(current: string, versions: readonly string[]): string | undefined {
  return versions
    .filter((v) => !v.includes("-") && majorOf(v) === majorOf(current) && compareVersions(v, current) > 0)
    .sort(compareVersions)
    .at(-1);
}
