/** Where the FIX corpora live: the shared data folder beside the repository (see README). */
import { existsSync } from "node:fs";
import path from "node:path";
import { packRecords } from "../../services/ingest/sources/source";
import { encodeFix, fixTimestamp } from "../../src/fix/encode";

const CANDIDATES = [
  process.env.TICKSTREAM_FIX_DATA,
  path.join(__dirname, "..", "data", "fix"),
  path.join(__dirname, "..", "..", "..", "shared", "data", "fix"),
].filter((p): p is string => p !== undefined);

export const FIX_DATA =
  CANDIDATES.find((p) => existsSync(path.join(p, "hffix-fix.5.0.set.1.fix"))) ??
  CANDIDATES[CANDIDATES.length - 1]!;

export const fixFile = (name: string): string => path.join(FIX_DATA, name);

/** A FIX 4.4 ExecutionReport for one fill (150=F): the trade message most tests feed in. */
export function fixFill(
  execId: string,
  symbol: string,
  price: string,
  qty: string,
  atMs: number,
): Buffer {
  return encodeFix("FIX.4.4", "8", [
    [17, execId],
    [31, price],
    [32, qty],
    [55, symbol],
    [60, fixTimestamp(atMs)],
    [150, "F"],
  ]);
}

/**
 * The `parser.parse` parameters for `records`, as ingest packs them: consecutive seqs from
 * `firstSeq` (a contiguous run of `source`).
 */
export function rawBatch(source: string, records: readonly Buffer[], firstSeq = 0) {
  const { payload, offsets, seqs } = packRecords(
    source,
    records,
    records.map((_, i) => firstSeq + i),
    records.map(() => 0),
  );
  return { source, payload, offsets, seqs };
}
