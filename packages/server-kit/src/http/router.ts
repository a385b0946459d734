import type { HttpContext } from "./context.js";

export type Handler = (ctx: HttpContext) => Promise<void> | void;
/** A middleware runs before a handler; it throws to refuse the request. */
export type Middleware = (ctx: HttpContext) => Promise<void> | void;

interface Route {
  method: string;
  pattern: string;
  segments: string[];
  handler: Handler;
  before: Middleware[];
}

export interface RouteMatch {
  route: Route;
  params: Record<string, string>;
}

/** A small method + path router; `:name` segments become params. */
export class Router {
  #routes: Route[] = [];
  /** Matches of routes without params, by method and path: the hot routes are found without a scan. */
  #staticMatches = new Map<string, RouteMatch>();

  add(method: string, pattern: string, handler: Handler, before: Middleware[] = []): this {
    this.#routes.push({ method: method.toUpperCase(), pattern, segments: split(pattern), handler, before });
    this.#staticMatches.clear();
    return this;
  }

  get(pattern: string, handler: Handler, before?: Middleware[]): this {
    return this.add("GET", pattern, handler, before);
  }

  post(pattern: string, handler: Handler, before?: Middleware[]): this {
    return this.add("POST", pattern, handler, before);
  }

  delete(pattern: string, handler: Handler, before?: Middleware[]): this {
    return this.add("DELETE", pattern, handler, before);
  }

  /** Every route, in the order added (so that a security test can walk them all). */
  routes(): ReadonlyArray<{ method: string; pattern: string }> {
    return this.#routes.map((r) => ({ method: r.method, pattern: r.pattern }));
  }

  /** Finds the route; `allowed` lists the methods the path has when the method does not match. */
  match(method: string, path: string): RouteMatch | { route: undefined; allowed: string[] } {
    const key = `${method} ${path}`;
    const known = this.#staticMatches.get(key);
    if (known !== undefined) return { route: known.route, params: {} };
    const found = this.#scan(method, path);
    if (found.route !== undefined && !found.route.pattern.includes("/:")) {
      // bounded: odd spellings of a path (extra slashes) must not grow it without end
      if (this.#staticMatches.size >= 1024) this.#staticMatches.clear();
      this.#staticMatches.set(key, found);
    }
    return found;
  }

  #scan(method: string, path: string): RouteMatch | { route: undefined; allowed: string[] } {
    const segments = split(path);
    const allowed: string[] = [];
    for (const route of this.#routes) {
      const params = matchSegments(route.segments, segments);
      if (params === undefined) continue;
      if (route.method === method || (method === "HEAD" && route.method === "GET")) return { route, params };
      allowed.push(route.method);
    }
    return { route: undefined, allowed };
  }
}

function split(path: string): string[] {
  return path.split("/").filter((s) => s !== "");
}

function matchSegments(pattern: string[], path: string[]): Record<string, string> | undefined {
  if (pattern.length !== path.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i] as string;
    const s = path[i] as string;
    if (p.startsWith(":")) {
      try {
        params[p.slice(1)] = decodeURIComponent(s);
      } catch {
        return undefined;
      }
    } else if (p !== s) return undefined;
  }
  return params;
}
