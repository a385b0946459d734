import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { hostname, networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { createGzip } from "node:zlib";
import { parseJson } from "@rbee/contract/light";
import { loadOrCreateClusterToken } from "@rbee/server-kit/client";
import { type CliConfig, isLoopbackUrl, urlPort } from "./config.js";
import { CliError, EXIT } from "./exit-codes.js";
import { isLoopbackHost, type ResolvedHive } from "./hives-conf.js";
import type { QueenClient } from "./queen-client.js";
import { type Bundle, collectBundle } from "./rbee-bundle.js";
import { formatBytes } from "./render/format.js";
import type { Narrator } from "./render/narration.js";
import { describeTarget, runRemote, type SshEnv, type SshResult, shellQuote } from "./ssh.js";

/**
 * A hive on another machine, driven over ssh: install this rbee there, start and stop its hive,
 * ask how it is. Everything rbee puts on that machine lives in `~/.local/share/rbee/`:
 * `<version>/` (the files), `current` (a link to the version in use), `bin/rbee` (the launcher,
 * a stable path that runs `current` with the node found at install time). The hive itself keeps
 * its usual directories there (~/.cache/rbee, ~/.config/rbee, or RBEE_CACHE_DIR/RBEE_CONFIG_DIR
 * given with SetEnv).
 */
const require = createRequire(import.meta.url);
export const RBEE_VERSION = (require("../package.json") as { version: string }).version;

/** The oldest Node.js rbee runs on (the workspace's `engines`). */
export const MIN_NODE = [20, 10] as const;

/** Where rbee goes on the remote machine, relative to its $HOME. */
export const REMOTE_BASE = ".local/share/rbee";
const MANIFEST = "rbee-install.json";

/** What an install writes next to the files, and `status` reads back. */
export interface InstallManifest {
  version: string;
  node: string;
  node_version: string;
  platform: string;
  arch: string;
  bin: string;
  files: number;
  bytes: number;
  llama_builds: string[];
  installed_at: string;
  installed_from: string;
}

/** What a first look at the machine found. */
export interface Probe {
  home: string;
  node: string | undefined;
  nodeVersion: string | undefined;
  platform: string | undefined;
  arch: string | undefined;
  tar: boolean;
  gpus: Set<string>;
  installed: InstallManifest | undefined;
}

export interface RemoteOptions {
  hive: ResolvedHive;
  narrator: Narrator;
  ssh?: SshEnv;
}

/** The `export NAME=value` lines every remote rbee command starts with: the hive's port, address, id, SetEnv. */
function remoteEnv(h: ResolvedHive): string {
  const vars: Record<string, string> = {
    RBEE_HIVE_PORT: String(h.hivePort),
    RBEE_HIVE_HOST: h.hiveListen,
    RBEE_HIVE_ID: h.hiveId,
    ...h.setEnv,
  };
  return Object.entries(vars)
    .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
    .join("\n");
}

const BASE = `base="$HOME/${REMOTE_BASE}"`;

/** A remote script that must succeed; its failure is an error with what it printed. */
async function mustRun(o: RemoteOptions, what: string, script: string, input?: string): Promise<SshResult> {
  const r = await runRemote(o.hive, script, { input, timeoutMs: 120_000 }, o.ssh);
  if (r.code !== 0) {
    const said = `${r.stderr}\n${r.stdout}`.trim().split("\n").filter(Boolean).slice(-3).join("; ");
    throw new CliError(`${what} on ${o.hive.alias} failed (exit ${r.code})${said ? `: ${said}` : ""}`);
  }
  return r;
}

/** Reads `key=value` lines. */
function keyValues(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

function manifestOf(text: string | undefined): InstallManifest | undefined {
  if (!text) return undefined;
  const parsed = parseJson(text);
  if (!parsed.ok || typeof parsed.value !== "object" || parsed.value === null) return undefined;
  const m = parsed.value as Partial<InstallManifest>;
  return typeof m.version === "string" ? (m as InstallManifest) : undefined;
}

/** Looks at the machine: its node (NodePath, else the PATH, else the usual places), platform, GPUs, installed rbee. */
export async function probe(o: RemoteOptions): Promise<Probe> {
  const script = [
    BASE,
    `node=${shellQuote(o.hive.nodePath ?? "")}`,
    `[ -n "$node" ] || node=$(command -v node 2>/dev/null) || node=""`,
    `if [ -z "$node" ]; then for p in /usr/local/bin/node /usr/bin/node /opt/homebrew/bin/node "$HOME/.volta/bin/node" "$HOME"/.nvm/versions/node/*/bin/node; do [ -x "$p" ] && node="$p"; done; fi`,
    `echo "home=$HOME"`,
    `echo "node=$node"`,
    `[ -n "$node" ] && "$node" -e 'console.log("node_version=" + process.versions.node + "\\nplatform=" + process.platform + "\\narch=" + process.arch)' 2>/dev/null`,
    `command -v tar >/dev/null 2>&1 && echo "tar=yes"`,
    `command -v nvidia-smi >/dev/null 2>&1 && echo "gpu=cuda"`,
    // a Vulkan loader alone is no GPU (a browser brings one): it needs a GPU's render node too
    `if ls /dev/dri/renderD* >/dev/null 2>&1; then for f in /usr/lib/*/libvulkan.so.1 /usr/lib64/libvulkan.so.1 /usr/lib/libvulkan.so.1; do [ -e "$f" ] && echo "gpu=vulkan" && break; done; fi`,
    `[ -f "$base/current/${MANIFEST}" ] && echo "manifest=$(tr -d '\\n' < "$base/current/${MANIFEST}")"`,
    "exit 0",
  ].join("\n");
  const r = await mustRun(o, "looking at the machine", script);
  const kv = keyValues(r.stdout);
  const one = (k: string) => (kv.get(k)?.[0] ? kv.get(k)?.[0] : undefined);
  return {
    home: one("home") ?? "~",
    node: one("node"),
    nodeVersion: one("node_version"),
    platform: one("platform"),
    arch: one("arch"),
    tar: one("tar") === "yes",
    gpus: new Set(kv.get("gpu") ?? []),
    installed: manifestOf(one("manifest")),
  };
}

/** Whether a Node.js version ("22.3.0") is at least {@link MIN_NODE}. */
export function nodeIsRecentEnough(version: string): boolean {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  return major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1]);
}

/** Refuses a machine rbee cannot be copied to, saying what to do. */
export function checkInstallable(
  p: Probe,
  h: ResolvedHive,
): asserts p is Probe & { node: string; nodeVersion: string } {
  const min = `${MIN_NODE[0]}.${MIN_NODE[1]}`;
  if (!p.node) {
    throw new CliError(
      `node is not installed on ${h.alias} (or not on the PATH of a non-interactive ssh login): install Node.js ${min} or newer there (your package manager, or https://nodejs.org), or write 'NodePath /path/to/node' under Host ${h.alias} in hives.conf`,
    );
  }
  if (!p.nodeVersion) {
    throw new CliError(
      `${p.node} on ${h.alias} does not run${h.nodePath ? ` (NodePath in hives.conf, line ${h.line})` : ""}: check that it is Node.js ${min} or newer`,
    );
  }
  if (!nodeIsRecentEnough(p.nodeVersion)) {
    throw new CliError(
      `${h.alias} has Node.js ${p.nodeVersion} (${p.node}); rbee needs ${min} or newer: upgrade Node.js there, or point NodePath under Host ${h.alias} in hives.conf at a newer one`,
    );
  }
  if (p.platform !== process.platform || p.arch !== process.arch) {
    throw new CliError(
      `${h.alias} is ${p.platform}-${p.arch} and this machine is ${process.platform}-${process.arch}: rbee copies itself with its prebuilt llama.cpp binaries, which only run on the same platform. Run \`rbee hive install ${h.alias}\` from a ${p.platform}-${p.arch} machine, or install rbee there with npm and start its hive by hand (docs/cluster.md)`,
    );
  }
  if (!p.tar) throw new CliError(`${h.alias} has no tar command, which the install unpacks with: install tar there`);
}

/** A short line for a hive's installed version against ours: "0.1.0 (same as here)" / "0.0.9, this rbee is 0.1.0: ...". */
export function versionVerdict(installed: string | undefined, alias: string): { ok: boolean; text: string } {
  if (installed === undefined) {
    return { ok: false, text: `not installed; install it with \`rbee hive install ${alias}\`` };
  }
  if (installed === RBEE_VERSION) return { ok: true, text: `${installed} (same as this rbee)` };
  return {
    ok: false,
    text: `${installed}, but this rbee is ${RBEE_VERSION}; update it with \`rbee hive install ${alias}\``,
  };
}

export interface InstallReport {
  alias: string;
  version: string;
  files: number;
  bytes: number;
  sentBytes: number;
  ms: number;
  llamaBuilds: string[];
  /** True when a hive ran there and was stopped for the install. */
  stoppedHive: boolean;
  path: string;
}

/**
 * A stream of `tar -c` of the bundle, through gzip (level 1: fast, about a third of the size) unless
 * `compress` is false, reporting bytes as tar produces them and as they leave.
 */
function packBundle(
  bundle: Bundle,
  compress: boolean,
  onBytes: (tarBytes: number, sentBytes: number) => void,
): PassThrough {
  const dir = mkdtempSync(join(tmpdir(), "rbee-install-"));
  const list = join(dir, "files");
  writeFileSync(list, bundle.paths.join("\0"));
  const tar = spawn("tar", ["-c", "-f", "-", "-C", bundle.root, "--null", "-T", list], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out = new PassThrough();
  let tarBytes = 0;
  let sentBytes = 0;
  let tarErr = "";
  tar.stderr.setEncoding("utf8").on("data", (d: string) => {
    tarErr += d;
  });
  tar.stdout.on("data", (chunk: Buffer) => {
    tarBytes += chunk.length;
    onBytes(tarBytes, sentBytes);
  });
  out.on("data", (chunk: Buffer) => {
    sentBytes += chunk.length;
  });
  const fail = (err: Error) => {
    rmSync(dir, { recursive: true, force: true });
    out.destroy(err);
  };
  tar.once("error", (err) => fail(new CliError(`could not run tar on this machine: ${err.message}`)));
  tar.once("close", (code) => {
    rmSync(dir, { recursive: true, force: true });
    if (code !== 0) fail(new CliError(`tar failed packing rbee (exit ${code}): ${tarErr.trim()}`));
    else onBytes(tarBytes, sentBytes);
  });
  // when the far side ends first (a full disk there), tar must not wait forever on a full pipe
  out.once("close", () => {
    if (!out.readableEnded && tar.exitCode === null && tar.signalCode === null) tar.kill();
  });
  if (compress) tar.stdout.pipe(createGzip({ level: 1 })).pipe(out);
  else tar.stdout.pipe(out);
  return out;
}

/** What a tar of these files weighs: a 512-byte header per entry, contents padded to 512, 1 KiB at the end. */
function tarSize(bundle: Bundle, files: number): number {
  return bundle.bytes + files * 1024 + 1024;
}

/**
 * Installs this rbee on the machine: looks at it (node, platform, what is installed), stops a
 * hive running there, streams the bundle (gzip over ssh) into a fresh directory, then switches
 * `current` and the launcher to it and removes other versions.
 */
export async function installRemote(
  o: RemoteOptions & { allLlamaBuilds?: boolean; compress?: boolean },
): Promise<InstallReport> {
  const h = o.hive;
  const n = o.narrator;
  const started = Date.now();
  n.say(`${h.alias}: connecting over ssh (${describeTarget(h)})`);
  const p = await probe(o);
  checkInstallable(p, h);
  n.say(
    `${h.alias}: node ${p.nodeVersion} (${p.node}) on ${p.platform}-${p.arch}, ${p.installed ? `rbee ${p.installed.version} installed` : "rbee not installed"}`,
  );
  if (!/^[0-9A-Za-z.+_-]+$/.test(RBEE_VERSION)) throw new CliError(`cannot install version '${RBEE_VERSION}'`);
  let stoppedHive = false;
  if (p.installed) {
    const r = await mustRun(o, "stopping the hive", `${remoteEnv(h)}\n${BASE}\n"$base/bin/rbee" hive stop`);
    stoppedHive = /stopped/.test(r.stdout);
    if (stoppedHive) n.say(`${h.alias}: stopped the running hive for the install`);
  }
  const gpus = o.allLlamaBuilds ? new Set(["cuda", "vulkan"]) : p.gpus;
  const bundle = collectBundle({ platform: process.platform, arch: process.arch, gpus });
  const files = bundle.paths.length;
  n.say(
    `packing rbee ${RBEE_VERSION}: ${files} files, ${formatBytes(bundle.bytes)} (llama.cpp builds: ${bundle.llamaBuilds.map((b) => b.split("/")[1]).join(", ") || "none"})`,
  );
  const home = p.home;
  const manifest: InstallManifest = {
    version: RBEE_VERSION,
    node: p.node,
    node_version: p.nodeVersion,
    platform: p.platform ?? "",
    arch: p.arch ?? "",
    bin: bundle.bin,
    files,
    bytes: bundle.bytes,
    llama_builds: bundle.llamaBuilds,
    installed_at: new Date().toISOString(),
    installed_from: hostname(),
  };
  const launcher = [
    "#!/bin/sh",
    `# rbee ${RBEE_VERSION}, installed by \`rbee hive install\` from ${hostname()}; \`rbee hive uninstall\` removes it`,
    `exec ${shellQuote(p.node)} ${shellQuote(`${home}/${REMOTE_BASE}/current/${bundle.bin}`)} "$@"`,
  ].join("\n");
  const version = RBEE_VERSION;
  const compress = o.compress !== false;
  const script = [
    "set -e",
    BASE,
    `mkdir -p "$base/bin"`,
    `tmp=$(mktemp -d "$base/.install.XXXXXX")`,
    `trap 'rm -rf "$tmp"' EXIT`,
    `tar -x${compress ? "z" : ""}f - -C "$tmp"`,
    `printf '%s\\n' ${shellQuote(JSON.stringify(manifest))} > "$tmp/${MANIFEST}"`,
    `rm -rf "$base/${version}"`,
    `mv "$tmp" "$base/${version}"`,
    `ln -sfn ${shellQuote(version)} "$base/current"`,
    `printf '%s\\n' ${shellQuote(launcher)} > "$base/bin/rbee.tmp"`,
    `chmod 755 "$base/bin/rbee.tmp"`,
    `mv "$base/bin/rbee.tmp" "$base/bin/rbee"`,
    `for d in "$base"/*; do case "\${d##*/}" in bin|current|${shellQuote(version)}) ;; *) rm -rf "$d" ;; esac; done`,
    `"$base/bin/rbee" --version`,
  ].join("\n");
  const total = tarSize(bundle, files);
  let sent = 0;
  const stream = packBundle(bundle, compress, (tarBytes, sentBytes) => {
    sent = sentBytes;
    n.progress({ done: Math.min(tarBytes, total), total, unit: "bytes", label: `sending rbee to ${h.alias}` });
  });
  let failed: Error | undefined;
  stream.once("error", (err) => {
    failed = err;
  });
  const r = await runRemote(h, script, { input: stream, timeoutMs: 30 * 60_000 }, o.ssh);
  stream.destroy();
  n.progress({ done: total, total, unit: "bytes", label: `sending rbee to ${h.alias}` });
  n.finish();
  if (failed) throw failed;
  if (r.code !== 0) {
    const said = `${r.stderr}\n${r.stdout}`.trim().split("\n").filter(Boolean).slice(-3).join("; ");
    throw new CliError(`installing on ${h.alias} failed (exit ${r.code}): ${said}`);
  }
  const reported = r.stdout.trim().split("\n").pop()?.trim();
  if (reported !== RBEE_VERSION) {
    throw new CliError(
      `rbee was copied to ${h.alias} but does not run there (it answered '${reported ?? ""}' to --version): ${r.stderr.trim()}`,
    );
  }
  const path = `${home}/${REMOTE_BASE}/${version}`;
  n.say(`${h.alias}: rbee ${version} installed in ${path} (launcher ${home}/${REMOTE_BASE}/bin/rbee)`);
  return {
    alias: h.alias,
    version,
    files,
    bytes: bundle.bytes,
    sentBytes: sent,
    ms: Date.now() - started,
    llamaBuilds: bundle.llamaBuilds,
    stoppedHive,
    path,
  };
}

/** The first LAN IPv4 address of this machine, to suggest in messages. */
function lanAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return undefined;
}

/**
 * The queen's URL as the hive's machine reaches it: --remote-queen-url, else QueenUrl in
 * hives.conf, else the queen this CLI talks to. A loopback URL is refused for a machine that is
 * not this one: there it would point at itself.
 */
export function queenUrlForHive(h: ResolvedHive, config: Pick<CliConfig, "queenUrl">, flag?: string): string {
  const url = flag ?? h.queenUrl ?? config.queenUrl;
  if (isLoopbackUrl(url) && !isLoopbackHost(h.hostName)) {
    const lan = lanAddress() ?? "<this machine's address>";
    throw new CliError(
      `the queen URL ${url} is a loopback address, which on ${h.alias} (${h.hostName}) is ${h.alias} itself: write 'QueenUrl http://${lan}:${urlPort(url)}' under Host ${h.alias} in hives.conf (or pass --remote-queen-url), and run the queen on an address ${h.alias} reaches (rbee queen start --host 0.0.0.0, with API keys)`,
      EXIT.usage,
    );
  }
  return url;
}

export interface StartReport {
  alias: string;
  /** What `rbee hive start` said there. */
  remote: string;
  queenUrl: string;
  advertiseUrl: string;
}

/**
 * Starts the hive there in the background: checks that this version is installed, writes the
 * cluster token into its config directory (mode 0600, sent on stdin, never on a command line),
 * then runs `rbee hive start` there with the queen's URL and the address to advertise.
 */
export async function startRemote(o: RemoteOptions & { queenUrl: string; configDir: string }): Promise<StartReport> {
  const h = o.hive;
  const p = await probe(o);
  const verdict = versionVerdict(p.installed?.version, h.alias);
  if (!verdict.ok) {
    throw new CliError(
      `cannot start the hive on ${h.alias}: rbee there is ${verdict.text}`,
      p.installed ? EXIT.failure : EXIT.notFound,
    );
  }
  const token = loadOrCreateClusterToken(o.configDir);
  o.narrator.say(`${h.alias}: starting the hive (queen ${o.queenUrl}, advertised as ${h.advertiseUrl})`);
  const script = [
    "set -e",
    remoteEnv(h),
    BASE,
    `cfg="\${RBEE_CONFIG_DIR:-$HOME/.config/rbee}"`,
    "umask 077",
    `mkdir -p "$cfg"`,
    `cat > "$cfg/cluster-token.rbee-new"`,
    `chmod 600 "$cfg/cluster-token.rbee-new"`,
    `mv "$cfg/cluster-token.rbee-new" "$cfg/cluster-token"`,
    `exec "$base/bin/rbee" --queen-url ${shellQuote(o.queenUrl)} hive start --advertise-url ${shellQuote(h.advertiseUrl)}`,
  ].join("\n");
  const r = await mustRun(o, "starting the hive", script, `${token}\n`);
  return { alias: h.alias, remote: r.stdout.trim(), queenUrl: o.queenUrl, advertiseUrl: h.advertiseUrl };
}

/** Waits until the queen lists the hive as live (its first heartbeat arrived). */
export async function waitForQueenToSee(client: QueenClient, h: ResolvedHive, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const cluster = await client.cluster();
    if (cluster.hives.some((x) => x.id === h.hiveId && x.state === "live")) return;
    if (Date.now() > deadline) {
      throw new CliError(
        `the hive on ${h.alias} runs, but the queen at ${client.url} has not heard from it within ${Math.round(timeoutMs / 1000)} s: can ${h.alias} reach the queen at the URL it was given? Look at its log (\`rbee hive status ${h.alias}\` names it)`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Stops the hive there; says what happened ("hive stopped (pid 123)", "hive is not running", "not installed"). */
export async function stopRemote(o: RemoteOptions): Promise<string> {
  const script = [
    remoteEnv(o.hive),
    BASE,
    `[ -x "$base/bin/rbee" ] || { echo "rbee is not installed"; exit 0; }`,
    `exec "$base/bin/rbee" hive stop`,
  ].join("\n");
  const r = await mustRun(o, "stopping the hive", script);
  return r.stdout.trim();
}

/** What `rbee hive status <alias>` reports. */
export interface RemoteStatus {
  alias: string;
  ssh: string;
  installed: InstallManifest | null;
  local_version: string;
  version_ok: boolean;
  version_note: string;
  running: boolean;
  /** The remote `rbee hive status --json`, when rbee is installed there. */
  hive: Record<string, unknown> | null;
  advertise_url: string;
  queen: {
    url: string;
    state: string | null;
    url_seen: string | null;
    last_seen_ms: number | null;
    error: string | null;
  };
}

/** Asks the machine (installed version, the hive's status there) and the queen (does it see the hive). */
export async function statusRemote(o: RemoteOptions & { client: QueenClient }): Promise<RemoteStatus> {
  const h = o.hive;
  const script = [
    remoteEnv(h),
    BASE,
    `[ -f "$base/current/${MANIFEST}" ] && echo "manifest=$(tr -d '\\n' < "$base/current/${MANIFEST}")"`,
    `[ -x "$base/bin/rbee" ] && echo "status=$("$base/bin/rbee" hive status --json 2>/dev/null | tr -d '\\n')"`,
    "exit 0",
  ].join("\n");
  const r = await mustRun(o, "asking for the hive's status", script);
  const kv = keyValues(r.stdout);
  const installed = manifestOf(kv.get("manifest")?.[0]);
  const statusText = kv.get("status")?.[0];
  const parsed = statusText ? parseJson(statusText) : undefined;
  const hive =
    parsed?.ok && typeof parsed.value === "object" && parsed.value !== null
      ? (parsed.value as Record<string, unknown>)
      : null;
  const verdict = versionVerdict(installed?.version, h.alias);
  const queen: RemoteStatus["queen"] = {
    url: o.client.url,
    state: null,
    url_seen: null,
    last_seen_ms: null,
    error: null,
  };
  try {
    const seen = (await o.client.cluster()).hives.find((x) => x.id === h.hiveId);
    if (seen) {
      queen.state = seen.state;
      queen.url_seen = seen.url;
      queen.last_seen_ms = seen.last_seen_ms;
    }
  } catch (err) {
    queen.error = err instanceof Error ? err.message : String(err);
  }
  return {
    alias: h.alias,
    ssh: describeTarget(h),
    installed: installed ?? null,
    local_version: RBEE_VERSION,
    version_ok: verdict.ok,
    version_note: verdict.text,
    running: hive?.running === true,
    hive,
    advertise_url: h.advertiseUrl,
    queen,
  };
}

/** Stops the hive and removes rbee there (`purge`: its models, logs and config too). */
export async function uninstallRemote(o: RemoteOptions & { purge: boolean }): Promise<string[]> {
  const script = [
    "set -e",
    remoteEnv(o.hive),
    BASE,
    `case "$HOME" in ""|/) echo "refusing: HOME is '$HOME'" >&2; exit 12 ;; esac`,
    `if [ -x "$base/bin/rbee" ]; then "$base/bin/rbee" hive stop; else echo "rbee is not installed"; fi`,
    `[ -d "$base" ] && rm -rf "$base" && echo "removed $base"`,
    ...(o.purge
      ? [
          `for d in "\${RBEE_CACHE_DIR:-$HOME/.cache/rbee}" "\${RBEE_CONFIG_DIR:-$HOME/.config/rbee}"; do [ -d "$d" ] && rm -rf "$d" && echo "removed $d"; done`,
        ]
      : []),
    "exit 0",
  ].join("\n");
  const r = await mustRun(o, "uninstalling rbee", script);
  return r.stdout.trim().split("\n").filter(Boolean);
}
