/**
 * Tickstream's coded errors. Client mistakes are `MoleculerClientError`s (4xx, never retried);
 * transient failures are `MoleculerRetryableError`s (5xx, retried by the broker's policy).
 * Programmer errors stay plain `Error`s: they are bugs, and retrying a bug helps nobody.
 */
import { Errors } from "moleculer";

export const ERR_UNKNOWN_SYMBOL = "ERR_UNKNOWN_SYMBOL";
export const ERR_BAD_PARAMETER = "ERR_BAD_PARAMETER";
export const ERR_UNAUTHORIZED = "ERR_UNAUTHORIZED";
export const ERR_NOT_READY = "ERR_NOT_READY";
export const ERR_NATIVE = "ERR_NATIVE";
export const ERR_BAD_BATCH = "ERR_BAD_BATCH";
export const ERR_HISTORY_UNAVAILABLE = "ERR_HISTORY_UNAVAILABLE";
export const ERR_CUSTODY_UNAVAILABLE = "ERR_CUSTODY_UNAVAILABLE";

/** 404: the symbol has never traded on this cluster (or left retention). */
export function unknownSymbol(symbol: string): Errors.MoleculerClientError {
  return new Errors.MoleculerClientError(`unknown symbol "${symbol}"`, 404, ERR_UNKNOWN_SYMBOL, {
    symbol,
  });
}

/**
 * 503: the symbol is not in memory and the history store cannot be read, so whether it exists is
 * unknown. Not retried by the broker: the store is retried by the history writer, and the client
 * may ask again.
 */
export function historyUnavailable(symbol: string, cause: unknown): Errors.MoleculerError {
  const err = new Errors.MoleculerError(
    `symbol "${symbol}" is not in memory and history is unavailable`,
    503,
    ERR_HISTORY_UNAVAILABLE,
    { symbol },
  );
  (err as Error).cause = cause;
  return err;
}

/** 422: a query parameter has the wrong form; the message names the parameter. */
export function badParameter(
  parameter: string,
  problem: string,
  value?: unknown,
): Errors.MoleculerClientError {
  return new Errors.MoleculerClientError(
    `parameter "${parameter}" ${problem}`,
    422,
    ERR_BAD_PARAMETER,
    {
      parameter,
      value,
    },
  );
}

/** 400: a batch handed between services is malformed (a bug or a version mismatch). */
export function badBatch(problem: string, cause?: unknown): Errors.MoleculerClientError {
  const err = new Errors.MoleculerClientError(`bad trade batch: ${problem}`, 400, ERR_BAD_BATCH, {
    problem,
  });
  if (cause !== undefined) (err as Error).cause = cause;
  return err;
}

/** 503: the custody store (JetStream KV) did not answer; retryable, nothing was applied. */
export function custodyUnavailable(cause: unknown): Errors.MoleculerRetryableError {
  const err = new Errors.MoleculerRetryableError(
    `custody store unavailable: ${(cause as Error).message}`,
    503,
    ERR_CUSTODY_UNAVAILABLE,
  );
  (err as Error).cause = cause;
  return err;
}

/** 503: the node is not ready yet (catching up); retryable. */
export function notReady(what: string): Errors.MoleculerRetryableError {
  return new Errors.MoleculerRetryableError(`not ready: ${what}`, 503, ERR_NOT_READY, { what });
}

/** 500: the native core reported an internal error (a caught panic); retryable once. */
export function nativeFailure(cause: unknown): Errors.MoleculerRetryableError {
  const err = new Errors.MoleculerRetryableError(
    `native core failure: ${(cause as Error).message}`,
    500,
    ERR_NATIVE,
  );
  (err as Error).cause = cause;
  return err;
}
