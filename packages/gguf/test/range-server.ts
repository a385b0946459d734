import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One request a test server saw. */
export interface SeenRequest {
  path: string;
  range: string | undefined;
  authorization: string | undefined;
}

/** A server started on 127.0.0.1, port 0. */
export interface TestServer {
  url: string;
  seen: SeenRequest[];
  /** Responses whose body the client stopped reading before the end. */
  aborted: number;
  close(): Promise<void>;
}

export type Route = (req: IncomingMessage, res: ServerResponse, server: TestServer) => void | Promise<void>;

/** A plain HTTP server for the remote-read tests: each path is a route. */
export async function startServer(routes: Record<string, Route>): Promise<TestServer> {
  const state: TestServer = { url: "", seen: [], aborted: 0, close: async () => undefined };
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    state.seen.push({ path, range: req.headers.range, authorization: req.headers.authorization });
    const route = routes[path];
    if (!route) {
      res.writeHead(404).end("not found");
      return;
    }
    Promise.resolve(route(req, res, state)).catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(err.message);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}

/** Serves a file, honouring `Range: bytes=a-b` with 206 (or ignoring it when `ignoreRange`). */
export function fileRoute(path: string, o: { ignoreRange?: boolean; requireAuth?: string } = {}): Route {
  return async (req, res, server) => {
    if (o.requireAuth !== undefined && req.headers.authorization !== o.requireAuth) {
      res.writeHead(401).end("unauthorized");
      return;
    }
    const size = (await stat(path)).size;
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    let start = 0;
    let end = size - 1;
    if (m && !o.ignoreRange) {
      start = Number(m[1]);
      end = m[2] === "" ? size - 1 : Math.min(size - 1, Number(m[2]));
      if (start >= size) {
        res.writeHead(416, { "content-range": `bytes */${size}` }).end();
        return;
      }
      res.writeHead(206, { "content-range": `bytes ${start}-${end}/${size}`, "content-length": end - start + 1 });
    } else {
      res.writeHead(200, { "content-length": size, "accept-ranges": "none" });
    }
    const stream = createReadStream(path, { start, end });
    res.on("close", () => {
      if (!res.writableFinished) server.aborted++;
      stream.destroy();
    });
    stream.pipe(res);
  };
}

/** Answers a redirect to `location` (absolute, or relative to this server). */
export function redirectRoute(location: () => string, status = 302): Route {
  return (_req, res) => {
    res.writeHead(status, { location: location() }).end();
  };
}
