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
export { DEFAULT_BODY_LIMIT, HttpContext, PayloadTooLargeError } from "./http/context.js";
export { type Handler, type Middleware, Router } from "./http/router.js";
export {
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
export { freePort, isPidAlive } from "./process-utils.js";
