/**
 * The version of the wire protocol between queen, hives and workers.
 * Bump it when a message changes in a way an older peer would misread;
 * peers compare it and refuse a mismatch with a message that says which side to upgrade.
 */
export const PROTOCOL_VERSION = 1;

/** Default ports, one per process (DESIGN.md). Every one has a flag and an environment override. */
export const DEFAULT_PORTS = {
  queen: 7833,
  hive: 7835,
  workerBase: 9300,
  catalogServer: 8787,
} as const;

/** Default heartbeat interval for workers and hives, in milliseconds. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 5_000;

/** How many images one request may ask for. */
export const MAX_IMAGES_PER_REQUEST = 8;

/**
 * What a safe identifier looks like (worker, hive and catalog ids: they end up in file names, URLs
 * and log lines): lower-case letters, digits, `.`, `_` and `-`, not starting with a dot, at most
 * 128 characters. The `SafeId` schema checks this; here it is for code that loads no schemas.
 */
export const SAFE_ID_PATTERN = /^[a-z0-9_-][a-z0-9._-]{0,127}$/;
/** Why an identifier is not safe, for people. */
export const SAFE_ID_RULE = "must be 1-128 characters of a-z, 0-9, '.', '_' or '-', and must not start with '.'";
