import { AsyncLocalStorage } from "node:async_hooks";

/**
 * Facts about the request being served, visible to everything that runs on its behalf (the
 * handler, what it awaits, a job it starts), without passing them down by hand: the HTTP server
 * runs every request in a fresh record, and middleware writes what it learnt (who the caller is).
 */
export interface RequestFacts {
  /** The caller is the cluster's administrator: it showed the cluster token, or the daemon is open (no keys). */
  admin?: boolean;
}

const storage = new AsyncLocalStorage<RequestFacts>();

/** Runs `fn` with a fresh record of request facts. */
export function withRequestFacts<T>(fn: () => T): T {
  return storage.run({}, fn);
}

/** The facts of the request this code runs for; undefined outside a request (timers, startup). */
export function requestFacts(): RequestFacts | undefined {
  return storage.getStore();
}
