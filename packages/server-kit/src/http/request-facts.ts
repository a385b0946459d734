/**
 * Facts about the request being served that middleware learnt (who the caller is), on its
 * `HttpContext` as `ctx.facts`. Code that acts for the request gets them from its handler, passed
 * down by hand: an AsyncLocalStorage would carry them by itself, but on Node 20 and 22 it turns on
 * promise hooks for the whole process, a measurable share of every request's cost.
 */
export interface RequestFacts {
  /** The caller is the cluster's administrator: it showed the cluster token, or the daemon is open (no keys). */
  admin?: boolean;
}
