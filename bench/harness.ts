/**
 * What every benchmark section shares: options, the measuring loop, result rows, ratios and
 * the printed table.
 *
 * A section is `{ key, title, run(options) }`; `bench/run.ts` runs the list in order, prints
 * each result's tables and writes `json` under `key` in `bench/results/latest.json`. Adding a
 * section (Kafka end to end, latency, two nodes, memory) is one entry in that list.
 */
import fs from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import v8 from "node:v8";
import vm from "node:vm";

export interface BenchOptions {
  /** `--quick`: shorter warm-up and runs, criterion results read rather than re-measured. */
  quick: boolean;
  /** Repository root (holds package.json and native/). */
  root: string;
  /** The FIX corpus (default: the JSE set in ../shared/data/fix). */
  dataFile: string;
  /** Messages per decodeBatch call / trades per applyBatch call. */
  batchSize: number;
  /** Warm-up per contender before measuring. */
  warmupMs: number;
  /** Minimum duration of one measured run (a run is one or more passes over the data). */
  runMs: number;
  /** Measured runs per contender (the median is reported; at least 5). */
  runs: number;
  /** Rust's own figures: `read` criterion's last results, `run` cargo bench first, or `skip`. */
  rust: "read" | "run" | "skip";
  /** Records pre-loaded into Kafka for the end-to-end sections (`--records`; default by mode). */
  records?: number;
  log: (line: string) => void;
}

/** One pass over a contender's data. */
export interface Pass {
  /** Messages or trades processed. */
  units: number;
  /** Time spent in the timed calls, ms. */
  busyMs: number;
  /** Longest single call (one batch), ms. */
  maxCallMs: number;
}

/** Median, min and max rate over the measured runs. */
export interface Measurement {
  perSec: number;
  min: number;
  max: number;
  runs: number;
  maxCallMs: number;
}

let gc: (() => void) | null | undefined;

/**
 * Runs a full garbage collection, so that a contender does not pay for the previous one's
 * garbage. `npm run bench` runs node without `--expose-gc`; the flag is set at run time.
 */
export function collectGarbage(): void {
  if (gc === undefined) {
    try {
      v8.setFlagsFromString("--expose-gc");
      gc = vm.runInNewContext("gc") as () => void;
    } catch {
      gc = null;
    }
  }
  gc?.();
}

/**
 * Collects garbage, runs `pass` for the warm-up, then `runs` times for at least `runMs` each,
 * and reports the median, min and max of units per busy second, plus the longest single call
 * seen while measuring. Garbage made while measuring is the contender's own cost.
 */
export function measure(
  pass: () => Pass,
  options: Pick<BenchOptions, "warmupMs" | "runMs" | "runs">,
): Measurement {
  collectGarbage();
  const warmUntil = performance.now() + options.warmupMs;
  do pass();
  while (performance.now() < warmUntil);

  const rates: number[] = [];
  let maxCallMs = 0;
  for (let r = 0; r < options.runs; r++) {
    let units = 0;
    let busyMs = 0;
    do {
      const p = pass();
      if (!(p.busyMs > 0)) throw new Error("a pass took no measurable time; is there any data?");
      units += p.units;
      busyMs += p.busyMs;
      maxCallMs = Math.max(maxCallMs, p.maxCallMs);
    } while (busyMs < options.runMs);
    rates.push(units / (busyMs / 1000));
  }
  rates.sort((a, b) => a - b);
  const mid = rates.length >> 1;
  const median = rates.length % 2 === 1 ? rates[mid]! : (rates[mid - 1]! + rates[mid]!) / 2;
  return {
    perSec: median,
    min: rates[0]!,
    max: rates[rates.length - 1]!,
    runs: rates.length,
    maxCallMs,
  };
}

/** A contender's result. `perSec` is null when it could not run (`note` says why). */
export interface Row {
  name: string;
  perSec: number | null;
  measurement?: Measurement;
  /** Absolute goal in units per second, if the issue sets one. */
  goal?: number;
  /** Extra facts for latest.json (counts, batch size, source of the figure). */
  detail?: Record<string, unknown>;
  note?: string;
}

/** A ratio the issue asks for: `of` over `over`, with its goal if any. */
export interface RatioSpec {
  of: string;
  over: string;
  goal?: number;
  /** The goal is a ceiling (a cost ratio): met when the value is at most the goal. */
  atMost?: boolean;
}

export interface Ratio extends RatioSpec {
  value: number | null;
  met: boolean | null;
}

/** A printed table. */
export interface Table {
  title: string;
  header: string[];
  rows: string[][];
}

export interface SectionResult {
  /** Written under the section's key in latest.json. */
  json: Record<string, unknown>;
  tables: Table[];
  ratios: Ratio[];
  notes: string[];
  /** Facts about the section's data, written under `meta.<key>` (kept out of `json` so that
   * every key there is a contender). */
  meta?: Record<string, unknown>;
}

export interface Section {
  /** Key in latest.json (`parse`, `aggregate`, …). */
  key: string;
  title: string;
  run(options: BenchOptions): Promise<SectionResult>;
}

/** Builds the JSON, the table and the ratios of a throughput section. */
export function throughputResult(
  title: string,
  perSecKey: string,
  unit: string,
  rows: Row[],
  ratioSpecs: RatioSpec[],
  notes: string[],
): SectionResult {
  const json: Record<string, unknown> = {};
  for (const row of rows) {
    const m = row.measurement;
    json[row.name] = {
      [perSecKey]: row.perSec,
      ...(m && { min: m.min, max: m.max, runs: m.runs, maxCallMs: m.maxCallMs }),
      ...(row.goal !== undefined && {
        goal: row.goal,
        goalMet: row.perSec === null ? null : row.perSec >= row.goal,
      }),
      ...row.detail,
      ...(row.note !== undefined && { note: row.note }),
    };
  }
  const byName = new Map(rows.map((r) => [r.name, r.perSec]));
  const ratios = ratioSpecs.map((spec): Ratio => {
    const a = byName.get(spec.of) ?? null;
    const b = byName.get(spec.over) ?? null;
    const value = a !== null && b !== null && b > 0 ? a / b : null;
    return {
      ...spec,
      value,
      met: value === null || spec.goal === undefined ? null : value >= spec.goal,
    };
  });
  const table: Table = {
    title,
    header: ["contender", `${unit} (median)`, "min", "max", "max call", "goal", "note"],
    rows: rows.map((r) => [
      r.name,
      r.perSec === null ? "unavailable" : rate(r.perSec),
      r.measurement ? rate(r.measurement.min) : "",
      r.measurement ? rate(r.measurement.max) : "",
      r.measurement ? `${r.measurement.maxCallMs.toFixed(2)} ms` : "",
      r.goal === undefined
        ? ""
        : `≥ ${rate(r.goal)} ${verdict(r.perSec === null ? null : r.perSec >= r.goal)}`,
      r.note ?? "",
    ]),
  };
  const ratioTable: Table = {
    title: `${title}: ratios`,
    header: ["ratio", "value", "goal"],
    rows: ratios.map((r) => [
      `${r.of} / ${r.over}`,
      r.value === null ? "n/a" : `${r.value.toFixed(2)}×`,
      r.goal === undefined ? "" : `≥ ${r.goal}× ${verdict(r.met)}`,
    ]),
  };
  return { json, tables: ratioSpecs.length > 0 ? [table, ratioTable] : [table], ratios, notes };
}

function verdict(met: boolean | null): string {
  return met === null ? "(n/a)" : met ? "met" : "NOT met";
}

/** 1234567 → "1.23 M". */
export function rate(perSec: number): string {
  if (perSec >= 1e9) return `${(perSec / 1e9).toFixed(2)} G`;
  if (perSec >= 1e6) return `${(perSec / 1e6).toFixed(2)} M`;
  if (perSec >= 1e3) return `${(perSec / 1e3).toFixed(1)} k`;
  return perSec.toFixed(0);
}

/** A table as aligned text lines. */
export function formatTable(table: Table): string[] {
  const widths = table.header.map((h, i) =>
    Math.max(h.length, ...table.rows.map((r) => (r[i] ?? "").length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [
    table.title,
    line(table.header),
    line(widths.map((w) => "-".repeat(w))),
    ...table.rows.map(line),
  ];
}

/** The repository root: the nearest directory above `start` holding package.json and native/. */
export function findRoot(start: string): string {
  let dir = start;
  for (;;) {
    if (fs.existsSync(path.join(dir, "package.json")) && fs.existsSync(path.join(dir, "native")))
      return dir;
    const parent = path.dirname(dir);
    if (parent === dir)
      throw new Error(`no repository root (package.json + native/) above ${start}`);
    dir = parent;
  }
}

/**
 * The FIX test data directory, found as the Rust benches find it: `TICKSTREAM_FIX_DATA`, else
 * `<root>/test/data/fix` when present, else the shared `../shared/data/fix` beside the repository.
 */
export function fixDataDir(root: string): string {
  const fromEnv = process.env.TICKSTREAM_FIX_DATA;
  if (fromEnv !== undefined && fromEnv !== "") return path.resolve(fromEnv);
  const vendored = path.join(root, "test", "data", "fix");
  return fs.existsSync(vendored) ? vendored : path.join(root, "..", "shared", "data", "fix");
}

/** An error's message, for notes. */
export function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Something that may be unavailable, with the reason. */
export type Maybe<T> = { ok: true; value: T } | { ok: false; reason: string };
