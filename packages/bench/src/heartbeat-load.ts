import { Agent, request } from "node:http";
import {
  type Device,
  HiveHeartbeat,
  type HiveModel,
  type HiveWorkerReport,
  PROTOCOL_VERSION,
  type WorkerStatus,
} from "@rbee/contract";

/**
 * The load of the heartbeat benchmark, in its own process so that its CPU is not the queen's:
 * `node heartbeat-load.js <queen-url> <hives> <workers-per-hive> <interval-ms>` with the cluster
 * token in RBEE_CLUSTER_TOKEN. Each simulated hive posts `/v1/hive-heartbeat` with its workers'
 * reports every interval, on its own keep-alive connection as a real hive does; the hives are
 * staggered evenly over the interval. Prints `{"ready":...}` once every hive has been heard once,
 * and `{"sent":...}` when it gets SIGTERM.
 */

const MODELS = [
  { id: "qwen2.5-7b-instruct-q4_k_m", bytes: 4_683_074_240, arch: "qwen2", params: 7_615_616_512 },
  { id: "llama-3.2-3b-instruct-q4_k_m", bytes: 2_019_377_696, arch: "llama", params: 3_212_749_888 },
  { id: "phi-3.5-mini-instruct-q4_k_m", bytes: 2_393_232_384, arch: "phi3", params: 3_821_079_552 },
];
const GIB = 1024 ** 3;

interface SimWorker {
  id: string;
  model: (typeof MODELS)[number];
  device: string;
  port: number;
  pid: number;
  startedAt: number;
  status: WorkerStatus;
  requests: number;
  tokens: number;
  lastRequestAt: number | null;
}

interface SimHive {
  id: string;
  url: string;
  startedAt: string;
  devices: Device[];
  models: HiveModel[];
  workers: SimWorker[];
  agent: Agent;
}

function makeHive(index: number, workersPerHive: number): SimHive {
  const id = `sim-hive-${String(index).padStart(4, "0")}`;
  const host = `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}`;
  const now = Date.now();
  const devices: Device[] = [
    {
      id: "cpu",
      kind: "cpu",
      name: "AMD Ryzen 9 7950X",
      memory_total: 64 * GIB,
      memory_used: 20 * GIB,
      memory_free: 44 * GIB,
      cores: 32,
    },
    ...[0, 1].map(
      (n): Device => ({
        id: `cuda:${n}`,
        kind: "cuda",
        name: "NVIDIA GeForce RTX 4090",
        memory_total: 24 * GIB,
        memory_used: 12 * GIB,
        memory_free: 12 * GIB,
        driver_version: "550.54.14",
        compute_capability: "8.9",
        simulated: true,
      }),
    ),
  ];
  const models: HiveModel[] = MODELS.map((m) => ({
    id: m.id,
    name: m.id,
    size_bytes: m.bytes,
    status: "Available",
    path: `/home/me/.cache/rbee/models/${m.id}/${m.id}.gguf`,
    source_url: `hf://example/${m.id}`,
    gguf: {
      architecture: m.arch,
      parameter_count: m.params,
      quantization: "Q4_K_M",
      context_length: 32_768,
      block_count: 28,
      embedding_length: 3584,
      head_count: 28,
      head_count_kv: 4,
      vocab_size: 152_064,
      tensor_bytes: m.bytes - 8_000_000,
      file_bytes: m.bytes,
    },
  }));
  const workers = Array.from({ length: workersPerHive }, (_, w): SimWorker => {
    const model = MODELS[w % MODELS.length] as (typeof MODELS)[number];
    return {
      id: `${id}-llm-${w}`,
      model,
      device: w % 3 === 0 ? "cpu" : `cuda:${w % 2}`,
      port: 9300 + w,
      pid: 10_000 + index * 64 + w,
      startedAt: now - 3_600_000,
      status: "Ready",
      requests: 0,
      tokens: 0,
      lastRequestAt: null,
    };
  });
  return {
    id,
    url: `http://${host}:7835`,
    startedAt: new Date(now - 3_600_000).toISOString(),
    devices,
    models,
    workers,
    agent: new Agent({ keepAlive: true, maxSockets: 1 }),
  };
}

/** Advances a worker as if it served traffic: some requests since the last beat, Ready ⇄ Busy now and then. */
function tick(w: SimWorker, now: number): void {
  if (Math.random() < 0.3) {
    const n = 1 + Math.floor(Math.random() * 4);
    w.requests += n;
    w.tokens += n * 120;
    w.lastRequestAt = now;
  }
  if (Math.random() < 0.1) w.status = w.status === "Ready" ? "Busy" : "Ready";
}

function report(hive: SimHive, w: SimWorker, intervalMs: number, now: number): HiveWorkerReport {
  const url = `${hive.url.replace(":7835", "")}:${w.port}`;
  const lastRequestAt = w.lastRequestAt === null ? null : new Date(w.lastRequestAt).toISOString();
  return {
    worker_id: w.id,
    worker_type: "llm",
    model: w.model.id,
    device: w.device,
    url,
    port: w.port,
    pid: w.pid,
    status: w.status,
    restarts: 0,
    last_exit: null,
    started_at: new Date(w.startedAt).toISOString(),
    heartbeat_age_ms: Math.floor(Math.random() * intervalMs),
    keep_alive_ms: 300_000,
    heartbeat: {
      protocol_version: PROTOCOL_VERSION,
      worker_id: w.id,
      status: w.status,
      model: w.model.id,
      device: w.device,
      vram_used: Math.round(w.model.bytes * 1.2),
      vram_total: 24 * GIB,
      requests_total: w.requests,
      tokens_generated: w.tokens,
      uptime_seconds: Math.floor((now - w.startedAt) / 1000),
      last_request_at: lastRequestAt,
      url,
      port: w.port,
      pid: w.pid,
      worker_type: "llm",
      implementation: "rbee-llm",
      memory_used: 512 * 1024 * 1024,
      slots: 4,
      in_flight: w.status === "Busy" ? 1 + Math.floor(Math.random() * 4) : 0,
      requests_failed: 0,
      throughput_tokens_per_second: w.status === "Busy" ? 40 + Math.random() * 20 : 0,
    },
  };
}

function payload(hive: SimHive, intervalMs: number): HiveHeartbeat {
  const now = Date.now();
  for (const w of hive.workers) tick(w, now);
  return {
    protocol_version: PROTOCOL_VERSION,
    hive_id: hive.id,
    url: hive.url,
    version: "0.1.0",
    started_at: hive.startedAt,
    interval_ms: intervalMs,
    devices: hive.devices,
    workers: hive.workers.map((w) => report(hive, w, intervalMs, now)),
    models: hive.models,
  };
}

function post(endpoint: string, token: string, hive: SimHive, body: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      endpoint,
      {
        method: "POST",
        agent: hive.agent,
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode === 200));
        res.on("error", () => resolve(false));
      },
    );
    req.on("error", () => resolve(false));
    req.end(body);
  });
}

async function main(): Promise<void> {
  const [queenUrl, hivesArg, perHiveArg, intervalArg] = process.argv.slice(2);
  const token = process.env.RBEE_CLUSTER_TOKEN;
  if (!queenUrl || !hivesArg || !perHiveArg || !intervalArg || !token) {
    process.stderr.write(
      "usage: RBEE_CLUSTER_TOKEN=... node heartbeat-load.js <queen-url> <hives> <workers-per-hive> <interval-ms>\n",
    );
    process.exit(2);
  }
  const intervalMs = Number(intervalArg);
  const hives = Array.from({ length: Number(hivesArg) }, (_, i) => makeHive(i, Number(perHiveArg)));
  const endpoint = `${queenUrl}/v1/hive-heartbeat`;
  // every payload this generator sends has the shape of this one: check it once against the contract
  HiveHeartbeat.parse(payload(hives[0] as SimHive, intervalMs));

  let sent = 0;
  let failed = 0;
  let bytes = 0;
  const heard = new Set<string>();
  const beat = async (hive: SimHive) => {
    const body = JSON.stringify(payload(hive, intervalMs));
    bytes += body.length;
    const ok = await post(endpoint, token, hive, body);
    sent++;
    if (!ok) failed++;
    else if (heard.size < hives.length) {
      heard.add(hive.id);
      if (heard.size === hives.length) process.stdout.write(`${JSON.stringify({ ready: true, sent, failed })}\n`);
    }
  };
  const timers: NodeJS.Timeout[] = [];
  hives.forEach((hive, i) => {
    const offset = Math.floor((i / hives.length) * intervalMs);
    timers.push(
      setTimeout(() => {
        void beat(hive);
        timers.push(setInterval(() => void beat(hive), intervalMs));
      }, offset),
    );
  });
  process.once("SIGTERM", () => {
    for (const t of timers) clearTimeout(t);
    process.stdout.write(`${JSON.stringify({ sent, failed, bytes })}\n`, () => process.exit(0));
  });
}

await main();
