import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { ChildHandle, REPO_ROOT, waitFor } from "@rbee/testing";
import { afterAll, describe, expect, it } from "vitest";

// A worker under load flips between Ready and Busy with every request. Its heartbeat receiver (the
// hive or the queen) hears of those flips within a second, not once for each: a heartbeat per flip
// cost the queen more CPU than routing the requests did. Other changes (Ready, Stopping) go at once.
describe("heartbeats of a worker under load", () => {
  const beats: Array<{ at: number; status: string }> = [];
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => {
      body += c.toString();
    });
    req.on("end", () => {
      beats.push({ at: Date.now(), status: (JSON.parse(body) as { status: string }).status });
      res.writeHead(200, { "content-type": "application/json" }).end('{"ack":true,"commands":[]}');
    });
  });
  let child: ChildHandle | undefined;
  afterAll(async () => {
    await child?.stop();
    receiver.close();
  });

  it("sends a few heartbeats for hundreds of requests, and the last status within a second", async () => {
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    const { port } = receiver.address() as AddressInfo;
    child = new ChildHandle(process.execPath, [join(REPO_ROOT, "examples/echo-worker.mjs")], {
      env: {
        PORT: "0",
        RBEE_HEARTBEAT_URL: `http://127.0.0.1:${port}`,
        RBEE_HEARTBEAT_INTERVAL_MS: "60000",
        RBEE_LOG_LEVEL: "info",
      },
    });
    const ready = await child.waitForLine(/^\{.*"msg":"worker ready".*\}$/m);
    const url = (JSON.parse(ready[0]) as { url: string }).url;
    await waitFor(() => (beats.some((b) => b.status === "Ready") ? true : undefined), 30_000, "the Ready heartbeat");
    await new Promise((r) => setTimeout(r, 300));
    const before = beats.length;
    const started = Date.now();
    let requests = 0;
    while (Date.now() - started < 1500) {
      const res = await fetch(`${url}/v1/infer`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: "one two", max_tokens: 1 }),
      });
      expect(res.status).toBe(200);
      await res.json();
      requests++;
    }
    const during = beats.length - before;
    expect(requests).toBeGreaterThan(20);
    // one flip a request would be 2 × requests heartbeats; paced, about one a second (start and end)
    expect(during).toBeLessThanOrEqual(4);
    // the receiver learns the worker is Ready again within about a second of the last request
    await waitFor(
      () => (beats.at(-1)?.status === "Ready" && beats.at(-1)!.at > started ? true : undefined),
      5000,
      "a Ready heartbeat after the requests",
    );
  }, 60_000);
});
