import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, isAbsolute, join } from "node:path";
import type { Readable } from "node:stream";
import { CliError, EXIT } from "./exit-codes.js";
import type { ResolvedHive } from "./hives-conf.js";
import { splitConfigLine } from "./hives-conf.js";

/**
 * Commands on another machine through the system `ssh` (OpenSSH), so that the user's keys,
 * agent, known_hosts and ~/.ssh/config apply as they do in a terminal. ssh runs in batch mode
 * (no password or host-key prompts: rbee's stdin is its data), and its refusals become errors
 * that say what to do.
 */
export type SshTarget = Pick<ResolvedHive, "alias" | "hostName" | "user" | "sshPort" | "identityFile" | "line">;

export interface SshEnv {
  /** The ssh binary. Default `ssh` on the PATH (env RBEE_SSH). */
  ssh: string;
  /** An ssh config file used instead of ~/.ssh/config (env RBEE_SSH_CONFIG; ssh -F). */
  configFile: string | undefined;
}

export function sshEnv(env: NodeJS.ProcessEnv = process.env): SshEnv {
  return { ssh: env.RBEE_SSH || "ssh", configFile: env.RBEE_SSH_CONFIG || undefined };
}

/** `user@host:port` as a person reads it. */
export function describeTarget(t: SshTarget): string {
  return `${t.user ? `${t.user}@` : ""}${t.hostName}${t.sshPort ? `:${t.sshPort}` : ""}`;
}

/** `~/x` → `$HOME/x`, for paths ssh is given on its command line. */
function expandHome(path: string): string {
  return path === "~" || path.startsWith("~/") ? join(homedir(), path.slice(2)) : path;
}

/**
 * The ssh arguments for a target: the alias is the destination (so that a `Host` entry of the
 * user's ssh config for it applies: ProxyJump, options), with hives.conf's values given first,
 * which makes them win.
 */
export function sshArgs(t: SshTarget, env: SshEnv): string[] {
  const args = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-o", "ServerAliveInterval=15"];
  if (env.configFile) args.push("-F", env.configFile);
  args.push("-o", `HostName=${t.hostName}`);
  if (t.user) args.push("-l", t.user);
  if (t.sshPort) args.push("-p", String(t.sshPort));
  if (t.identityFile) args.push("-i", expandHome(t.identityFile), "-o", "IdentitiesOnly=yes");
  return args;
}

/** A string as one POSIX shell word. */
export function shellQuote(value: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}

export interface SshResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Bytes for the remote command's stdin (a secret, a tarball); none by default. */
  input?: string | Readable;
  timeoutMs?: number;
  /** Called with each chunk of the remote stderr, for narration. */
  onStderr?: (text: string) => void;
}

/**
 * Runs a POSIX shell script on the target (as `sh -c '<script>'`, whatever the login shell) and
 * returns its exit code and output. ssh's own failures (exit 255: unreachable, refused login,
 * unknown host key) are thrown as errors that name the machine and the fix.
 */
export async function runRemote(t: SshTarget, script: string, o: RunOptions = {}, env = sshEnv()): Promise<SshResult> {
  const args = [...sshArgs(t, env), "--", t.alias, `sh -c ${shellQuote(script)}`];
  const child = spawn(env.ssh, args, { stdio: ["pipe", "pipe", "pipe"] });
  const output = collectOutput(child, o.onStderr);
  child.stdin.on("error", () => {}); // the far side may end before reading all of it; its exit code says why
  if (typeof o.input === "string") child.stdin.end(o.input);
  else if (o.input) {
    // a source that fails (tar could not read a file) must not leave the far side waiting for more
    o.input.once("error", () => child.stdin.destroy());
    o.input.pipe(child.stdin);
  } else child.stdin.end();
  let timer: NodeJS.Timeout | undefined;
  const result = await new Promise<{ code: number | null; spawnError?: NodeJS.ErrnoException }>((resolve) => {
    child.once("error", (err: NodeJS.ErrnoException) => resolve({ code: null, spawnError: err }));
    child.once("close", (code) => resolve({ code }));
    if (o.timeoutMs) timer = setTimeout(() => child.kill("SIGTERM"), o.timeoutMs);
  });
  clearTimeout(timer);
  if (result.spawnError) {
    if (result.spawnError.code === "ENOENT") {
      throw new CliError(
        `the ssh command (${env.ssh}) is not installed on this machine; install the OpenSSH client (apt install openssh-client, or your system's package), or point RBEE_SSH at it`,
      );
    }
    throw new CliError(`could not run ${env.ssh}: ${result.spawnError.message}`);
  }
  if (result.code === null) {
    throw new CliError(
      `ssh to ${t.alias} (${describeTarget(t)}) did not finish within ${Math.round((o.timeoutMs ?? 0) / 1000)} s and was stopped`,
    );
  }
  if (result.code === 255) throw sshFailure(t, output.stderr);
  return { code: result.code, stdout: output.stdout, stderr: output.stderr };
}

/** What a child process writes, gathered as text (stderr also handed to `onStderr` as it comes). */
function collectOutput(
  child: { stdout: NodeJS.ReadableStream; stderr: NodeJS.ReadableStream },
  onStderr?: (text: string) => void,
): { stdout: string; stderr: string } {
  const out = { stdout: "", stderr: "" };
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    out.stdout += d;
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    out.stderr += d;
    onStderr?.(d);
  });
  return out;
}

/** The error for ssh's own failure (exit 255), from what ssh printed. */
export function sshFailure(t: SshTarget, stderr: string): CliError {
  const said = stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("Warning: Permanently added"));
  const last = said[said.length - 1] ?? "ssh exited with code 255";
  const where = `${t.alias} (${describeTarget(t)})`;
  const login = `ssh ${t.sshPort ? `-p ${t.sshPort} ` : ""}${t.user ? `${t.user}@` : ""}${t.hostName}`;
  const entry = `Host ${t.alias} in hives.conf (line ${t.line})`;
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No \S+ host key is known/i.test(stderr)) {
    return new CliError(
      `cannot log in to ${where}: ssh does not know its host key (or it changed): ${last}. Connect once by hand to check and accept it (\`${login}\`), then run this again`,
      EXIT.unavailable,
    );
  }
  if (/Permission denied|Too many authentication failures|no mutual signature/i.test(stderr)) {
    return new CliError(
      `cannot log in to ${where}: no key was accepted (${last}). rbee logs in without a password: install your key there (\`ssh-copy-id ${t.sshPort ? `-p ${t.sshPort} ` : ""}${t.user ? `${t.user}@` : ""}${t.hostName}\`), or set IdentityFile (and User) under ${entry}`,
      EXIT.unavailable,
    );
  }
  if (/Could not resolve hostname|Name or service not known|nodename nor servname/i.test(stderr)) {
    return new CliError(
      `cannot reach ${where}: the host name does not resolve (${last}); set HostName to its address under ${entry}`,
      EXIT.unavailable,
    );
  }
  if (
    /Connection refused|timed out|No route to host|Network is unreachable|Connection reset|Connection closed/i.test(
      stderr,
    )
  ) {
    return new CliError(
      `cannot reach ${where} over ssh: ${last}. Is the machine on and its ssh server running, and are HostName and Port under ${entry} right?`,
      EXIT.unavailable,
    );
  }
  return new CliError(`ssh to ${where} failed: ${last}`, EXIT.unavailable);
}

/** What `ssh -G <alias>` resolves for a host from the ssh config (hostname, user, port, identity files). */
export interface SshConfigHost {
  hostName: string;
  user: string | undefined;
  port: number | undefined;
  identityFile: string | undefined;
}

/**
 * The literal host names (no wildcards, no negations) that `Host` lines of an ssh config name,
 * following its `Include` lines (relative ones under ~/.ssh; `*` in their last part).
 */
export function sshConfigAliases(file: string, depth = 0): string[] {
  let content: string;
  try {
    content = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const raw of content.split(/\r?\n/)) {
    let line: ReturnType<typeof splitConfigLine>;
    try {
      line = splitConfigLine(raw);
    } catch {
      continue; // ssh reports its own file's errors; here we only look for Host names
    }
    if (!line) continue;
    const keyword = line.keyword.toLowerCase();
    if (keyword === "host") out.push(...line.args.filter((a) => !/[*?!]/.test(a)));
    if (keyword === "include" && depth < 8) {
      for (const pattern of line.args) {
        for (const included of expandInclude(pattern, dirname(file)))
          out.push(...sshConfigAliases(included, depth + 1));
      }
    }
  }
  return [...new Set(out)];
}

function expandInclude(pattern: string, base: string): string[] {
  const path = pattern.startsWith("~") ? expandHome(pattern) : isAbsolute(pattern) ? pattern : join(base, pattern);
  const name = basename(path);
  if (!name.includes("*")) return existsSync(path) ? [path] : [];
  const re = new RegExp(
    `^${name
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replaceAll("*", ".*")
      .replaceAll("?", ".")}$`,
  );
  try {
    return readdirSync(dirname(path))
      .filter((f) => re.test(f))
      .sort()
      .map((f) => join(dirname(path), f));
  } catch {
    return [];
  }
}

/** The ssh config file rbee reads Host entries from: RBEE_SSH_CONFIG, else ~/.ssh/config. */
export function sshConfigFile(env = sshEnv()): string {
  return env.configFile ?? join(homedir(), ".ssh", "config");
}

/**
 * A Host entry of the user's ssh config, as ssh itself resolves it (`ssh -G`: Include, Match and
 * wildcards applied). An alias that no `Host` line names is an error listing those that exist.
 */
export async function readSshConfigHost(alias: string, env = sshEnv()): Promise<SshConfigHost> {
  const file = sshConfigFile(env);
  const aliases = sshConfigAliases(file);
  if (!aliases.includes(alias)) {
    const have =
      aliases.length > 0
        ? `it names ${aliases.join(", ")}`
        : existsSync(file)
          ? "it names no hosts"
          : "it does not exist";
    throw new CliError(
      `no 'Host ${alias}' in ${file} (${have}); add the host there, or give its address: rbee hive add ${alias} --host <address>`,
      EXIT.notFound,
    );
  }
  const args = [...(env.configFile ? ["-F", env.configFile] : []), "-G", "--", alias];
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(env.ssh, args, { stdio: ["ignore", "pipe", "pipe"] });
    const output = collectOutput(child);
    child.once("error", (err) => reject(new CliError(`could not run ${env.ssh} -G: ${err.message}`)));
    child.once("close", (code) =>
      code === 0
        ? resolve(output.stdout)
        : reject(new CliError(`ssh could not read its config for ${alias}: ${output.stderr.trim() || `exit ${code}`}`)),
    );
  });
  const values = new Map<string, string[]>();
  for (const line of out.split("\n")) {
    const m = /^(\S+)\s+(.*)$/.exec(line.trim());
    if (m) values.set(m[1] ?? "", [...(values.get(m[1] ?? "") ?? []), m[2] ?? ""]);
  }
  const port = Number(values.get("port")?.[0]);
  return {
    hostName: values.get("hostname")?.[0] ?? alias,
    user: values.get("user")?.[0],
    port: Number.isInteger(port) && port > 0 ? port : undefined,
    identityFile: explicitIdentityFile(file, alias),
  };
}

/**
 * The IdentityFile the user wrote for this alias, if any (`ssh -G` also lists ssh's defaults,
 * which must not be pinned into hives.conf).
 */
function explicitIdentityFile(file: string, alias: string): string | undefined {
  let content: string;
  try {
    content = readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  let inHost = false;
  for (const raw of content.split(/\r?\n/)) {
    let line: ReturnType<typeof splitConfigLine>;
    try {
      line = splitConfigLine(raw);
    } catch {
      continue;
    }
    if (!line) continue;
    const keyword = line.keyword.toLowerCase();
    if (keyword === "host" || keyword === "match") inHost = keyword === "host" && line.args.includes(alias);
    else if (inHost && keyword === "identityfile") return line.args[0];
  }
  return undefined;
}
