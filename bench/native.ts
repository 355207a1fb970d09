/**
 * The Rust core through its Node binding, loaded defensively: the benchmark must run (and say
 * why a row is unavailable) while the binding is missing, unbuilt, or its API still changing.
 *
 * The types below are the intended batch API as the benchmark uses it, not the generated
 * `native/index.d.ts`; every function is checked at run time before use.
 */
import fs from "node:fs";
import path from "node:path";
import { message, type Maybe } from "./harness";

/** One rejected message of a decoded batch. */
export interface NativeReject {
  record: number;
  reason: string;
  offset: number;
}

/** What `FixDecoder.decodeBatch` returns (the fields the benchmark reads). */
export interface NativeDecodedBatch {
  /** Packed trades, ready for `Engine.applyBatch`. */
  batch: Buffer;
  symbols: string[];
  records: number;
  messages: number;
  valid: number;
  trades: number;
  rejects: NativeReject[];
}

export interface NativeFixDecoder {
  decodeBatch(
    payload: Buffer,
    offsets: Uint32Array,
    seqs: Float64Array | null,
    source: string,
  ): NativeDecodedBatch;
}

export interface NativeApplyResult {
  applied?: number;
  anomalies?: unknown[];
  /** Bars closed by the batch (queued in the engine for `drainClosed`). */
  closed?: number;
}

export interface NativeEngine {
  applyBatch(batch: Buffer, nowMs: number): NativeApplyResult;
}

interface Binding {
  FixDecoder?: unknown;
  Engine?: unknown;
  crc32?: unknown;
  verifyCrc32?: unknown;
  verifyCrc32Batch?: unknown;
}

/** The crc32 header checks of the binding: record by record, and a batch in one call. */
export interface NativeCrc {
  crc32: (buf: Buffer) => number;
  verifyCrc32: (payload: Buffer, header: Buffer) => boolean;
  verifyCrc32Batch: (
    payload: Buffer,
    offsets: Uint32Array,
    headers: Buffer,
    headerOffsets: Uint32Array,
  ) => Uint32Array;
}

/** The binding's crc32 checks, or why they are missing. */
export function nativeCrc(root: string): Maybe<NativeCrc> {
  const binding = loadBinding(root);
  if (!binding.ok) return binding;
  const b = binding.value;
  if (
    typeof b.crc32 !== "function" ||
    typeof b.verifyCrc32 !== "function" ||
    typeof b.verifyCrc32Batch !== "function"
  )
    return { ok: false, reason: "the binding has no crc32 / verifyCrc32 / verifyCrc32Batch" };
  return { ok: true, value: b as unknown as NativeCrc };
}

/** Loads `native/index.js`, or says why it cannot. */
export function loadBinding(root: string): Maybe<Binding> {
  const file = path.join(root, "native", "index.js");
  if (!fs.existsSync(file))
    return { ok: false, reason: "native/index.js is missing (npm run build:native)" };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return { ok: true, value: require(file) as Binding };
  } catch (error) {
    return { ok: false, reason: `loading native/index.js failed: ${message(error)}` };
  }
}

/** A `FixDecoder` whose MDEntryTypes are `mdEntryTypes`, or why there is none. */
export function nativeDecoder(root: string, mdEntryTypes: string): Maybe<NativeFixDecoder> {
  const binding = loadBinding(root);
  if (!binding.ok) return binding;
  const Ctor = binding.value.FixDecoder;
  if (typeof Ctor !== "function") return { ok: false, reason: "the binding has no FixDecoder" };
  try {
    const decoder = new (Ctor as new (options: object) => NativeFixDecoder)({ mdEntryTypes });
    if (typeof decoder.decodeBatch !== "function")
      return { ok: false, reason: "FixDecoder has no decodeBatch" };
    return { ok: true, value: decoder };
  } catch (error) {
    return { ok: false, reason: `new FixDecoder failed: ${message(error)}` };
  }
}

/** A fresh `Engine` with bars and the detector on, or why there is none. */
export function nativeEngine(root: string): Maybe<NativeEngine> {
  const binding = loadBinding(root);
  if (!binding.ok) return binding;
  const Ctor = binding.value.Engine;
  if (typeof Ctor !== "function") return { ok: false, reason: "the binding has no Engine" };
  try {
    const engine = new (Ctor as new (options: object) => NativeEngine)({
      bars: true,
      detector: true,
    });
    if (typeof engine.applyBatch !== "function")
      return { ok: false, reason: "Engine has no applyBatch" };
    return { ok: true, value: engine };
  } catch (error) {
    return { ok: false, reason: `new Engine failed: ${message(error)}` };
  }
}
