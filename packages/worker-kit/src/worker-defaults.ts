/** Requests a worker generates at the same time when it is not told (`--parallel`). */
export const DEFAULT_PARALLEL = 4;

/** The context per sequence a worker takes when it is not told (`--ctx-size`): the model's own, at most this. */
export const MAX_DEFAULT_CONTEXT = 4096;

/** Tokens of context per sequence by default: the model's training context, at most MAX_DEFAULT_CONTEXT. */
export function defaultContextSize(trainContext: number): number {
  return trainContext > 0 ? Math.min(trainContext, MAX_DEFAULT_CONTEXT) : MAX_DEFAULT_CONTEXT;
}
