/**
 * Latency at a fixed produce rate: this process produces ExecutionReports at 20,000 a second
 * (`--quick`: a shorter run) into a fresh 6-partition topic that a live Tickstream node consumes,
 * each record stamped with its produce time (Kafka timestamp; its TransactTime is the same instant).
 *
 * - produce → applied: for every record, the node's probe (`node-probe.ts`) takes the wall-clock
 *   time at which its batch was acknowledged by every actor that owns one of its trades, minus the
 *   record's Kafka timestamp. Exact per-record samples; p50/p95/p99 by nearest rank.
 * - produce → SSE delivery: a real HTTP client on `/api/stream` (100 symbols, 1m bars) records
 *   every `bar` and `closed` event; a trade is delivered by the first event of its bar whose trade
 *   count includes it (`streamDeliveries` in stats.ts). Forming bars are published every 250 ms
 *   and throttled to one per 250 ms per symbol by design, so this is dominated by the throttle.
 *
 * Producer and node share the machine's clock. A warm-up (not measured) comes first; the node's
 * probe is reset at its end.
 */
import { CompressionTypes, Partitioners, type Message } from "kafkajs";
import { setTimeout as delay } from "node:timers/promises";
import type { KafkaHandle } from "../scripts/infra/kafka";
import type { NatsHandle } from "../scripts/infra/nats";
import { waitFor } from "../scripts/infra/processes";
import type { CeilingReport } from "./ceiling-consumer";
import { exitSignal, nodeEnv, spawnChild, type Child } from "./children";
import { E2E_PARTITIONS, ExecutionReports, fillRecord } from "./e2e-data";
import { fetchSettings, round } from "./e2e";
import type { BenchOptions, Section, Table } from "./harness";
import { benchClient, sharedKafka, uniqueName } from "./infra";
import type { ProbeReport } from "./node-probe";
import { openStream } from "./sse-client";
import { openWsClients } from "./ws-client";
import { streamDeliveries, summarize, type LatencySummary, type ProducedTrade } from "./stats";
import { statsTotals } from "./verify";
import { ensureTopics } from "../services/ingest/sources/kafka/client";

/** Issue goals at 20 k trades/s: produce → applied p99 at most this much over the kafkajs floor's
 * p99 in the same run, and the event loop held at most this long (p99, max). */
export const LATENCY_OVER_FLOOR_GOAL_MS = 5;
export const EVENT_LOOP_GOAL_MS = { p99: 5, max: 20 };
export const LATENCY_RATE = 20_000;
const STREAM_SYMBOLS = 100;
/** WebSocket connections held open on the gateway during every latency run. */
const WS_CONNECTIONS = 1_000;
const PRODUCE_TICK_MS = 5;
const MAX_REQUEST_RECORDS = 1_000;

export interface LatencyRun {
  rate: number;
  /** Records produced in the measured part (after the warm-up). */
  produced: number;
  /** Achieved produce rate in the measured part, records/s. */
  producedPerSec: number;
  warmupSec: number;
  measureSec: number;
  applied: LatencySummary | null;
  /** The same records through a kafkajs consumer that only counts them (same time, own group). */
  floor: LatencySummary | null;
  stream: (LatencySummary & { undelivered: number; trades: number }) | null;
  /** The same through the measuring one of WS_CONNECTIONS WebSocket connections. */
  ws: (LatencySummary & { undelivered: number; trades: number }) | null;
  /** Per batch deliver() time, ms. */
  batchDeliveryMs: LatencySummary | null;
  batches: number;
  /** Node CPU over the measured part, % of one core (all nodes added). */
  nodeCpuPct: number | null;
  /** Event-loop delay of the (first) node over the measured part: its blocking work, ms. */
  eventLoopDelay: ProbeReport["eventLoopDelay"] | null;
}

/** Durations of a run: warm-up and measured seconds. */
export function latencyDurations(options: BenchOptions): { warmupSec: number; measureSec: number } {
  return options.quick ? { warmupSec: 2, measureSec: 6 } : { warmupSec: 5, measureSec: 30 };
}

/**
 * Produces at `rate` records/s for `seconds`, stamping each with the send time. Every tick
 * (PRODUCE_TICK_MS) sends what is due in one request, so the rate holds whatever the timer
 * resolution; requests are not awaited one by one (at most 64 in flight). Measured here: 1 ms
 * ticks (≈ 20 records a request) queue requests on the broker's connection (it handles one
 * connection's requests in order) and the ack p99 grows to hundreds of ms; 5 ms ticks keep a few
 * in flight, as a producer's linger (librdkafka's default linger.ms is 5) would.
 */
async function produceAtRate(
  send: (messages: Message[]) => Promise<unknown>,
  gen: ExecutionReports,
  rate: number,
  seconds: number,
  onTrade: (t: ProducedTrade) => void,
): Promise<{ sent: number; seconds: number }> {
  const inFlight = new Set<Promise<unknown>>();
  const started = Date.now();
  const endAt = started + seconds * 1000;
  let sent = 0;
  let failure: Error | null = null;
  // A send fails in a callback; checked on every tick and at the end.
  const check = (): void => {
    if (failure !== null) throw failure;
  };
  for (;;) {
    const now = Date.now();
    check();
    const due = Math.floor(((Math.min(now, endAt) - started) * rate) / 1000) - sent;
    // After a stall (a busy machine), what is due goes out in requests of at most
    // MAX_REQUEST_RECORDS, well under the broker's 1 MB message.max.bytes.
    for (let left = due; left > 0 && inFlight.size < 64;) {
      const n = Math.min(left, MAX_REQUEST_RECORDS);
      left -= n;
      const messages: Message[] = new Array<Message>(n);
      for (let i = 0; i < n; i++) {
        const fill = gen.next(now);
        messages[i] = fillRecord(fill, now);
        onTrade({
          symbol: fill.symbol,
          barStartMs: Math.floor(now / 60_000) * 60_000,
          producedAtMs: now,
        });
      }
      sent += n;
      const p: Promise<void> = send(messages).then(
        () => {
          inFlight.delete(p);
        },
        (err: unknown) => {
          failure = err instanceof Error ? err : new Error(String(err));
        },
      );
      inFlight.add(p);
    }
    if (now >= endAt) break;
    await delay(PRODUCE_TICK_MS);
  }
  await Promise.all(inFlight);
  check();
  return { sent, seconds: (Date.now() - started) / 1000 };
}

/** A fixed-rate run against `nodes` Tickstream nodes (over NATS when more than one). */
export async function runLatency(
  options: BenchOptions,
  kafka: KafkaHandle,
  nodes: number,
  nats: NatsHandle | null,
): Promise<LatencyRun> {
  const { warmupSec, measureSec } = latencyDurations(options);
  const topic = uniqueName("bench-latency");
  const client = benchClient(kafka.brokers);
  await ensureTopics(client, [topic], E2E_PARTITIONS);
  const group = uniqueName("bench-latency");
  const namespace = uniqueName("bench");
  const envs = await Promise.all(
    Array.from({ length: nodes }, (_, i) =>
      nodeEnv(`${group}-n${i + 1}`, kafka.brokers, topic, group, {
        NAMESPACE: namespace,
        // The WebSocket clients and the SSE client, with room to spare.
        STREAM_MAX_CONNECTIONS: String(WS_CONNECTIONS + 100),
        ...(nats && { TRANSPORTER: nats.url }),
      }),
    ),
  );
  const fetchConfig = fetchSettings(kafka.brokers);
  // Settled at once (a failure is reported below, never unhandled), while the nodes start.
  const floorStarting = Promise.allSettled([
    spawnChild<CeilingReport>(
      options.root,
      "latency floor",
      "ceiling-consumer",
      [
        kafka.brokers,
        topic,
        uniqueName("bench-floor"),
        String(fetchConfig.concurrency),
        String(fetchConfig.maxBytesPerPartition),
        String(fetchConfig.maxWaitMs),
        "--samples",
      ],
      {},
    ),
  ]);
  const spawned = await Promise.allSettled(
    envs.map((env) =>
      spawnChild<ProbeReport>(options.root, env.NODEID!, "node-probe", ["--samples"], env),
    ),
  );
  const floorSpawned = await floorStarting;
  const children: Child<ProbeReport>[] = spawned.flatMap((s) =>
    s.status === "fulfilled" ? [s.value] : [],
  );
  const floor = floorSpawned[0].status === "fulfilled" ? floorSpawned[0].value : null;
  const producer = client.producer({
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  let stream: ReturnType<typeof openStream> | null = null;
  let ws: ReturnType<typeof openWsClients> | null = null;
  try {
    const failed = [...spawned, ...floorSpawned].find((s) => s.status === "rejected");
    if (failed) throw failed.reason;
    const died = exitSignal([...children, floor!]);
    // Live: every node has its partitions and has caught up with the (empty) topic.
    for (const c of children)
      await waitFor(async () => (await fetch(`${c.url!}/api/ready`)).status === 200, {
        timeoutMs: 90_000,
        intervalMs: 200,
        what: `${c.name} to be ready`,
        signal: died,
      });
    const gen = new ExecutionReports();
    const watched = new Set(gen.symbols.slice(0, STREAM_SYMBOLS));
    stream = openStream(children[0]!.url!, [...watched]);
    ws = openWsClients(children[0]!.url!, [...watched], WS_CONNECTIONS);
    await Promise.all([stream.opened, ws.opened]);
    await producer.connect();
    const trades: ProducedTrade[] = [];
    const onTrade = (t: ProducedTrade) => {
      if (watched.has(t.symbol)) trades.push(t);
    };
    const send = (messages: Message[]) =>
      producer.send({ topic, messages, acks: 1, compression: CompressionTypes.None });
    options.log(`latency: ${nodes} node(s), ${warmupSec} s warm-up at ${LATENCY_RATE}/s…`);
    const warm = await produceAtRate(send, gen, LATENCY_RATE, warmupSec, onTrade);
    await Promise.all([
      ...children.map((c) => c.report(30_000, "reset")),
      floor!.report(30_000, "reset"),
    ]);
    const measuredFrom = Date.now();
    options.log(`latency: measuring ${measureSec} s…`);
    const measured = await produceAtRate(send, gen, LATENCY_RATE, measureSec, onTrade);
    const total = warm.sent + measured.sent;
    // Done when every record produced is applied (the node's own counters, cluster-wide).
    await waitFor(async () => (await statsTotals(children[0]!.url!)).applied >= total, {
      timeoutMs: 60_000,
      intervalMs: 100,
      what: `${total} records applied`,
      signal: died,
    });
    const reports = await Promise.all(children.map((c) => c.report()));
    const floorReport = await waitFor(
      async () => {
        const r = await floor!.report();
        return (r.window?.records ?? 0) >= measured.sent ? r : null;
      },
      {
        timeoutMs: 60_000,
        intervalMs: 100,
        what: "the floor consumer to count every record",
        signal: died,
      },
    );
    // Forming bars go out every 250 ms: give the stream time to show the last trades.
    const deliveredBy = Date.now() + 5_000;
    let delivered = streamDeliveries(trades, stream.events, measuredFrom);
    let wsDelivered = streamDeliveries(trades, ws.events, measuredFrom);
    while ((delivered.undelivered > 0 || wsDelivered.undelivered > 0) && Date.now() < deliveredBy) {
      await delay(100);
      delivered = streamDeliveries(trades, stream.events, measuredFrom);
      wsDelivered = streamDeliveries(trades, ws.events, measuredFrom);
    }
    const samples = reports.flatMap((r) => [...r.samples]);
    const windows = reports.map((r) => r.window).filter((w) => w !== null);
    const cpuUs = windows.reduce(
      (n, w) => n + (w.cpuLast.user - w.cpuFirst.user) + (w.cpuLast.system - w.cpuFirst.system),
      0,
    );
    const streamSummary = summarize(delivered.latencies);
    const wsSummary = summarize(wsDelivered.latencies);
    return {
      rate: LATENCY_RATE,
      produced: measured.sent,
      producedPerSec: measured.sent / measured.seconds,
      warmupSec,
      measureSec,
      applied: summarize(samples),
      floor: summarize(floorReport.samples),
      stream: streamSummary && {
        ...streamSummary,
        undelivered: delivered.undelivered,
        trades: delivered.latencies.length + delivered.undelivered,
      },
      ws: wsSummary && {
        ...wsSummary,
        undelivered: wsDelivered.undelivered,
        trades: wsDelivered.latencies.length + wsDelivered.undelivered,
      },
      batchDeliveryMs: summarize(reports.flatMap((r) => [...r.deliveryMs])),
      batches: reports.reduce((n, r) => n + r.batches, 0),
      nodeCpuPct: windows.length > 0 ? cpuUs / 1e4 / measured.seconds : null,
      eventLoopDelay: reports[0]?.eventLoopDelay ?? null,
    };
  } finally {
    stream?.close();
    ws?.close();
    await producer.disconnect().catch(() => undefined);
    await Promise.all([...children, ...(floor ? [floor] : [])].map((c) => c.stop()));
  }
}

/** One node at the fixed rate; run once per benchmark and shared with the two-node section. */
let oneNode: Promise<LatencyRun> | null = null;
export function oneNodeLatency(options: BenchOptions): Promise<LatencyRun> {
  oneNode ??= sharedKafka(options).then((kafka) => runLatency(options, kafka, 1, null));
  return oneNode;
}

export function ms(x: number | undefined | null): string {
  return x === undefined || x === null ? "n/a" : `${x.toFixed(1)} ms`;
}

export function latencyJson(run: LatencyRun): Record<string, unknown> {
  const r = (s: LatencySummary | null) =>
    s && {
      count: s.count,
      p50Ms: round(s.p50Ms, 2),
      p95Ms: round(s.p95Ms, 2),
      p99Ms: round(s.p99Ms, 2),
      maxMs: round(s.maxMs, 2),
      meanMs: round(s.meanMs, 2),
    };
  return {
    ratePerSec: run.rate,
    producedPerSec: Math.round(run.producedPerSec),
    produced: run.produced,
    warmupSec: run.warmupSec,
    measureSec: run.measureSec,
    applied: r(run.applied),
    floor: r(run.floor),
    stream: run.stream && { ...r(run.stream), undelivered: run.stream.undelivered },
    ws: run.ws && { ...r(run.ws), undelivered: run.ws.undelivered, connections: WS_CONNECTIONS },
    batchDeliveryMs: r(run.batchDeliveryMs),
    batches: run.batches,
    nodeCpuPct: run.nodeCpuPct === null ? null : round(run.nodeCpuPct, 1),
    eventLoopDelayMs: run.eventLoopDelay && {
      p50: round(run.eventLoopDelay.p50Ms, 2),
      p99: round(run.eventLoopDelay.p99Ms, 2),
      max: round(run.eventLoopDelay.maxMs, 2),
    },
  };
}

export const latencySection: Section = {
  key: "latency",
  title: `Latency at ${LATENCY_RATE / 1000}k trades/s, one node: produce → applied, produce → SSE and WebSocket`,
  async run(options) {
    const run = await oneNodeLatency(options);
    const a = run.applied;
    const s = run.stream;
    const overFloor = a && run.floor ? a.p99Ms - run.floor.p99Ms : null;
    const met = overFloor === null ? null : overFloor <= LATENCY_OVER_FLOOR_GOAL_MS;
    const loop = run.eventLoopDelay;
    const loopMet =
      loop === null
        ? null
        : loop.p99Ms <= EVENT_LOOP_GOAL_MS.p99 && loop.maxMs <= EVENT_LOOP_GOAL_MS.max;
    const verdict = (m: boolean | null) => (m === null ? "(n/a)" : m ? "met" : "NOT met");
    const table: Table = {
      title: this.title,
      header: ["path", "samples", "p50", "p95", "p99", "max", "goal"],
      rows: [
        [
          "produce → applied to bars",
          String(a?.count ?? 0),
          ms(a?.p50Ms),
          ms(a?.p95Ms),
          ms(a?.p99Ms),
          ms(a?.maxMs),
          `p99 − floor p99 = ${ms(overFloor ?? undefined)} ≤ ${LATENCY_OVER_FLOOR_GOAL_MS} ms ${verdict(met)}`,
        ],
        [
          "floor: produce → kafkajs consumer (count only)",
          String(run.floor?.count ?? 0),
          ms(run.floor?.p50Ms),
          ms(run.floor?.p95Ms),
          ms(run.floor?.p99Ms),
          ms(run.floor?.maxMs),
          "",
        ],
        [
          `produce → SSE delivery (${STREAM_SYMBOLS} symbols)`,
          String(s?.count ?? 0),
          ms(s?.p50Ms),
          ms(s?.p95Ms),
          ms(s?.p99Ms),
          ms(s?.maxMs),
          "",
        ],
        [
          `produce → WebSocket delivery (${STREAM_SYMBOLS} symbols, 1 of ${WS_CONNECTIONS} connections)`,
          String(run.ws?.count ?? 0),
          ms(run.ws?.p50Ms),
          ms(run.ws?.p95Ms),
          ms(run.ws?.p99Ms),
          ms(run.ws?.maxMs),
          "",
        ],
        [
          "event loop held (lateness of a 5 ms timer in the node)",
          "",
          ms(loop?.p50Ms),
          "",
          ms(loop?.p99Ms),
          ms(loop?.maxMs),
          `p99 ≤ ${EVENT_LOOP_GOAL_MS.p99} ms, max ≤ ${EVENT_LOOP_GOAL_MS.max} ms ${verdict(loopMet)}`,
        ],
        [
          "batch: decode + apply acknowledged",
          String(run.batchDeliveryMs?.count ?? 0),
          ms(run.batchDeliveryMs?.p50Ms),
          ms(run.batchDeliveryMs?.p95Ms),
          ms(run.batchDeliveryMs?.p99Ms),
          ms(run.batchDeliveryMs?.maxMs),
          "",
        ],
      ],
    };
    const notes = [
      `${run.produced} ExecutionReports produced at ${Math.round(run.producedPerSec)}/s for ${run.measureSec} s after a ${run.warmupSec} s warm-up (kafkajs, acks=1, one request per ${PRODUCE_TICK_MS} ms tick, stamped at send), 1,000 symbols, 6 partitions; node CPU ${run.nodeCpuPct === null ? "?" : run.nodeCpuPct.toFixed(0)} % of a core; node event loop held (lateness of a 5 ms timer) ${run.eventLoopDelay ? `p50 ${ms(run.eventLoopDelay.p50Ms)}, p99 ${ms(run.eventLoopDelay.p99Ms)}, max ${ms(run.eventLoopDelay.maxMs)}` : "?"}`,
      "applied = the node acknowledged the record's batch from every owning actor (probe around Pipeline.deliver), minus the record's Kafka timestamp; exact per-record samples, nearest-rank percentiles, 1 ms clock resolution",
      `WebSocket: the same measure on the first of ${WS_CONNECTIONS} connections held open on the gateway during the run (it subscribes to the ${STREAM_SYMBOLS} watched symbols, each other connection to one of them), with the SSE client beside it${run.ws && run.ws.undelivered > 0 ? `; ${run.ws.undelivered} trades not shown within 5 s` : ""}`,
      `SSE: first bar/closed event of the trade's 1m bar whose trade count includes it; forming bars are published every 250 ms and throttled per symbol (STREAM_THROTTLE_MS), so delivery is bounded below by design; a trade in a bar's last forming update before its minute ends shows only in its closed event, BAR_GRACE_MS (2 s) after the minute${s && s.undelivered > 0 ? `; ${s.undelivered} trades not shown within 5 s` : ""}`,
    ];
    return {
      json: {
        p50Ms: a && round(a.p50Ms, 2),
        p95Ms: a && round(a.p95Ms, 2),
        p99Ms: a && round(a.p99Ms, 2),
        p99OverFloorMs: overFloor === null ? null : round(overFloor, 2),
        goalP99OverFloorMs: LATENCY_OVER_FLOOR_GOAL_MS,
        goalMet: met,
        goalEventLoopMs: EVENT_LOOP_GOAL_MS,
        eventLoopGoalMet: loopMet,
        sseP99Ms: s && round(s.p99Ms, 2),
        wsP99Ms: run.ws && round(run.ws.p99Ms, 2),
        ...latencyJson(run),
      },
      tables: [table],
      // Latency goals are not ratios: they are `goalMet` / `eventLoopGoalMet` above.
      ratios: [],
      notes,
    };
  },
};
