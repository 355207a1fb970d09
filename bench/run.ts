/**
 * `npm run bench [-- --quick]`: every benchmark section in one run on the same data; prints
 * tables with ratios and writes `bench/results/latest.json`.
 *
 * Options: `--quick` (short runs, criterion results read rather than re-measured; under
 * 3 minutes), `--data <file>` (FIX corpus; default the JSE set in `TICKSTREAM_FIX_DATA`,
 * `test/data/fix` or `../shared/data/fix`), `--batch <n>` (messages or trades per call),
 * `--rust=read|run|skip`, `--records <n>` (pre-loaded Kafka records of the end-to-end sections),
 * `--only <key,…>`, `--out <file>`.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { aggregateSection } from "./aggregate";
import { clusterSection } from "./cluster";
import { e2eSection } from "./e2e";
import {
  findRoot,
  fixDataDir,
  formatTable,
  message,
  type BenchOptions,
  type Section,
  type SectionResult,
} from "./harness";
import { e2eRecordCount, stopInfra } from "./infra";
import { latencySection } from "./latency";
import { memorySection } from "./memory";
import { parseSection } from "./parse";
import { recoverySection } from "./recovery";
import { saturationSection } from "./saturation";
import { quietKnownWarnings } from "../src/node/warnings";

/** The sections, in run order. */
export const SECTIONS: readonly Section[] = [
  parseSection,
  aggregateSection,
  e2eSection,
  latencySection,
  clusterSection,
  memorySection,
  recoverySection,
  saturationSection,
];

interface Cli {
  options: BenchOptions;
  only: string[] | null;
  out: string;
  /** Child mode: run the one `--only` section and write its result here. */
  sectionOut: string | null;
}

function parseArgs(argv: readonly string[], root: string): Cli {
  const value = (name: string): string | undefined => {
    const eq = argv.find((a) => a.startsWith(`--${name}=`));
    if (eq !== undefined) return eq.slice(name.length + 3);
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const quick = argv.includes("--quick");
  const rust = value("rust") ?? (quick ? "read" : "run");
  if (rust !== "read" && rust !== "run" && rust !== "skip")
    throw new Error(`--rust must be read, run or skip`);
  const batchSize = Number(value("batch") ?? 2000);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new Error("--batch must be a positive integer");
  const records = value("records") === undefined ? undefined : Number(value("records"));
  if (records !== undefined && !(Number.isInteger(records) && records >= 1000))
    throw new Error("--records must be an integer of at least 1000");
  return {
    options: {
      quick,
      root,
      dataFile: path.resolve(
        value("data") ?? path.join(fixDataDir(root), "hffix-fix.5.0.set.1.fix"),
      ),
      batchSize,
      warmupMs: quick ? 300 : 1500,
      runMs: quick ? 250 : 1000,
      runs: quick ? 5 : 9,
      rust,
      ...(records !== undefined && { records }),
      log: (line) => console.error(`[bench] ${line}`),
    },
    only: value("only")?.split(",") ?? null,
    out: path.resolve(value("out") ?? path.join(root, "bench", "results", "latest.json")),
    sectionOut: value("section-out") ?? null,
  };
}

/**
 * Sections that measure in this process. Each runs in a fresh child process when the run has
 * other sections: after another section in the same process, native throughput falls
 * (docs/design-notes.md).
 */
const IN_PROCESS = new Set(["parse", "aggregate"]);

/** Runs one section in a child `run.js --section-out` and reads back its result. */
function runInChild(key: string, argv: readonly string[], root: string): SectionResult {
  const file = path.join(os.tmpdir(), `tickstream-bench-${process.pid}-${key}.json`);
  const args = argv.filter(
    (a, i) => a !== "--only" && argv[i - 1] !== "--only" && !a.startsWith("--only="),
  );
  const res = spawnSync(
    process.execPath,
    [__filename, ...args, "--only", key, "--section-out", file],
    { cwd: root, stdio: ["ignore", "inherit", "inherit"] },
  );
  try {
    if (res.status !== 0)
      throw new Error(`child for ${key} exited ${String(res.status ?? res.signal)}`);
    return JSON.parse(fs.readFileSync(file, "utf8")) as SectionResult;
  } finally {
    fs.rmSync(file, { force: true });
  }
}

function rustcVersion(): string | null {
  const res = spawnSync("rustc", ["--version"], { encoding: "utf8" });
  return res.status === 0 ? res.stdout.trim() : null;
}

export function machine(): Record<string, unknown> {
  return {
    cores: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model.trim() ?? null,
    node: process.version,
    rustc: rustcVersion(),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    totalMemGiB: Math.round(os.totalmem() / 2 ** 30),
    loadAvg1mAtStart: round2(os.loadavg()[0]!),
  };
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** Other work on the machine skews every figure; say so when the 1-minute load says it is busy. */
function busyWarning(cores: number, load: number, when: string): string | null {
  return load >= cores * 0.75
    ? `machine busy ${when} (1-minute load ${load.toFixed(2)} on ${cores} cores): figures are unreliable, rerun on an idle machine`
    : null;
}

async function main(): Promise<void> {
  quietKnownWarnings();
  const root = findRoot(__dirname);
  const argv = process.argv.slice(2);
  const { options, only, out, sectionOut } = parseArgs(argv, root);
  if (sectionOut !== null) {
    const section = SECTIONS.find((s) => only?.length === 1 && s.key === only[0]);
    if (!section) throw new Error("--section-out needs exactly one --only section");
    fs.writeFileSync(sectionOut, JSON.stringify(await section.run(options)));
    return;
  }
  const selected = SECTIONS.filter((s) => only === null || only.includes(s.key));
  const started = Date.now();
  const report: Record<string, unknown> = {
    generatedAt: new Date().toISOString(),
    quick: options.quick,
    machine: machine(),
    config: {
      dataFile: options.dataFile,
      batchSize: options.batchSize,
      warmupMs: options.warmupMs,
      runMs: options.runMs,
      runs: options.runs,
      rust: options.rust,
      e2eRecords: e2eRecordCount(options),
    },
  };
  const ratios: Record<string, unknown> = {};
  const notes: Record<string, string[]> = {};
  const meta: Record<string, unknown> = {};

  for (const section of selected) {
    options.log(`── ${section.title}`);
    let result: SectionResult;
    try {
      result =
        IN_PROCESS.has(section.key) && selected.length > 1
          ? runInChild(section.key, argv, root)
          : await section.run(options);
    } catch (error) {
      options.log(`${section.key} failed: ${message(error)}`);
      report[section.key] = { error: message(error) };
      continue;
    }
    report[section.key] = result.json;
    ratios[section.key] = Object.fromEntries(
      result.ratios.map((r) => [
        `${r.of}/${r.over}`,
        { value: r.value, goal: r.goal ?? null, ...(r.atMost && { atMost: true }), met: r.met },
      ]),
    );
    notes[section.key] = result.notes;
    if (result.meta) meta[section.key] = result.meta;
    console.log("");
    for (const table of result.tables) console.log(`${formatTable(table).join("\n")}\n`);
    for (const note of result.notes) console.log(`  · ${note}`);
  }

  const m = report.machine as { cores: number; loadAvg1mAtStart: number } & Record<string, unknown>;
  m.loadAvg1mAtEnd = round2(os.loadavg()[0]!);
  const warnings = [
    busyWarning(m.cores, m.loadAvg1mAtStart, "at start"),
    busyWarning(m.cores, m.loadAvg1mAtEnd as number, "at end"),
  ].filter((w): w is string => w !== null);
  report.warnings = warnings;
  report.ratios = ratios;
  report.notes = notes;
  report.meta = meta;
  report.durationSec = Math.round((Date.now() - started) / 100) / 10;
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(
    `\nmachine: ${m.cores} cores, ${String(m.cpuModel)}, Node ${String(m.node)}, ${String(m.rustc)}, load ${m.loadAvg1mAtStart} → ${String(m.loadAvg1mAtEnd)}`,
  );
  for (const w of warnings) console.log(`WARNING: ${w}`);
  console.log(
    `wrote ${path.relative(process.cwd(), out) || out} in ${String(report.durationSec)} s`,
  );
}

if (require.main === module) {
  main()
    .catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    })
    // The Kafka sections share one broker and one nats-server; they go whatever happened.
    .finally(() => stopInfra());
}
