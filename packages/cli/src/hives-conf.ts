import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { DEFAULT_PORTS, SAFE_ID_PATTERN, SAFE_ID_RULE } from "@rbee/contract/light";
import { CliError, EXIT } from "./exit-codes.js";

/**
 * `<config>/hives.conf`: the machines of the cluster, in the style of an SSH config file.
 *
 *     # the gaming PC under the desk
 *     Host gpu-box
 *         HostName 192.168.1.20
 *         User me
 *         HivePort 7835
 *
 * Keywords are case-insensitive and separated from their value by spaces or `=`; values may be
 * double-quoted; `#` starts a comment. A `Host *` entry holds defaults for every other entry.
 * The file is read and written as lines, so that saving it (`rbee hive add|rm`) keeps every
 * comment, blank line and entry the user wrote.
 */
export const HIVES_CONF = "hives.conf";

/** One machine, as written in hives.conf (defaults from `Host *` applied, other defaults not). */
export interface HiveEntry {
  alias: string;
  /** Where ssh connects, and the host name the hive advertises. Default: the alias. */
  hostName?: string;
  /** The ssh login. Default: ssh's own (~/.ssh/config, else the local user name). */
  user?: string;
  /** The ssh port. Default: ssh's own (22). */
  port?: number;
  identityFile?: string;
  /** The port the hive listens on there. Default 7835. */
  hivePort?: number;
  /** The hive's id in the cluster. Default: the alias in lower case. */
  hiveId?: string;
  /** The queen as that machine reaches it. Default: the queen URL of this CLI, when it is reachable from there. */
  queenUrl?: string;
  /** The URL the queen reaches the hive at. Default http://<HostName>:<HivePort>. */
  advertiseUrl?: string;
  /** The address the hive listens on there. Default 127.0.0.1 for a loopback HostName, else 0.0.0.0. */
  hiveListen?: string;
  /** The `node` binary there, when it is not on the PATH of a non-interactive ssh session. */
  nodePath?: string;
  /** Environment for the remote rbee (`SetEnv NAME=value`, repeatable), such as RBEE_DEVICES. */
  setEnv: Record<string, string>;
  /** The line of its `Host` keyword (1-based), for messages. */
  line: number;
}

/** What `rbee hive add` writes. */
export type NewHiveEntry = Omit<HiveEntry, "line" | "setEnv"> & { setEnv?: Record<string, string> };

/** A malformed hives.conf (or ssh config): "<file>:<line>: what is wrong; what to write instead". */
export class HivesConfError extends CliError {
  constructor(
    readonly file: string,
    readonly lineNumber: number,
    detail: string,
  ) {
    super(`${file}:${lineNumber}: ${detail}`, EXIT.failure);
    this.name = "HivesConfError";
  }
}

type Field = Exclude<keyof HiveEntry, "alias" | "line" | "setEnv">;

interface Keyword {
  name: string;
  field: Field | "setEnv";
  parse: (value: string) => string | number;
  example: string;
}

const port = (value: string): number => {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 65535) throw new Error(`expected a port from 1 to 65535, got '${value}'`);
  return n;
};
const text = (value: string): string => value;
const url = (value: string): string => {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new Error(`expected a URL like http://192.168.1.10:7833, got '${value}'`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error(`expected an http:// or https:// URL`);
  return value.replace(/\/+$/, "");
};
const hiveId = (value: string): string => {
  if (!SAFE_ID_PATTERN.test(value)) throw new Error(`'${value}' ${SAFE_ID_RULE}`);
  return value;
};

/** The keywords hives.conf knows, in the order `rbee hive add` writes them. */
const KEYWORDS: readonly Keyword[] = [
  { name: "HostName", field: "hostName", parse: text, example: "HostName 192.168.1.20" },
  { name: "User", field: "user", parse: text, example: "User me" },
  { name: "Port", field: "port", parse: port, example: "Port 22" },
  { name: "IdentityFile", field: "identityFile", parse: text, example: "IdentityFile ~/.ssh/id_ed25519" },
  { name: "HivePort", field: "hivePort", parse: port, example: `HivePort ${DEFAULT_PORTS.hive}` },
  { name: "HiveId", field: "hiveId", parse: hiveId, example: "HiveId gpu-box" },
  { name: "QueenUrl", field: "queenUrl", parse: url, example: "QueenUrl http://192.168.1.10:7833" },
  { name: "AdvertiseUrl", field: "advertiseUrl", parse: url, example: "AdvertiseUrl http://192.168.1.20:7835" },
  { name: "HiveListen", field: "hiveListen", parse: text, example: "HiveListen 0.0.0.0" },
  { name: "NodePath", field: "nodePath", parse: text, example: "NodePath /usr/local/bin/node" },
  { name: "SetEnv", field: "setEnv", parse: text, example: "SetEnv RBEE_DEVICES=cpu" },
];

const BY_NAME = new Map(KEYWORDS.map((k) => [k.name.toLowerCase(), k]));

/** An alias: what `Host` names and `rbee hive <cmd> <alias>` takes. */
const ALIAS = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

export function checkAlias(alias: string): string {
  if (!ALIAS.test(alias)) {
    throw new CliError(
      `'${alias}' is not a usable hive alias: use 1-128 letters, digits, '.', '_' or '-' (like gpu-box)`,
      EXIT.usage,
    );
  }
  return alias;
}

/** A line split into its keyword and its arguments (quotes removed); undefined for blank and comment lines. */
export interface ConfigLine {
  keyword: string;
  args: string[];
}

/**
 * Splits one line the way ssh reads its config: `Keyword value`, `Keyword=value` or
 * `Keyword = value`; arguments separated by spaces, double quotes group one; `#` at the start of
 * a line (or of an argument) starts a comment. Throws an Error saying what is wrong.
 */
export function splitConfigLine(line: string): ConfigLine | undefined {
  const trimmed = line.trim();
  if (trimmed === "" || trimmed.startsWith("#")) return undefined;
  const m = /^([A-Za-z][A-Za-z0-9]*)(?:\s*=\s*|\s+|$)(.*)$/.exec(trimmed);
  if (!m) throw new Error(`cannot read '${trimmed}': expected a keyword and its value, like 'HostName 192.168.1.20'`);
  const keyword = m[1] ?? "";
  const rest = m[2] ?? "";
  const args: string[] = [];
  let i = 0;
  while (i < rest.length) {
    const c = rest.charAt(i);
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "#") break;
    if (c === '"') {
      const end = rest.indexOf('"', i + 1);
      if (end < 0) throw new Error(`the value of ${keyword} opens a quote (") that is never closed`);
      args.push(rest.slice(i + 1, end));
      i = end + 1;
      continue;
    }
    let j = i;
    while (j < rest.length && !/\s/.test(rest.charAt(j))) j++;
    args.push(rest.slice(i, j));
    i = j;
  }
  return { keyword, args };
}

/** A `Host` block as it lies in the file: its lines, for rewriting. */
interface Block {
  patterns: string[];
  /** 0-based index of the `Host` line. */
  start: number;
  /** 0-based index of its last keyword line (comments and blank lines after it are not its own). */
  end: number;
  values: Partial<Pick<HiveEntry, Field>>;
  setEnv: Record<string, string>;
}

/**
 * hives.conf in memory: its lines as the user wrote them, and the entries read from them.
 * {@link read} throws a {@link HivesConfError} naming the file and line of anything malformed.
 */
export class HivesConf {
  #lines: string[];
  #blocks: Block[] = [];
  readonly #eol: string;

  private constructor(
    readonly file: string,
    content: string,
  ) {
    this.#eol = content.includes("\r\n") ? "\r\n" : "\n";
    this.#lines = content === "" ? [] : content.replace(/\r?\n$/, "").split(/\r?\n/);
    this.#parse();
  }

  /** The file in `configDir`. */
  static path(configDir: string): string {
    return join(configDir, HIVES_CONF);
  }

  /** Reads the file; a missing file is an empty one. */
  static read(file: string): HivesConf {
    let content = "";
    try {
      content = readFileSync(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
        throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
      }
    }
    return new HivesConf(file, content);
  }

  /** Parses text as if it were the file (for tests and previews). */
  static parse(file: string, content: string): HivesConf {
    return new HivesConf(file, content);
  }

  /** The text the file holds (or will hold once saved). */
  get text(): string {
    return this.#lines.length === 0 ? "" : `${this.#lines.join(this.#eol)}${this.#eol}`;
  }

  /** Every entry but `Host *`, in file order, with the `Host *` defaults applied. */
  entries(): HiveEntry[] {
    const defaults = this.#blocks.find((b) => b.patterns[0] === "*");
    return this.#blocks
      .filter((b) => b.patterns[0] !== "*")
      .map((b) => ({
        alias: b.patterns[0] ?? "",
        ...defaults?.values,
        ...b.values,
        setEnv: { ...defaults?.setEnv, ...b.setEnv },
        line: b.start + 1,
      }));
  }

  get(alias: string): HiveEntry | undefined {
    return this.entries().find((e) => e.alias === alias);
  }

  /** The entry, or an error listing the aliases there are and how to add one (exit 4). */
  require(alias: string): HiveEntry {
    const entry = this.get(alias);
    if (entry) return entry;
    const known = this.entries().map((e) => e.alias);
    const have = known.length > 0 ? `it has ${known.join(", ")}` : "it has no hives yet";
    throw new CliError(
      `no hive '${alias}' in ${this.file} (${have}); add it with \`rbee hive add ${alias} --host <address>\``,
      EXIT.notFound,
    );
  }

  /** Appends an entry (after a blank line), leaving everything else as it was. */
  add(entry: NewHiveEntry): void {
    checkAlias(entry.alias);
    const existing = this.#blocks.find((b) => b.patterns.includes(entry.alias));
    if (existing) {
      throw new CliError(
        `'${entry.alias}' is already in ${this.file} (line ${existing.start + 1}); edit it there, or remove it first with \`rbee hive rm ${entry.alias}\``,
        EXIT.usage,
      );
    }
    const lines = [`Host ${entry.alias}`];
    for (const k of KEYWORDS) {
      if (k.field === "setEnv") {
        for (const [name, value] of Object.entries(entry.setEnv ?? {}))
          lines.push(`    SetEnv ${quote(`${name}=${value}`)}`);
        continue;
      }
      const value = entry[k.field];
      if (value === undefined) continue;
      k.parse(String(value)); // refuse what could not be read back
      lines.push(`    ${k.name} ${quote(String(value))}`);
    }
    while (this.#lines.length > 0 && this.#lines[this.#lines.length - 1]?.trim() === "") this.#lines.pop();
    if (this.#lines.length > 0) this.#lines.push("");
    this.#lines.push(...lines);
    this.#parse();
  }

  /**
   * Removes the entry: its `Host` line through its last keyword line, comments among them
   * included. Comments above it and below it stay (they may well describe its neighbours).
   */
  remove(alias: string): boolean {
    const block = this.#blocks.find((b) => b.patterns.length === 1 && b.patterns[0] === alias);
    if (!block) return false;
    this.#lines.splice(block.start, block.end - block.start + 1);
    // where the entry was: one blank line between its neighbours, none at the start or the end of the file
    const blank = (i: number) => this.#lines[i]?.trim() === "";
    const at = block.start;
    while (blank(at) && (at === 0 || blank(at - 1) || at === this.#lines.length - 1)) this.#lines.splice(at, 1);
    if (at === this.#lines.length) while (this.#lines.length > 0 && blank(this.#lines.length - 1)) this.#lines.pop();
    this.#parse();
    return true;
  }

  /** Writes the file atomically (a temporary file renamed over it), keeping its mode. */
  save(): void {
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    let mode = 0o644;
    try {
      mode = statSync(this.file).mode & 0o777;
    } catch {}
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, this.text, { mode });
    chmodSync(tmp, mode);
    renameSync(tmp, this.file);
  }

  #fail(index: number, detail: string): never {
    throw new HivesConfError(this.file, index + 1, detail);
  }

  #parse(): void {
    const blocks: Block[] = [];
    let current: Block | undefined;
    const seen = new Map<string, number>();
    this.#lines.forEach((raw, index) => {
      let line: ConfigLine | undefined;
      try {
        line = splitConfigLine(raw);
      } catch (err) {
        this.#fail(index, (err as Error).message);
      }
      if (!line) return;
      const keyword = line.keyword.toLowerCase();
      if (keyword === "host") {
        current = this.#hostBlock(line, index, seen);
        blocks.push(current);
        return;
      }
      if (keyword === "match" || keyword === "include") {
        this.#fail(index, `${line.keyword} is not supported in hives.conf; write one 'Host <alias>' entry per machine`);
      }
      const k = BY_NAME.get(keyword);
      if (!k) {
        this.#fail(
          index,
          `unknown keyword '${line.keyword}'; hives.conf knows Host, ${KEYWORDS.map((x) => x.name).join(", ")}`,
        );
      }
      if (!current) {
        this.#fail(index, `${k.name} comes before any 'Host <alias>' line; start the entry with 'Host <alias>'`);
      }
      if (line.args.length !== 1) {
        this.#fail(
          index,
          line.args.length === 0
            ? `${k.name} has no value; write it like '${k.example}'`
            : `${k.name} takes one value, got ${line.args.length} (quote a value with spaces in it: ${k.name} "a b")`,
        );
      }
      const value = line.args[0] ?? "";
      let parsed: string | number;
      try {
        parsed = k.parse(value);
      } catch (err) {
        this.#fail(index, `${k.name}: ${(err as Error).message}`);
      }
      current.end = index;
      if (k.field === "setEnv") {
        const eq = value.indexOf("=");
        if (eq <= 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(value.slice(0, eq))) {
          this.#fail(index, `SetEnv takes NAME=value, like '${k.example}'; got '${value}'`);
        }
        current.setEnv[value.slice(0, eq)] = value.slice(eq + 1);
        return;
      }
      if (current.values[k.field] !== undefined) {
        this.#fail(index, `${k.name} is given twice for Host ${current.patterns.join(" ")}; keep one`);
      }
      (current.values as Record<string, string | number>)[k.field] = parsed;
    });
    this.#blocks = blocks;
  }

  #hostBlock(line: ConfigLine, index: number, seen: Map<string, number>): Block {
    if (line.args.length === 0) this.#fail(index, "Host has no alias; write it like 'Host gpu-box'");
    if (line.args.length > 1) {
      this.#fail(index, `Host names one machine in hives.conf, got ${line.args.length} (${line.args.join(" ")})`);
    }
    const alias = line.args[0] ?? "";
    if (alias !== "*" && !ALIAS.test(alias)) {
      this.#fail(
        index,
        `'${alias}' is not a usable alias: use letters, digits, '.', '_' or '-' (patterns other than 'Host *' are not supported)`,
      );
    }
    const before = seen.get(alias);
    if (before !== undefined) this.#fail(index, `Host ${alias} is already defined on line ${before + 1}; keep one`);
    seen.set(alias, index);
    return { patterns: [alias], start: index, end: index, values: {}, setEnv: {} };
  }
}

/** Quotes a value that has spaces or a '#' in it. */
function quote(value: string): string {
  if (value.includes('"')) throw new CliError(`a value in hives.conf cannot contain '"': ${value}`, EXIT.usage);
  return /[\s#]/.test(value) || value === "" ? `"${value}"` : value;
}

/** What a hive entry resolves to once the defaults are filled in. */
export interface ResolvedHive {
  alias: string;
  /** The ssh destination's host. */
  hostName: string;
  user: string | undefined;
  sshPort: number | undefined;
  identityFile: string | undefined;
  hivePort: number;
  hiveId: string;
  advertiseUrl: string;
  hiveListen: string;
  queenUrl: string | undefined;
  nodePath: string | undefined;
  setEnv: Record<string, string>;
  line: number;
}

/** Fills in an entry's defaults. */
export function resolveHive(e: HiveEntry): ResolvedHive {
  const hostName = e.hostName ?? e.alias;
  const hivePort = e.hivePort ?? DEFAULT_PORTS.hive;
  const loopback = isLoopbackHost(hostName);
  return {
    alias: e.alias,
    hostName,
    user: e.user,
    sshPort: e.port,
    identityFile: e.identityFile,
    hivePort,
    hiveId: e.hiveId ?? e.alias.toLowerCase(),
    advertiseUrl: e.advertiseUrl ?? `http://${hostName.includes(":") ? `[${hostName}]` : hostName}:${hivePort}`,
    hiveListen: e.hiveListen ?? (loopback ? "127.0.0.1" : "0.0.0.0"),
    queenUrl: e.queenUrl,
    nodePath: e.nodePath,
    setEnv: e.setEnv,
    line: e.line,
  };
}

/** 127.0.0.0/8, ::1 and localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}
