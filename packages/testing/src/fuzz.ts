import { request as httpRequest } from "node:http";
import { connect } from "node:net";

/** A small seeded generator (mulberry32): the same seed gives the same run. */
export class Rng {
  #state: number;

  constructor(readonly seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(max: number): number {
    return Math.floor(this.next() * max);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** Ids and file names that try to leave where they belong, or to break what reads them. */
export const HOSTILE_IDS: readonly string[] = [
  "../../../../etc/passwd",
  "..%2f..%2f..%2fetc%2fpasswd",
  "%2e%2e%2f%2e%2e%2fetc%2fshadow",
  "..",
  ".",
  "%00",
  "a%00b",
  "%ff%fe",
  "%c3%28",
  "%",
  "😀",
  "CON",
  "a".repeat(300),
  "x".repeat(5000),
  "/etc/passwd",
  "C:%5Cwindows%5Csystem32",
  "%0d%0aSet-Cookie:%20x=1",
  "<script>alert(1)</script>",
  "-1",
  "0",
  "null",
  "stories260k/../../x",
];

const STRINGS = ["", " ", "a", "\u0000", "\ud800", "😀".repeat(100), "../../etc/passwd", "%s%n", "{}", "[]", "null"];
const NUMBERS = [0, -1, 1, 1.5, -0, 1e308, -1e308, 2 ** 53 + 1, 100_000, 2 ** 31];
/** Field names the daemons' bodies have: a wrong value in a known field reaches deeper than an unknown field. */
const FIELDS = [
  "model",
  "prompt",
  "messages",
  "input",
  "max_tokens",
  "temperature",
  "stream",
  "operation",
  "type",
  "ref",
  "worker_id",
  "hive_id",
  "threads",
  "ctx_size",
  "json_schema",
  "response_format",
  "tools",
  "name",
  "status",
  "protocol_version",
  "workers",
  "devices",
  "keep_alive",
  "stop",
  "peers",
  "__proto__",
  "constructor",
];

/** A JSON value of a random shape, `depth` levels at most. */
export function randomJson(rng: Rng, depth = 3): unknown {
  const kind = rng.int(depth > 0 ? 8 : 5);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick(NUMBERS);
    case 3:
      return rng.pick(STRINGS);
    case 4:
      return rng.pick(HOSTILE_IDS);
    case 5:
      return Array.from({ length: rng.int(4) }, () => randomJson(rng, depth - 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = rng.int(5); i > 0; i--) o[rng.pick(FIELDS)] = randomJson(rng, depth - 1);
      return o;
    }
  }
}

/** One generated request body: the bytes, the content type to send them with, and what they are. */
export interface FuzzBody {
  what: string;
  body: Buffer | undefined;
  contentType: string | undefined;
}

/** A generated bad body: wrong types, deep or huge JSON, invalid UTF-8, not JSON, wrong content types. */
export function randomBody(rng: Rng): FuzzBody {
  const json = (what: string, text: string): FuzzBody => ({
    what,
    body: Buffer.from(text),
    contentType: "application/json",
  });
  switch (rng.int(11)) {
    case 0:
      return { what: "no body", body: undefined, contentType: undefined };
    case 1:
      return json("empty", "");
    case 2:
      return json("not JSON", rng.pick(["{", "{'a':1}", "nul", "[1,2", "\u0000", '{"a":1}{"b":2}']));
    case 3: {
      const depth = rng.pick([65, 200, 10_000, 100_000]);
      return json(`nested ${depth} deep`, `${"[".repeat(depth)}${"]".repeat(depth)}`);
    }
    case 4: {
      const depth = rng.pick([65, 5000]);
      return json(`objects nested ${depth} deep`, `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`);
    }
    case 5: {
      const size = rng.pick([1 << 20, 2 << 20, 17 << 20]);
      return json(`a ${size}-byte string`, JSON.stringify({ prompt: "x".repeat(size), model: "m" }));
    }
    case 6:
      return {
        what: "invalid UTF-8",
        body: Buffer.concat([
          Buffer.from('{"model":"'),
          Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80]),
          Buffer.from('"}'),
        ]),
        contentType: "application/json",
      };
    case 7:
      return {
        what: "text/plain JSON",
        body: Buffer.from(JSON.stringify(randomJson(rng))),
        contentType: rng.pick(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]),
      };
    case 8:
      return json("a top-level non-object", JSON.stringify(rng.pick([1, "s", null, true, [], [1, 2]])));
    default:
      return json("a random object", JSON.stringify(randomJson(rng, 4)));
  }
}

export interface FuzzReply {
  status: number;
  /** The first bytes of the body (a stream is cut after its headers). */
  text: string;
  /** No answer within the timeout. */
  hung: boolean;
  /** The connection broke before an answer (e.g. a body refused mid-upload). */
  error?: string;
}

/**
 * One request with raw bytes (invalid UTF-8 included), resolved once its answer is complete, or
 * after its headers for an event stream (which is then closed), or as `hung` after `timeoutMs`.
 */
export function fuzzRequest(
  url: string,
  o: {
    method: string;
    body?: Buffer;
    contentType?: string;
    token?: string;
    headers?: Record<string, string>;
    timeoutMs: number;
  },
): Promise<FuzzReply> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { ...o.headers };
    if (o.contentType !== undefined) headers["content-type"] = o.contentType;
    if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
    if (o.body !== undefined) headers["content-length"] = String(o.body.length);
    let done = false;
    const finish = (r: FuzzReply) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve(r);
    };
    const req = httpRequest(url, { method: o.method, headers, agent: false });
    const timer = setTimeout(() => finish({ status: 0, text: "", hung: true }), o.timeoutMs);
    req.on("response", (res) => {
      const status = res.statusCode ?? 0;
      if (String(res.headers["content-type"] ?? "").startsWith("text/event-stream")) {
        finish({ status, text: "(event stream)", hung: false });
        return;
      }
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        if (text.length < 2000) text += d;
      });
      res.on("end", () => finish({ status, text, hung: false }));
      res.on("error", (err) => finish({ status, text, hung: false, error: err.message }));
    });
    req.on("error", (err) => finish({ status: 0, text: "", hung: false, error: err.message }));
    req.end(o.body);
  });
}

/** Sends raw bytes as a request (a malformed request line, bytes that are not UTF-8) and resolves the answer's first line. */
export function rawExchange(
  url: string,
  bytes: Buffer,
  timeoutMs: number,
): Promise<{ firstLine: string; hung: boolean }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    let data = "";
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ firstLine: data.split("\r\n")[0] ?? "", hung: true });
    }, timeoutMs);
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      data += d;
    });
    const end = () => {
      clearTimeout(timer);
      resolve({ firstLine: data.split("\r\n")[0] ?? "", hung: false });
    };
    socket.on("close", end);
    socket.on("error", end);
    socket.write(bytes);
  });
}
