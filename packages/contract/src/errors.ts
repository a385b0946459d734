import type { ErrorBody } from "./error-body.js";
import { isRecord, isString } from "./read-checks.js";

export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "rate_limit_error"
  | "server_error"
  | "service_unavailable_error";

export interface RbeeErrorOptions {
  statusCode: number;
  code: string;
  type?: ErrorType;
  /** The request field at fault, for 400s. */
  param?: string | null;
  retryable?: boolean;
  /** Seconds after which a retry may succeed; sent as `Retry-After`. */
  retryAfterSeconds?: number;
  /** Facts that explain the failure (sizes, limits, names); logged and returned to callers. */
  details?: Record<string, unknown>;
  cause?: unknown;
}

function defaultType(status: number): ErrorType {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  if (status === 503) return "service_unavailable_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

/**
 * The base of every error a caller can act on. The message says what failed, why, and what to do.
 */
export class RbeeError extends Error {
  readonly statusCode: number;
  readonly code: string;
  readonly type: ErrorType;
  readonly param: string | null;
  readonly retryable: boolean;
  readonly retryAfterSeconds: number | undefined;
  readonly details: Record<string, unknown>;

  constructor(message: string, options: RbeeErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.statusCode = options.statusCode;
    this.code = options.code;
    this.type = options.type ?? defaultType(options.statusCode);
    this.param = options.param ?? null;
    this.retryable = options.retryable ?? options.statusCode >= 500;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.details = options.details ?? {};
  }

  toBody(): ErrorBody {
    return { error: { message: this.message, type: this.type, code: this.code, param: this.param } };
  }
}

/** A request that does not match its schema: the message names the field. */
export class ValidationError extends RbeeError {
  constructor(message: string, param: string | null = null, details?: Record<string, unknown>) {
    super(message, { statusCode: 400, code: "invalid_request", param, details });
  }
}

export class NotFoundError extends RbeeError {
  constructor(message: string, code = "not_found") {
    super(message, { statusCode: 404, code });
  }
}

export class ModelNotFoundError extends RbeeError {
  constructor(
    readonly model: string,
    hint = "list the models that can be served with `rbee model ls` or GET /v1/models",
  ) {
    super(`model '${model}' was not found: ${hint}`, {
      statusCode: 404,
      code: "model_not_found",
      type: "invalid_request_error",
      param: "model",
      details: { model },
    });
  }
}

export class PromptTooLongError extends RbeeError {
  constructor(
    readonly promptTokens: number,
    readonly contextSize: number,
    /** The count is a lower bound: the prompt was refused before it was tokenized in full. */
    atLeast = false,
  ) {
    super(
      `the prompt is ${atLeast ? "at least " : ""}${promptTokens} tokens but the context holds ${contextSize}: shorten the prompt or start the worker with a larger --ctx-size`,
      {
        statusCode: 400,
        code: "context_length_exceeded",
        param: "prompt",
        details: { prompt_tokens: promptTokens, context_size: contextSize },
      },
    );
  }
}

export class QueueFullError extends RbeeError {
  constructor(queued: number, limit: number, retryAfterSeconds = 1) {
    super(
      `too many requests: ${queued} are already waiting and the queue holds ${limit}; retry after ${retryAfterSeconds} s`,
      {
        statusCode: 429,
        code: "queue_full",
        retryable: true,
        retryAfterSeconds,
        details: { queued, limit },
      },
    );
  }
}

export class ShuttingDownError extends RbeeError {
  constructor(what = "this worker") {
    super(`${what} is shutting down and takes no new requests; send the request to another worker`, {
      statusCode: 503,
      code: "shutting_down",
      retryable: true,
      retryAfterSeconds: 1,
    });
  }
}

export class NotReadyError extends RbeeError {
  constructor(status: string) {
    super(`the worker is not ready (status ${status}); wait for GET /health to answer 200`, {
      statusCode: 503,
      code: "not_ready",
      retryable: true,
      retryAfterSeconds: 1,
    });
  }
}

export class UnauthorizedError extends RbeeError {
  constructor(message: string) {
    super(message, { statusCode: 401, code: "invalid_api_key" });
  }
}

export class DeviceNotFoundError extends RbeeError {
  constructor(
    readonly device: string,
    available: readonly string[],
  ) {
    super(`device '${device}' was not found on this machine; devices here: ${available.join(", ") || "none"}`, {
      statusCode: 400,
      code: "device_not_found",
      param: "device",
      details: { device, available },
    });
  }
}

export class InsufficientMemoryError extends RbeeError {
  constructor(message: string, details: Record<string, unknown>) {
    super(message, { statusCode: 503, code: "insufficient_memory", retryable: false, details });
  }
}

export class WorkerUnavailableError extends RbeeError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(message, { statusCode: 503, code: "worker_unavailable", retryable: true, retryAfterSeconds: 1, details });
  }
}

/**
 * Reads an error body as `ErrorBody` does, without zod (for clients that load no schemas):
 * undefined when `value` is not one. Extra fields pass.
 */
export function readErrorBody(value: unknown): ErrorBody | undefined {
  if (!isRecord(value) || !isRecord(value.error)) return undefined;
  const e = value.error;
  const stringOrNull = (v: unknown) => isString(v) || v === null;
  if (!isString(e.message) || !isString(e.type) || !stringOrNull(e.code) || !stringOrNull(e.param)) return undefined;
  return value as ErrorBody;
}

/** Turns anything thrown into an RbeeError, keeping the original as the cause. */
export function toRbeeError(err: unknown): RbeeError {
  if (err instanceof RbeeError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new RbeeError(`internal error: ${message}`, { statusCode: 500, code: "internal_error", cause: err });
}
