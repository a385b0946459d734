// the client's half (HTTP client, TLS trust, cluster token, paths, environment) is also `@rbee/server-kit/client`
export * from "./client-entry.js";
export { type BearerAuthOptions, bearerAuth, bearerToken, matchesSecret } from "./http/auth.js";
export {
  DEFAULT_BODY_LIMIT,
  HttpContext,
  isJsonContentType,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
} from "./http/context.js";
export {
  ForbiddenRequestError,
  guardFromEnv,
  hostAllowed,
  jsonDepthExceeds,
  listFromEnv,
  MAX_JSON_DEPTH,
  type RequestGuardOptions,
} from "./http/guard.js";
export type { RequestFacts } from "./http/request-facts.js";
export { type Handler, type Middleware, Router } from "./http/router.js";
export {
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  type ErrorWriter,
  HttpServer,
  type HttpServerOptions,
  MethodNotAllowedError,
  writeError,
} from "./http/server.js";
export { formatSseFrame, SseWriter, whenDrained } from "./http/sse.js";
export { StaticFiles, type StaticFilesOptions } from "./http/static-files.js";
export { httpsAgentFor, keyFileIsShared, loadServerTls, type ServerTls } from "./http/tls.js";
export { createLogger, type Logger, type LoggerOptions, REQUEST_LOG_MSG, silentLogger } from "./log.js";
export { Counter, DaemonMetrics, Gauge, Histogram, Registry } from "./metrics.js";
export { randomHex } from "./random-id.js";
export { InvalidTransitionError, StateMachine, type TransitionTable } from "./state-machine.js";
