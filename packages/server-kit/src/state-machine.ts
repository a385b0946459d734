/** For each state, the states it may move to. A state missing from its own list cannot move to itself. */
export type TransitionTable<S extends string> = Readonly<Record<S, readonly S[]>>;

/** A move that a transition table does not allow: a bug in the code that asked for it, not a user error. */
export class InvalidTransitionError extends Error {
  readonly what: string;
  readonly from: string;
  readonly to: string;

  constructor(what: string, from: string, to: string) {
    super(`${what} cannot move from ${from} to ${to}`);
    this.name = "InvalidTransitionError";
    this.what = what;
    this.from = from;
    this.to = to;
  }
}

/**
 * One state, changed only by {@link move}, which the table guards: the one place where the life
 * cycle of a process or a worker is written down, and the one place it changes.
 */
export class StateMachine<S extends string> {
  readonly #what: string;
  readonly #table: TransitionTable<S>;
  #state: S;

  /** `what` names the thing whose state this is, in errors ("worker llm-1"). */
  constructor(what: string, table: TransitionTable<S>, initial: S) {
    this.#what = what;
    this.#table = table;
    this.#state = initial;
  }

  get state(): S {
    return this.#state;
  }

  /** Whether the table allows moving from the current state to `to`. */
  can(to: S): boolean {
    return this.#table[this.#state].includes(to);
  }

  /**
   * Moves to `to` and returns the state it left.
   * @throws InvalidTransitionError when the table does not allow it (the state is left as it was).
   */
  move(to: S): S {
    const from = this.#state;
    if (!this.can(to)) throw new InvalidTransitionError(this.#what, from, to);
    this.#state = to;
    return from;
  }
}
