import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { NotFoundError, RbeeError, toRbeeError } from "@rbee/contract";
import type { Logger } from "pino";
import type { DaemonMetrics } from "../metrics.js";
import { HttpContext } from "./context.js";
import type { Middleware, Router } from "./router.js";

export interface HttpServerOptions {
  router: Router;
  log: Logger;
  metrics?: DaemonMetrics;
  /** Run for every matched request before its route's own middleware. */
  before?: Middleware[];
  /** Routes logged at debug instead of info (health checks, scrapes). */
  quietRoutes?: readonly string[];
}

export class MethodNotAllowedError extends RbeeError {
  constructor(method: string, path: string, allowed: string[]) {
    super(`${method} is not allowed on ${path}; use ${allowed.join(" or ")}`, {
      statusCode: 405,
      code: "method_not_allowed",
      details: { allowed },
    });
  }
}

/** Writes an error as the response, or as the stream's terminal `error` event if a stream started. */
export function writeError(ctx: HttpContext, err: RbeeError): void {
  const stream = ctx.stream;
  if (stream) {
    if (!stream.closed) {
      void stream.send("error", { code: err.code, message: err.message }).finally(() => stream.close());
    }
    return;
  }
  if (ctx.res.headersSent) {
    ctx.res.destroy();
    return;
  }
  const headers: Record<string, string | number> = {};
  if (err.retryAfterSeconds !== undefined) headers["retry-after"] = Math.max(1, Math.ceil(err.retryAfterSeconds));
  if (err.statusCode === 401) headers["www-authenticate"] = 'Bearer realm="rbee"';
  ctx.send(err.statusCode, err.toBody(), headers);
}

/**
 * A node:http server around a Router: request ids, one log line per request, metrics,
 * and one place (here) where thrown errors become HTTP responses.
 */
export class HttpServer {
  readonly server: Server;
  #options: HttpServerOptions;
  #quiet: Set<string>;

  constructor(options: HttpServerOptions) {
    this.#options = options;
    this.#quiet = new Set(options.quietRoutes ?? []);
    this.server = createServer((req, res) => {
      void this.#handle(req, res);
    });
    this.server.keepAliveTimeout = 65_000;
    this.server.headersTimeout = 66_000;
    this.server.requestTimeout = 0;
    this.server.on("clientError", (err: NodeJS.ErrnoException, socket) => {
      if (err.code === "ECONNRESET" || !socket.writable) {
        socket.destroy();
        return;
      }
      const body = JSON.stringify(
        new RbeeError(`malformed HTTP request: ${err.message}`, { statusCode: 400, code: "bad_request" }).toBody(),
      );
      socket.end(
        `HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    });
  }

  /** Listens on `host:port` (port 0 picks a free one) and resolves the bound address. */
  listen(port: number, host: string): Promise<{ port: number; host: string; url: string }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once("error", onError);
      this.server.listen(port, host, () => {
        this.server.off("error", onError);
        const addr = this.server.address() as AddressInfo;
        const urlHost = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
        resolve({ port: addr.port, host: addr.address, url: `http://${urlHost}:${addr.port}` });
      });
    });
  }

  /** Stops accepting connections and waits for open responses to finish; idle keep-alive sockets close at once. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) {
        resolve();
        return;
      }
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }

  /** Destroys every open connection (after a grace period ran out). */
  destroyConnections(): void {
    this.server.closeAllConnections();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = (req.headers["x-request-id"] as string | undefined)?.slice(0, 128) || randomUUID();
    res.setHeader("x-request-id", requestId);
    const ctx = new HttpContext(req, res, requestId);
    const { log, metrics, router } = this.#options;
    try {
      const match = router.match(ctx.method, ctx.url.pathname);
      if (match.route === undefined) {
        if (match.allowed.length > 0) throw new MethodNotAllowedError(ctx.method, ctx.url.pathname, match.allowed);
        throw new NotFoundError(`no route for ${ctx.method} ${ctx.url.pathname}`, "route_not_found");
      }
      ctx.route = match.route.pattern;
      ctx.params = match.params;
      for (const mw of this.#options.before ?? []) await mw(ctx);
      for (const mw of match.route.before) await mw(ctx);
      await match.route.handler(ctx);
    } catch (thrown) {
      const err = toRbeeError(thrown);
      // a bug gets its stack; an expected 5xx (no memory, a worker gone, shutting down) one line
      if (err.code === "internal_error")
        log.error({ err: thrown, request_id: requestId, route: ctx.route }, "request failed");
      else if (err.statusCode >= 500)
        log.warn({ request_id: requestId, route: ctx.route, code: err.code, message: err.message }, "request failed");
      writeError(ctx, err);
      ctx.logFields.error_code = err.code;
    } finally {
      ctx.stream?.close();
      if (!res.writableEnded && !res.headersSent) {
        ctx.send(500, toRbeeError(new Error("handler sent no response")).toBody());
      }
    }
    const seconds = (performance.now() - ctx.startedAt) / 1000;
    const status = res.statusCode;
    metrics?.httpRequests.inc({ route: ctx.route, method: ctx.method, status: String(status) });
    metrics?.httpDuration.observe({ route: ctx.route, method: ctx.method }, seconds);
    const level = this.#quiet.has(ctx.route) && status < 400 ? "debug" : "info";
    log[level](
      {
        request_id: requestId,
        method: ctx.method,
        path: ctx.url.pathname,
        status,
        duration_ms: Math.round(seconds * 10_000) / 10,
        ...ctx.logFields,
      },
      "request",
    );
  }
}
