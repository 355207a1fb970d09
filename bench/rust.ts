/**
 * The Rust core's own figures, from criterion (`native/core/benches/*.rs`).
 *
 * Criterion leaves, per benchmark, `target/criterion/<id>/new/benchmark.json` (its id and
 * declared throughput) and `new/estimates.json` (time per iteration, ns). A benchmark that
 * declares `Throughput::Elements(n)` gives n / time elements per second. Nothing here throws:
 * a missing toolchain, a bench that does not compile or results without a throughput become a
 * note and a null figure.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { message, type BenchOptions, type Row } from "./harness";

/** One criterion benchmark's latest result. */
export interface CriterionResult {
  id: string;
  groupId: string;
  /** Median time per iteration, ns. */
  nsPerIter: number;
  /** Declared throughput per iteration. */
  elements: number | null;
  bytes: number | null;
  /** Elements per second (null without an Elements throughput). */
  perSec: number | null;
  bytesPerSec: number | null;
  /** When criterion wrote the estimate. */
  measuredAt: string;
}

function criterionDir(root: string): string {
  const target = process.env.CARGO_TARGET_DIR ?? path.join(root, "native", "target");
  return path.join(target, "criterion");
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as unknown;
  } catch {
    return undefined;
  }
}

function numberAt(value: unknown, ...keys: string[]): number | null {
  let v = value;
  for (const k of keys) {
    if (typeof v !== "object" || v === null) return null;
    v = (v as Record<string, unknown>)[k];
  }
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** Every criterion result whose group id starts with one of `groupPrefixes`. */
export function readCriterion(root: string, groupPrefixes: readonly string[]): CriterionResult[] {
  const results: CriterionResult[] = [];
  const walk = (dir: string, depth: number): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory() || e.name === "report" || e.name === "base" || e.name === "change")
        continue;
      const sub = path.join(dir, e.name);
      if (e.name === "new") {
        const result = readOne(sub);
        if (result && groupPrefixes.some((p) => result.groupId.startsWith(p))) results.push(result);
      } else if (depth < 5) {
        walk(sub, depth + 1);
      }
    }
  };
  walk(criterionDir(root), 0);
  return results.sort((a, b) => a.id.localeCompare(b.id));
}

function readOne(dir: string): CriterionResult | undefined {
  const bench = readJson(path.join(dir, "benchmark.json"));
  const estimates = readJson(path.join(dir, "estimates.json"));
  if (typeof bench !== "object" || bench === null) return undefined;
  const b = bench as Record<string, unknown>;
  const nsPerIter =
    numberAt(estimates, "median", "point_estimate") ??
    numberAt(estimates, "mean", "point_estimate");
  if (nsPerIter === null || nsPerIter <= 0) return undefined;
  const elements = numberAt(b.throughput, "Elements");
  const bytes = numberAt(b.throughput, "Bytes") ?? numberAt(b.throughput, "BytesDecimal");
  const fullId = typeof b.full_id === "string" ? b.full_id : path.relative(path.dirname(dir), dir);
  return {
    id: fullId,
    groupId: typeof b.group_id === "string" ? b.group_id : fullId.split("/")[0]!,
    nsPerIter,
    elements,
    bytes,
    perSec: elements === null ? null : elements / (nsPerIter / 1e9),
    bytesPerSec: bytes === null ? null : bytes / (nsPerIter / 1e9),
    measuredAt: fs.statSync(path.join(dir, "estimates.json")).mtime.toISOString(),
  };
}

/** Runs `cargo bench --bench <bench>` with a short measurement; returns a note on failure. */
export function runCargoBench(options: BenchOptions, bench: string): string | null {
  options.log(`cargo bench -p tickstream-core --bench ${bench} (short measurement)…`);
  const started = Date.now();
  const res = spawnSync(
    "cargo",
    [
      "bench",
      "-p",
      "tickstream-core",
      "--bench",
      bench,
      "--",
      "--warm-up-time",
      "1",
      "--measurement-time",
      "3",
      "--noplot",
    ],
    {
      cwd: path.join(options.root, "native"),
      encoding: "utf8",
      timeout: 20 * 60_000,
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  options.log(`cargo bench --bench ${bench}: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  if (res.error) return `cargo bench --bench ${bench} could not run: ${message(res.error)}`;
  if (res.status !== 0) {
    const tail = `${res.stderr}`.trim().split("\n").slice(-3).join(" | ");
    return `cargo bench --bench ${bench} failed (${res.status ?? res.signal}): ${tail}`;
  }
  return null;
}

/**
 * The Rust row of a section: runs the bench when asked, then reads criterion's results for
 * `groupPrefixes` and takes as headline the first matching the earliest pattern of `prefer`
 * (else the first with an element throughput). All results go into the row's detail.
 */
export function rustRow(
  options: BenchOptions,
  bench: string,
  groupPrefixes: readonly string[],
  prefer: readonly RegExp[],
  goal: number,
): Row {
  if (options.rust === "skip")
    return { name: "rust", perSec: null, goal, note: "skipped (--rust=skip)" };
  const notes: string[] = [];
  if (options.rust === "run") {
    const failure = runCargoBench(options, bench);
    if (failure !== null) notes.push(failure);
  }
  const results = readCriterion(options.root, groupPrefixes);
  const withRate = results.filter((r) => r.perSec !== null);
  const headline =
    prefer.map((p) => withRate.find((r) => p.test(r.id))).find((r) => r !== undefined) ??
    withRate[0];
  if (headline === undefined) {
    notes.push(
      results.length === 0
        ? `no criterion results for ${groupPrefixes.join("|")}* under native/target/criterion`
        : "criterion results declare no Throughput::Elements",
    );
  }
  return {
    name: "rust",
    perSec: headline?.perSec ?? null,
    goal,
    detail: {
      source: "criterion",
      id: headline?.id ?? null,
      measuredAt: headline?.measuredAt ?? null,
      criterion: results.map((r) => ({
        id: r.id,
        perSec: r.perSec,
        bytesPerSec: r.bytesPerSec,
        nsPerIter: r.nsPerIter,
      })),
    },
    ...(notes.length > 0
      ? { note: notes.join("; ") }
      : { note: `criterion ${headline?.id}, ${headline?.measuredAt}` }),
  };
}
