/**
 * Every error code Tickstream answers with, and the factory of each. Client mistakes are
 * `MoleculerClientError`s (4xx, never retried); transient failures are `MoleculerRetryableError`s
 * (retried by the broker's policy). Programmer errors stay plain `Error`s: they are bugs, and
 * retrying a bug helps nobody. A new code goes here, nowhere else.
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
export const ERR_WRONG_OWNER = "ERR_WRONG_OWNER";
export const ERR_UNKNOWN_MEMBER = "ERR_UNKNOWN_MEMBER";
export const ERR_TOO_MANY_STREAMS = "ERR_TOO_MANY_STREAMS";
export const ERR_URI_TOO_LONG = "ERR_URI_TOO_LONG";
/** Not thrown: the `code` of a WebSocket `error` message answering a message it cannot take. */
export const ERR_BAD_MESSAGE = "ERR_BAD_MESSAGE";

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

/** 401: the gateway's API key is set and the request does not carry it. */
export function unauthorized(): Errors.MoleculerClientError {
  return new Errors.MoleculerClientError(
    "missing or wrong X-API-Key header",
    401,
    ERR_UNAUTHORIZED,
  );
}

/** 414: the request URL is longer than the gateway reads. */
export function uriTooLong(maxBytes: number): Errors.MoleculerClientError {
  return new Errors.MoleculerClientError(
    `request URL longer than ${maxBytes} bytes`,
    414,
    ERR_URI_TOO_LONG,
  );
}

/** 503: this node serves as many streams (SSE and WebSocket) as it may. */
export function tooManyStreams(): Errors.MoleculerError {
  return new Errors.MoleculerError(
    "too many open streams on this node; retry later or on another node",
    503,
    ERR_TOO_MANY_STREAMS,
  );
}

/**
 * 409, retryable: this node does not hold the symbol's state (another does, it is moving, or this
 * node is leaving); the caller resolves the owner again and retries.
 */
export function wrongOwner(
  symbol: string,
  owner: string | undefined,
  why: string,
): Errors.MoleculerRetryableError {
  return new Errors.MoleculerRetryableError(
    `${why} (owner: ${owner ?? "none"})`,
    409,
    ERR_WRONG_OWNER,
    {
      symbol,
      owner,
    },
  );
}

/** 409, retryable: a release came from a node this one has not heard of as a member yet. */
export function unknownMember(
  self: string,
  from: string,
  service: string,
): Errors.MoleculerRetryableError {
  return new Errors.MoleculerRetryableError(
    `${self} does not know ${from} as a member of ${service} yet`,
    409,
    ERR_UNKNOWN_MEMBER,
    { from },
  );
}
