export { CLUSTER_TOKEN_FILE, loadOrCreateClusterToken, readClusterToken } from "./cluster-token.js";
export * from "./env.js";
export { type BearerAuthOptions, bearerAuth, bearerToken, secretEquals } from "./http/auth.js";
export {
  type ClientRequestOptions,
  HttpStatusError,
  readBody,
  requestJson,
  sendRequest,
  streamSse,
  toStatusError,
  UnreachableError,
} from "./http/client.js";
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
export { type RequestFacts, requestFacts, withRequestFacts } from "./http/request-facts.js";
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
export { formatSseFrame, SseWriter } from "./http/sse.js";
export { StaticFiles, type StaticFilesOptions } from "./http/static-files.js";
export {
  describeTlsFailure,
  extraCa,
  httpsAgentFor,
  keyFileIsShared,
  loadServerTls,
  type ServerTls,
  TLS_CA_ENV,
  TLS_CERT_ENV,
  TLS_KEY_ENV,
  TlsConfigError,
  type TlsFiles,
  TlsTrustError,
  tlsEnv,
  tlsFilesFrom,
} from "./http/tls.js";
export { createLogger, type Logger, type LoggerOptions, silentLogger } from "./log.js";
export { Counter, DaemonMetrics, Gauge, Histogram, Registry } from "./metrics.js";
export { cacheDir, cachePaths, configDir, enginesDir } from "./paths.js";
export { freePort, isPidAlive, isWildcardHost } from "./process-utils.js";
