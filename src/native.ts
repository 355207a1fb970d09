/**
 * Loads the Rust core (napi-rs addon built from `native/`).
 *
 * The typings come from the generated, committed `native/index.d.ts`; the path is resolved from
 * the repository root so that the same code runs from `src/` (tests) and `dist/src/` (built).
 */
import fs from "node:fs";
import path from "node:path";
import type * as Binding from "../native/index";
import { ERR_BAD_BATCH } from "./errors";

function findRoot(start: string): string {
  let dir = start;
  for (;;) {
    if (fs.existsSync(path.join(dir, "native", "index.js"))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir)
      throw new Error(`cannot find native/index.js above ${start}; run npm run build`);
    dir = parent;
  }
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const native = require(
  path.join(findRoot(__dirname), "native", "index.js"),
) as typeof Binding;

export type { Binding };

/**
 * The `code` of each class of error the binding throws; `native/node/src/error.rs` lists the same
 * strings. A malformed batch shares its code with the service error it becomes (`badBatch`).
 * Errors napi-rs raises itself keep napi's codes: `InvalidArg` for an argument of the wrong JS
 * type, `GenericFailure` for a panic caught at the boundary.
 */
export const NATIVE_ERRORS = {
  /** A packed trade batch that does not parse: the sender's fault. */
  badBatch: ERR_BAD_BATCH,
  /** An exported symbol state that does not import. */
  badState: "ERR_BAD_STATE",
  /** Engine or decoder options that do not parse or are out of range. */
  badConfig: "ERR_BAD_CONFIG",
  /** Another argument that does not parse or is out of range (times, offsets, intervals …). */
  badArgument: "ERR_BAD_ARGUMENT",
  /** The core broke its own contract: a bug. */
  internal: "ERR_NATIVE_INTERNAL",
} as const;

export type NativeErrorCode = (typeof NATIVE_ERRORS)[keyof typeof NATIVE_ERRORS];

/** Whether `err` is an error the binding threw with `code`. */
export function isNativeError(
  err: unknown,
  code: NativeErrorCode,
): err is Error & { code: NativeErrorCode } {
  // Not `instanceof Error`: the addon may create its errors in another realm (Jest's sandbox).
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === code;
}
