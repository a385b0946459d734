/**
 * `@rbee/server-kit/client`: what a client of the daemons needs (HTTP client, TLS trust, the cluster
 * token, paths, environment), without the HTTP server, the logger (pino) and the metrics
 * (prom-client), so that a command line that only talks to a daemon starts faster.
 */
export { CLUSTER_TOKEN_FILE, loadOrCreateClusterToken, readClusterToken } from "./cluster-token.js";
export * from "./env.js";
export {
  type ClientRequestOptions,
  HttpStatusError,
  linkSignals,
  readBody,
  requestJson,
  requestJsonWith,
  sendRequest,
  streamSse,
  toStatusError,
  UnreachableError,
} from "./http/client.js";
export {
  describeTlsFailure,
  extraCa,
  TLS_CA_ENV,
  TLS_CERT_ENV,
  TLS_KEY_ENV,
  TlsConfigError,
  type TlsFiles,
  TlsTrustError,
  tlsEnv,
  tlsFilesFrom,
} from "./http/tls-config.js";
export { cacheDir, cachePaths, configDir, enginesDir } from "./paths.js";
export { freePort, isPidAlive, isWildcardHost } from "./process-utils.js";
