/**
 * Typed reads of environment variables, for the one config module each package has.
 * A value that is set but malformed is an error that names the variable, not a silent default.
 */
export function envString(name: string, fallback: string): string;
export function envString(name: string): string | undefined;
export function envString(name: string, fallback?: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v === "" ? fallback : v;
}

export function envInt(name: string, fallback: number, min = Number.MIN_SAFE_INTEGER): number {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new Error(
      `environment variable ${name}=${JSON.stringify(v)} must be a whole number${min > Number.MIN_SAFE_INTEGER ? ` ≥ ${min}` : ""}`,
    );
  }
  return n;
}

export function envBool(name: string, fallback: boolean): boolean {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  throw new Error(`environment variable ${name}=${JSON.stringify(v)} must be true or false`);
}
