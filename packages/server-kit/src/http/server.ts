import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { NotFoundError, RbeeError, toRbeeError } from "@rbee/contract";
import type { Logger } from "pino";
import { envInt } from "../env.js";
import { REQUEST_LOG_MSG } from "../log.js";
import type { DaemonMetrics } from "../metrics.js";
import { HttpContext } from "./context.js";
import { guardFromEnv, guardRequest, type RequestGuardOptions } from "./guard.js";
import type { Middleware, Router } from "./router.js";
import type { ServerTls } from "./tls.js";

export interface HttpServerOptions {
  router: Router;
  log: Logger;
  metrics?: DaemonMetrics;
  /** Run for every matched request before its route's own middleware. */
  before?: Middleware[];
  /** Routes logged at debug instead of info (health checks, scrapes). */
  quietRoutes?: readonly string[];
  /** Serve HTTPS with this certificate and key; plain HTTP when absent. */
  tls?: ServerTls;
  /**
   * The error writer for a request, by its path: APIs with an error shape of their own (Ollama's
   * `/api/*`, Anthropic's `/v1/messages`) answer in it, unmatched paths and refused keys included.
   * Default (undefined): `writeError`, rbee's own (OpenAI's) shape.
   */
  errorWriter?: (ctx: HttpContext) => ErrorWriter | undefined;
  /** Origin and Host checks (see guard.ts); RBEE_ALLOWED_ORIGINS and RBEE_ALLOWED_HOSTS add to them. */
  guard?: RequestGuardOptions;
  /**
   * How long a client may take to send a request's headers, and the whole request with its body,
   * before it is answered 408 and disconnected. Defaults: RBEE_HEADERS_TIMEOUT_MS (15 s) and
   * RBEE_REQUEST_TIMEOUT_MS (60 s).
   */
  timeouts?: { headersMs?: number; requestMs?: number };
}

/** Writes an error as the response (or the end of a stream that already started). */
export type ErrorWriter = (ctx: HttpContext, err: RbeeError) => void;

/** Default time to receive a request's headers. */
export const DEFAULT_HEADERS_TIMEOUT_MS = 15_000;
/** Default time to receive a whole request, body included (16 MB at 2 Mbit/s). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;

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

/** A response in plain HTTP for a client that sent plain HTTP to an HTTPS port, before the socket closes. */
function plainHttpRefusal(message: string): string {
  const body = JSON.stringify(new RbeeError(message, { statusCode: 400, code: "https_required" }).toBody());
  return `HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}

/**
 * A node:http (or, given `tls`, node:https) server around a Router: request ids, one log line per
 * request, metrics, and one place (here) where thrown errors become HTTP responses.
 */
export class HttpServer {
  readonly server: Server | HttpsServer;
  #options: HttpServerOptions;
  #quiet: Set<string>;
  #guard: ReturnType<typeof guardFromEnv>;

  constructor(options: HttpServerOptions) {
    this.#options = options;
    this.#quiet = new Set(options.quietRoutes ?? []);
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      void this.#handle(req, res);
    };
    this.#guard = guardFromEnv(options.guard);
    const requestMs = options.timeouts?.requestMs ?? envInt("RBEE_REQUEST_TIMEOUT_MS", DEFAULT_REQUEST_TIMEOUT_MS, 1);
    const headersMs = Math.min(
      requestMs,
      options.timeouts?.headersMs ?? envInt("RBEE_HEADERS_TIMEOUT_MS", DEFAULT_HEADERS_TIMEOUT_MS, 1),
    );
    // Node checks both timeouts every connectionsCheckingInterval (30 s by default): check often
    // enough that a short timeout holds
    const serverOptions = { connectionsCheckingInterval: Math.max(100, Math.min(1000, headersMs / 4)) };
    this.server = options.tls
      ? this.#httpsServer(options.tls, handler, serverOptions)
      : createServer(serverOptions, handler);
    // a trickled request (headers or body) is answered 408 and cut off; responses (streams) are not limited
    this.server.headersTimeout = headersMs;
    this.server.requestTimeout = requestMs;
    this.server.keepAliveTimeout = 65_000;
    this.server.on("clientError", (err: NodeJS.ErrnoException, socket) => {
      if (err.code === "ECONNRESET" || !socket.writable) {
        socket.destroy();
        return;
      }
      if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") {
        const body = JSON.stringify(
          new RbeeError("the request (its headers or its body) took too long to arrive; send it at once", {
            statusCode: 408,
            code: "request_timeout",
          }).toBody(),
        );
        socket.end(
          `HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
        );
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

  get secure(): boolean {
    return this.#options.tls !== undefined;
  }

  /**
   * An https server. A client that speaks plain HTTP to it gets a 400 that says to use https://
   * (written on the raw socket, as OpenSSL recognised the request), not a bare reset; a failed
   * handshake (a client that does not trust the certificate) is logged.
   */
  #httpsServer(
    tls: ServerTls,
    handler: (req: IncomingMessage, res: ServerResponse) => void,
    extra: { connectionsCheckingInterval: number },
  ): HttpsServer {
    const server = createHttpsServer({ cert: tls.cert, key: tls.key, ...extra }, handler);
    server.on("tlsClientError", (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      // the raw TCP socket under the TLS one; Node keeps it as `_parent` (undocumented, so checked)
      const raw = (socket as TLSSocket & { _parent?: Socket })._parent;
      if (err.code === "ERR_SSL_HTTP_REQUEST" && raw && !raw.destroyed) {
        const port = (server.address() as AddressInfo | null)?.port;
        raw.end(
          plainHttpRefusal(`this port speaks HTTPS only: use https:// (e.g. https://<host>:${port ?? "<port>"})`),
        );
        return;
      }
      if (err.code === "ECONNRESET") return; // a port probe, or a client that went away
      this.#options.log.info(
        { remote: socket.remoteAddress, code: err.code, err: err.message },
        "TLS handshake failed (does the client trust this certificate?)",
      );
    });
    return server;
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
        const scheme = this.secure ? "https" : "http";
        resolve({ port: addr.port, host: addr.address, url: `${scheme}://${urlHost}:${addr.port}` });
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
      const corsOrigin = guardRequest(ctx, this.#guard);
      if (corsOrigin !== undefined) {
        res.setHeader("access-control-allow-origin", corsOrigin);
        res.setHeader("vary", "Origin");
        if (ctx.method === "OPTIONS") {
          res.writeHead(204, {
            "access-control-allow-methods": "GET, POST, DELETE, OPTIONS",
            "access-control-allow-headers":
              ctx.header("access-control-request-headers") ?? "authorization, content-type",
            "access-control-max-age": "600",
          });
          res.end();
          return;
        }
      }
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
      (this.#options.errorWriter?.(ctx) ?? writeError)(ctx, err);
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
      REQUEST_LOG_MSG,
    );
  }
}
