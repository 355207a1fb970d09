/**
 * End to end on one node: the same pre-loaded topic (≥ 2 M ExecutionReports, 1,000 symbols,
 * 6 partitions) consumed by
 *
 * - `ceiling`: a kafkajs consumer that only counts records (`ceiling-consumer.ts`), with the
 *   node's fetch settings: what Kafka and kafkajs alone allow on this machine;
 * - `tickstream`: a Tickstream node (all services, no transporter) applying them to bars and
 *   detectors (`node-probe.ts`: the production node plus a timing probe).
 *
 * Each is a separate process with its own consumer group. Its rate is records over its
 * consumption window: from the first batch it handles to the moment its last record is counted
 * (ceiling) or applied and acknowledged (Tickstream), so process start-up, the group join and the
 * first fetch's wait are excluded. CPU is the process's own user + system time over that window
 * (`process.cpuUsage()`, all its threads); peak RSS is VmHWM from /proc. "Done" is a condition:
 * the ceiling counted every record; the node's probe saw every record applied and `/api/stats`
 * agrees, with no rejects, duplicates or late trades. The bars of three symbols are then checked
 * against the independent BigInt reference.
 */
import os from "node:os";
import { loadConfig } from "../src/config";
import type { KafkaHandle } from "../scripts/infra/kafka";
import type { NatsHandle } from "../scripts/infra/nats";
import { waitFor } from "../scripts/infra/processes";
import type { CeilingReport } from "./ceiling-consumer";
import { exitSignal, nodeEnv, procCpuSec, spawnChild, type Child } from "./children";
import type { Preloaded } from "./e2e-data";
import { rate, type BenchOptions, type Ratio, type Section, type Table } from "./harness";
import { sharedKafka, sharedTopic, uniqueName } from "./infra";
import type { ProbeReport } from "./node-probe";
import {
  consumptionRate,
  summarize,
  type ConsumptionRate,
  type ConsumptionWindow,
  type LatencySummary,
} from "./stats";
import { checkBars, statsTotals, type BarCheck, type StatsTotals } from "./verify";

/** Issue goal: Tickstream at ≥ 90 % of the counting consumer. */
export const E2E_RATIO_GOAL = 0.9;

/**
 * The fetch settings the nodes run with (KAFKA_CONCURRENCY, KAFKA_MAX_BYTES_PER_PARTITION,
 * KAFKA_MAX_WAIT_MS: defaults unless this process's environment sets them, which the spawned
 * nodes inherit); the ceiling consumer copies them.
 */
export function fetchSettings(brokers: string): {
  concurrency: number;
  maxBytesPerPartition: number;
  maxWaitMs: number;
} {
  const k = loadConfig({ ...process.env, KAFKA_BROKERS: brokers }).kafka!;
  return {
    concurrency: k.concurrency,
    maxBytesPerPartition: k.maxBytesPerPartition,
    maxWaitMs: k.maxWaitMs,
  };
}

export interface ProcessFigures {
  name: string;
  /** CPU over its own consumption window, % of one core. */
  cpuPct: number | null;
  peakRssMiB: number | null;
}

export interface ConsumerRun {
  rate: ConsumptionRate;
  processes: ProcessFigures[];
  batches: number;
  /** Broker (and nats-server) CPU, % of one core, sampled by this process around the run. */
  kafkaCpuPct: number | null;
  natsCpuPct?: number | null;
}

export interface PipelineRun extends ConsumerRun {
  totals: StatsTotals;
  bars: BarCheck;
  /** Per batch: decode + split + every apply acknowledged, ms. */
  batchDeliveryMs: LatencySummary | null;
}

/** How long a run of `records` may take before it counts as stuck (≥ 5 k records/s). */
function deadlineMs(records: number): number {
  return 120_000 + records / 5;
}

/** CPU of an outside process (broker, nats-server) between two samples, % of one core. */
class OutsideCpu {
  private start: { at: number; cpu: number } | null = null;
  constructor(private readonly pid: number | undefined) {}
  mark(): void {
    const cpu = this.pid === undefined ? null : procCpuSec(this.pid);
    if (cpu !== null && this.start === null) this.start = { at: Date.now(), cpu };
  }
  pct(): number | null {
    const cpu = this.pid === undefined ? null : procCpuSec(this.pid);
    if (cpu === null || this.start === null) return null;
    const secs = (Date.now() - this.start.at) / 1000;
    return secs > 0 ? ((cpu - this.start.cpu) / secs) * 100 : null;
  }
}

/**
 * Waits until the children's reports together count `records`, polling their windows; marks the
 * outside processes' CPU when the first records show up.
 */
async function consumeAll<R extends { window: ConsumptionWindow | null }>(
  children: Child<R>[],
  records: number,
  outside: OutsideCpu[],
): Promise<R[]> {
  return waitFor(
    async () => {
      const reports = await Promise.all(children.map((c) => c.report()));
      const seen = reports.reduce((n, r) => n + (r.window?.records ?? 0), 0);
      if (seen > 0) for (const o of outside) o.mark();
      // More than the topic holds means re-delivered records: pipelineProblems says so.
      return seen >= records ? reports : null;
    },
    {
      timeoutMs: deadlineMs(records),
      intervalMs: 100,
      what: `${records} records consumed`,
      signal: exitSignal(children),
    },
  );
}

function figures(child: Child<unknown>, window: ConsumptionWindow | null): ProcessFigures {
  const one = window ? consumptionRate([window]) : null;
  return { name: child.name, cpuPct: one?.cpuPct ?? null, peakRssMiB: child.peakRssMiB() };
}

/** The counting consumer over the whole topic. */
export async function runCeiling(
  options: BenchOptions,
  kafka: KafkaHandle,
  data: Preloaded,
): Promise<ConsumerRun> {
  const fetch = fetchSettings(kafka.brokers);
  const child = await spawnChild<CeilingReport>(
    options.root,
    "ceiling",
    "ceiling-consumer",
    [
      kafka.brokers,
      data.topic,
      uniqueName("bench-ceiling"),
      String(fetch.concurrency),
      String(fetch.maxBytesPerPartition),
      String(fetch.maxWaitMs),
    ],
    {},
  );
  try {
    const broker = new OutsideCpu(kafka.pid);
    const [report] = await consumeAll([child], data.records, [broker]);
    const window = report!.window!;
    return {
      rate: consumptionRate([window]),
      processes: [figures(child, window)],
      batches: report!.batches,
      kafkaCpuPct: broker.pct(),
    };
  } finally {
    await child.stop();
  }
}

/**
 * Tickstream nodes (one, or several over NATS) consuming the whole topic in one group, all
 * services on each; waits until everything is applied, then checks counts and bars.
 */
export async function runPipeline(
  options: BenchOptions,
  kafka: KafkaHandle,
  data: Preloaded,
  nodes: number,
  nats: NatsHandle | null,
): Promise<PipelineRun> {
  const group = uniqueName("bench-tickstream");
  const namespace = uniqueName("bench");
  const envs = await Promise.all(
    Array.from({ length: nodes }, (_, i) =>
      nodeEnv(`${group}-n${i + 1}`, kafka.brokers, data.topic, group, {
        NAMESPACE: namespace,
        ...(nats && { TRANSPORTER: nats.url }),
      }),
    ),
  );
  const spawned = await Promise.allSettled(
    envs.map((env) => spawnChild<ProbeReport>(options.root, env.NODEID!, "node-probe", [], env)),
  );
  const children = spawned.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  try {
    const failed = spawned.find((s) => s.status === "rejected");
    if (failed) throw failed.reason;
    const broker = new OutsideCpu(kafka.pid);
    const bus = new OutsideCpu(nats?.pid);
    const reports = await consumeAll(children, data.records, [broker, bus]);
    const kafkaCpuPct = broker.pct();
    const natsCpuPct = nats ? bus.pct() : undefined;
    const url = children[0]!.url!;
    // The probe saw every batch acknowledged; the counters must say the same, cluster-wide.
    const totals = await waitFor(
      async () => {
        const t = await statsTotals(url);
        return t.nodes === nodes && t.applied + t.duplicates >= data.records ? t : null;
      },
      {
        timeoutMs: 30_000,
        intervalMs: 200,
        what: "/api/stats to count every record",
        signal: exitSignal(children),
      },
    );
    const bars = await checkBars(url, data.checked);
    const deliveries = reports.flatMap((r) => [...r.deliveryMs]);
    return {
      rate: consumptionRate(reports.map((r) => r.window!)),
      processes: children.map((c, i) => figures(c, reports[i]!.window)),
      batches: reports.reduce((n, r) => n + r.batches, 0),
      kafkaCpuPct,
      ...(natsCpuPct !== undefined && { natsCpuPct }),
      totals,
      bars,
      batchDeliveryMs: summarize(deliveries),
    };
  } finally {
    await Promise.all(children.map((c) => c.stop()));
  }
}

/** Runs of each contender: 3 in full mode (interleaved, the median counts), 1 with --quick. */
export function e2eRepetitions(options: BenchOptions): number {
  return options.quick ? 1 : 3;
}

/** The run with the median rate (the lower middle one of an even count). */
export function medianRun<R extends ConsumerRun>(runs: readonly R[]): R {
  if (runs.length === 0) throw new Error("no runs");
  const sorted = [...runs].sort((a, b) => a.rate.perSec - b.rate.perSec);
  return sorted[(sorted.length - 1) >> 1]!;
}

/**
 * One node over the shared topic: the e2e section's median run when it ran, else one run of
 * its own (the two-node section compares against it).
 */
let oneNode: Promise<PipelineRun> | null = null;
export function oneNodeRun(options: BenchOptions): Promise<PipelineRun> {
  oneNode ??= (async () => {
    const kafka = await sharedKafka(options);
    const data = await sharedTopic(options);
    options.log(`tickstream: one node consuming ${data.records} records…`);
    return runPipeline(options, kafka, data, 1, null);
  })();
  return oneNode;
}

/** Problems that make a pipeline run's figures meaningless (empty when it is sound). */
export function pipelineProblems(run: PipelineRun, records: number): string[] {
  const t = run.totals;
  const problems: string[] = [];
  if (t.applied !== records) problems.push(`${t.applied} trades applied, ${records} produced`);
  if (t.rejected > 0) problems.push(`${t.rejected} records rejected`);
  if (t.duplicates > 0)
    problems.push(`${t.duplicates} duplicates (a rebalance replayed partitions mid-run)`);
  if (t.tooLate > 0) problems.push(`${t.tooLate} trades too late`);
  if (run.bars.mismatches.length > 0)
    problems.push(`bars differ from the reference: ${run.bars.mismatches.join("; ")}`);
  return problems;
}

/** JSON of a run (rates, CPU, memory, counts). */
export function runJson(run: ConsumerRun): Record<string, unknown> {
  const r = run.rate;
  return {
    perSec: Math.round(r.perSec),
    records: r.records,
    seconds: round(r.seconds, 3),
    cpuPct: round(r.cpuPct, 1),
    cpuUsPerRecord: round(r.cpuUsPerRecord, 3),
    batches: run.batches,
    processes: run.processes.map((p) => ({
      name: p.name,
      cpuPct: p.cpuPct === null ? null : round(p.cpuPct, 1),
      peakRssMiB: p.peakRssMiB === null ? null : round(p.peakRssMiB, 1),
    })),
    peakRssMiB: maxOrNull(run.processes.map((p) => p.peakRssMiB)),
    kafkaCpuPct: run.kafkaCpuPct === null ? null : round(run.kafkaCpuPct, 1),
    ...(run.natsCpuPct !== undefined && {
      natsCpuPct: run.natsCpuPct === null ? null : round(run.natsCpuPct, 1),
    }),
  };
}

/** JSON of a Tickstream run: the run's figures plus what was applied and checked. */
export function pipelineJson(run: PipelineRun): Record<string, unknown> {
  return {
    ...runJson(run),
    totals: run.totals,
    barsChecked: {
      symbols: run.bars.symbols,
      bars: run.bars.bars,
      mismatches: run.bars.mismatches,
    },
    batchDeliveryMs: run.batchDeliveryMs,
  };
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function maxOrNull(xs: (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x !== null);
  return v.length === 0 ? null : round(Math.max(...v), 1);
}

/** A table row of a run: rate, records, window, CPU, CPU per record, peak RSS, broker CPU. */
export function runRow(name: string, run: ConsumerRun, note = ""): string[] {
  const r = run.rate;
  const rss = maxOrNull(run.processes.map((p) => p.peakRssMiB));
  return [
    name,
    `${rate(r.perSec)}/s`,
    String(r.records),
    `${r.seconds.toFixed(2)} s`,
    run.processes.map((p) => (p.cpuPct === null ? "?" : `${p.cpuPct.toFixed(0)} %`)).join(" + "),
    `${r.cpuUsPerRecord.toFixed(2)} µs`,
    rss === null ? "?" : `${rss.toFixed(0)} MiB`,
    run.kafkaCpuPct === null ? "?" : `${run.kafkaCpuPct.toFixed(0)} %`,
    note,
  ];
}

export const RUN_HEADER = [
  "contender",
  "records/s",
  "records",
  "window",
  "CPU (1 core = 100 %)",
  "CPU/record",
  "peak RSS",
  "broker CPU",
  "note",
];

export const e2eSection: Section = {
  key: "e2e",
  title: "End to end, one node: pre-loaded Kafka topic → applied bars",
  async run(options) {
    const kafka = await sharedKafka(options);
    const data = await sharedTopic(options);
    const ceilings: ConsumerRun[] = [];
    const pipelines: PipelineRun[] = [];
    const reps = e2eRepetitions(options);
    for (let i = 1; i <= reps; i++) {
      options.log(`ceiling ${i}/${reps}: counting ${data.records} records…`);
      ceilings.push(await runCeiling(options, kafka, data));
      options.log(`ceiling: ${rate(ceilings[i - 1]!.rate.perSec)} records/s`);
      options.log(`tickstream ${i}/${reps}: one node applying ${data.records} records…`);
      pipelines.push(await runPipeline(options, kafka, data, 1, null));
      options.log(`tickstream: ${rate(pipelines[i - 1]!.rate.perSec)} records/s`);
    }
    const ceiling = medianRun(ceilings);
    const pipeline = medianRun(pipelines);
    oneNode = Promise.resolve(pipeline);
    const spread = (runs: ConsumerRun[]) =>
      runs.length > 1
        ? `median of ${runs.length}: ${runs.map((r) => rate(r.rate.perSec)).join(", ")}`
        : "";
    const problems = pipelines.flatMap((p) => pipelineProblems(p, data.records));
    const ratioValue = pipeline.rate.perSec / ceiling.rate.perSec;
    const ratio: Ratio = {
      of: "pipeline",
      over: "ceiling",
      goal: E2E_RATIO_GOAL,
      value: ratioValue,
      met: ratioValue >= E2E_RATIO_GOAL,
    };
    const table: Table = {
      title: this.title,
      header: RUN_HEADER,
      rows: [
        runRow("ceiling (kafkajs, count only)", ceiling, spread(ceilings)),
        runRow(
          "tickstream (1 node)",
          pipeline,
          problems.length > 0 ? "INVALID: see notes" : spread(pipelines),
        ),
        [
          "ratio tickstream / ceiling",
          `${ratioValue.toFixed(2)}×`,
          "",
          "",
          "",
          "",
          "",
          "",
          `goal ≥ ${E2E_RATIO_GOAL} ${ratio.met ? "met" : "NOT met"}`,
        ],
      ],
    };
    const avgBytes = Math.round(data.bytes / data.records);
    const fetch = fetchSettings(kafka.brokers);
    const notes = [
      `${data.records} FIX 4.4 ExecutionReports (${avgBytes} B average, crc32 header), 1,000 symbols, keyed by symbol, 6 partitions; pre-loaded at ${rate(data.perSec)} records/s (kafkajs, 4,000-record batches, 4 in flight, acks=1)`,
      `rate = records / (last record done − first batch handed over), each in its own process and consumer group (start-up, group join and the first fetch's wait excluded); CPU = the process's user+sys over that window; both with the node's fetch settings (${fetch.concurrency} partitions concurrently, ${fetch.maxBytesPerPartition} B per partition, ${fetch.maxWaitMs} ms max wait); the ceiling never commits`,
      `tickstream: ${pipeline.totals.applied} trades applied, ${pipeline.totals.rejected} rejects, ${pipeline.totals.duplicates} duplicates; ${pipeline.bars.bars} 1m bars of ${pipeline.bars.symbols} symbols ${pipeline.bars.mismatches.length === 0 ? "equal to" : "DIFFER from"} the BigInt reference`,
      `broker CPU is sampled from /proc around each run; the machine's ${os.availableParallelism()} cores are shared by the broker, the consumer and anything else running`,
      ...problems.map((p) => `INVALID run: ${p}`),
    ];
    return {
      json: {
        ceilingPerSec: Math.round(ceiling.rate.perSec),
        pipelinePerSec: Math.round(pipeline.rate.perSec),
        ratio: round(ratioValue, 3),
        goal: E2E_RATIO_GOAL,
        goalMet: ratio.met,
        valid: problems.length === 0,
        ceiling: {
          ...runJson(ceiling),
          runsPerSec: ceilings.map((r) => Math.round(r.rate.perSec)),
        },
        pipeline: {
          ...pipelineJson(pipeline),
          runsPerSec: pipelines.map((r) => Math.round(r.rate.perSec)),
        },
      },
      tables: [table],
      ratios: [ratio],
      notes,
      meta: {
        topic: data.topic,
        records: data.records,
        recordBytes: avgBytes,
        symbols: 1_000,
        partitions: 6,
        preloadPerSec: Math.round(data.perSec),
        preloadSeconds: round(data.seconds, 2),
      },
    };
  },
};
