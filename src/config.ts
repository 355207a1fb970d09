/**
 * The one place where Tickstream reads its environment.
 *
 * Every setting is declared once in SETTINGS with its variable, default and meaning; the README's
 * configuration table is checked against this list by a test, so the two cannot drift apart.
 * Services and mixins receive the parsed `Config`; they never read `process.env` themselves.
 */
import os from "node:os";
import { LIVE_INTERVALS, type LiveInterval } from "./contracts/bars";
import { parseLiveIntervals } from "./windowing/spec";

export interface Setting {
  env: string;
  default: string;
  description: string;
}

/** Every environment variable Tickstream reads, with its default. */
export const SETTINGS = [
  // Cluster and transport
  {
    env: "TRANSPORTER",
    default: "",
    description:
      "Moleculer transporter URL, e.g. `nats://127.0.0.1:4222`; empty runs in-process (one node)",
  },
  {
    env: "NAMESPACE",
    default: "tickstream",
    description: "Moleculer namespace: nodes only see nodes of the same namespace",
  },
  { env: "NODEID", default: "<hostname>-<pid>", description: "Node ID, unique in the namespace" },
  {
    env: "SERVICES",
    default: "ingest,parser,aggregator,anomaly,api",
    description: "Services this node runs (`npm run node -- --services …` overrides)",
  },
  {
    env: "SERIALIZER",
    default: "CBOR",
    description:
      "Moleculer serializer (JSON, CBOR, MsgPack, Notepack); CBOR carries trade batches as raw bytes",
  },
  { env: "REQUEST_TIMEOUT_MS", default: "10000", description: "Timeout of every action call" },
  {
    env: "RETRIES",
    default: "5",
    description: "Retries of a retryable call failure (exponential backoff from 100 ms)",
  },
  {
    env: "CIRCUIT_BREAKER_THRESHOLD",
    default: "0.5",
    description: "Failure ratio in a 60 s window that opens an endpoint's circuit",
  },
  {
    env: "BULKHEAD_CONCURRENCY",
    default: "16",
    description: "Concurrent executions per action on a node; more are queued",
  },
  {
    env: "BULKHEAD_MAX_QUEUE",
    default: "1000",
    description: "Queued calls per action before new ones are refused (backpressure)",
  },
  { env: "HEARTBEAT_INTERVAL_S", default: "2", description: "Moleculer heartbeat interval" },
  {
    env: "HEARTBEAT_TIMEOUT_S",
    default: "6",
    description: "A node silent for this long is declared lost",
  },
  // HTTP, metrics, tracing, logs
  {
    env: "PORT",
    default: "3000",
    description:
      "REST gateway port (0 picks a free port); a node whose port is taken exits with code 2 and a line naming this setting",
  },
  {
    env: "API_KEY",
    default: "",
    description: "When set, every REST request must send it in the `X-API-Key` header",
  },
  {
    env: "RATE_LIMIT_PER_MIN",
    default: "6000",
    description: "REST requests per minute per client address",
  },
  {
    env: "DASHBOARD",
    default: "true",
    description: "Serve the dashboard (built into `dist/dashboard` by `npm run build`) at `/`",
  },
  {
    env: "STREAM_MAX_CONNECTIONS",
    default: "1000",
    description:
      "Open `/api/stream` and `/api/ws` connections per gateway node; more are answered 503 (WebSocket: refused before the upgrade)",
  },
  {
    env: "STREAM_MAX_SYMBOLS",
    default: "100",
    description: "Symbols one `/api/stream` or `/api/ws` connection may subscribe to",
  },
  {
    env: "STREAM_THROTTLE_MS",
    default: "250",
    description:
      "Least time between two forming-bar updates of one symbol and interval on the stream (later ones are coalesced to the latest)",
  },
  {
    env: "STREAM_KEEPALIVE_MS",
    default: "15000",
    description: "Interval of the keep-alive comment on every stream connection",
  },
  {
    env: "STREAM_MAX_BUFFER_BYTES",
    default: "262144",
    description:
      "Bytes a stream connection may have waiting to be sent; a client that falls further behind is disconnected",
  },
  {
    env: "STREAM_RETRY_MS",
    default: "2000",
    description: "Reconnection delay the stream suggests to clients (`retry:`)",
  },
  { env: "METRICS", default: "true", description: "Expose Prometheus metrics" },
  {
    env: "METRICS_PORT",
    default: "3030",
    description:
      "Prometheus metrics port (path `/metrics`); when taken, the next free port is used and logged, so nodes on one machine need no hand-picked ports",
  },
  { env: "TRACING", default: "false", description: "Record traces of calls" },
  {
    env: "TRACING_EXPORTER",
    default: "Console",
    description: "Trace exporter when tracing is on: Console, Zipkin",
  },
  {
    env: "ZIPKIN_URL",
    default: "http://127.0.0.1:9411",
    description: "Zipkin (or OpenTelemetry Collector) base URL for the Zipkin exporter",
  },
  {
    env: "LOG_LEVEL",
    default: "info",
    description: "Log level: fatal, error, warn, info, debug, trace",
  },
  // Feed
  {
    env: "FEED_FILE",
    default: "",
    description:
      "Replay this FIX file instead of the synthetic feed (raw SOH stream, or one message per line with SOH or `|`)",
  },
  {
    env: "FEED_RATE",
    default: "2000",
    description:
      "Messages per second of the synthetic feed; for a file, 0 (the default for files) replays as fast as possible",
  },
  { env: "FEED_SYMBOLS", default: "20", description: "Number of symbols of the synthetic feed" },
  {
    env: "FEED_MALFORMED_RATIO",
    default: "0.005",
    description: "Share of deliberately malformed messages in the synthetic feed",
  },
  {
    env: "FEED_JUMP_PROBABILITY",
    default: "0.0005",
    description: "Probability per trade of a price jump (an anomaly to find) in the synthetic feed",
  },
  { env: "FEED_SEED", default: "42", description: "Seed of the synthetic feed's random generator" },
  {
    env: "BATCH_MAX_RECORDS",
    default: "10000",
    description:
      "Records per ingest batch: bounds one native call and one batch sent to another node (about 65 B a trade, under NATS's 1 MB payload)",
  },
  // Kafka
  {
    env: "KAFKA_BROKERS",
    default: "",
    description:
      "Comma-separated Kafka bootstrap brokers; when set, ingest consumes Kafka instead of the built-in feed",
  },
  { env: "KAFKA_CLIENT_ID", default: "tickstream", description: "Kafka client id" },
  {
    env: "KAFKA_GROUP_ID",
    default: "tickstream",
    description: "Consumer group of the ingest nodes (partitions are shared among them)",
  },
  {
    env: "KAFKA_TOPICS",
    default: "trades,orders",
    description:
      "Topics to consume (created when missing); any topic may carry any FIX or JSON message",
  },
  { env: "KAFKA_PARTITIONS", default: "6", description: "Partitions of topics Tickstream creates" },
  {
    env: "KAFKA_DLQ_TOPIC",
    default: "trades.dlq",
    description:
      "Dead-letter topic: rejected records, unchanged, with reason/topic/partition/offset headers",
  },
  {
    env: "KAFKA_CONCURRENCY",
    default: "3",
    description: "Partitions processed concurrently by one ingest node",
  },
  {
    env: "KAFKA_MAX_BYTES_PER_PARTITION",
    default: "2097152",
    description: "Fetch size per partition (bounds memory with the concurrency)",
  },
  { env: "KAFKA_MAX_WAIT_MS", default: "100", description: "Longest a fetch waits for data" },
  {
    env: "KAFKA_SESSION_TIMEOUT_MS",
    default: "10000",
    description:
      "Consumer session timeout: how soon the group reassigns the partitions of a crashed ingest node",
  },
  {
    env: "KAFKA_REPLAY",
    default: "true",
    description:
      "On start, rebuild state by replaying each partition from the start of the 1m retention window (by record timestamp)",
  },
  {
    env: "STARVE_ON_SIGUSR2_MS",
    default: "0",
    description:
      "Test hook: on SIGUSR2 the node blocks its event loop for this many ms (a starved process); 0 turns it off",
  },
  {
    env: "BARS_TOPIC",
    default: "",
    description:
      "Kafka topic (compacted, created if missing) that every closed bar and each later version of it is published to, exactly once for a read_committed consumer; empty: off. Needs `KAFKA_BROKERS`",
  },
  {
    env: "ANOMALIES_TOPIC",
    default: "",
    description:
      "Kafka topic (compacted, created if missing) that each anomaly, and its `cancelled` version after a bust, is published to, exactly once for a read_committed consumer; empty: off. Needs `KAFKA_BROKERS`",
  },
  {
    env: "PUBLISH_INTERVAL_MS",
    default: "500",
    description:
      "How often the actors make their pending bar versions and anomalies durable and hand them to the publisher (one Kafka transaction per round)",
  },
  {
    env: "CHECKPOINT_INTERVAL_MS",
    default: "10000",
    description:
      "How often each Kafka ingest node of a cluster (NATS transporter) has the actors write their changed symbol states and then commits its offsets; must be > 0 there",
  },
  {
    env: "CHECKPOINT_NATS_URL",
    default: "",
    description:
      "NATS server(s) with JetStream holding the custody bucket (leases and checkpointed states); empty uses `TRANSPORTER` when it is a `nats://` URL",
  },
  {
    env: "CHECKPOINT_BUCKET",
    default: "tickstream-checkpoints",
    description:
      "JetStream key-value bucket of symbol leases and checkpointed states (`-NAMESPACE` is appended when set)",
  },
  { env: "KAFKA_SSL", default: "false", description: "Connect with TLS" },
  {
    env: "KAFKA_SASL_MECHANISM",
    default: "",
    description: "SASL mechanism: plain, scram-sha-256, scram-sha-512 (empty: no SASL)",
  },
  { env: "KAFKA_SASL_USERNAME", default: "", description: "SASL user name" },
  { env: "KAFKA_SASL_PASSWORD", default: "", description: "SASL password" },
  // Decoding and aggregation
  {
    env: "FIX_MD_ENTRY_TYPES",
    default: "2",
    description:
      "MDEntryType values of MarketDataIncrementalRefresh entries that count as trades (`2,3` adds index values)",
  },
  {
    env: "BAR_INTERVALS",
    default: "1m,5m,1h",
    description:
      "Live bar intervals that REST rolls up into any multiple of them (`interval=15m`, `4h`, `1d`, `1w`): a non-empty subset of the three the Rust core keeps (1m, 5m, 1h), which it keeps whatever this says; plus up to four tick (`<n>t`, a bar every n trades) and volume (`<n>v`, every n units) bar specs, kept in memory per symbol (the last 500 bars each)",
  },
  {
    env: "BAR_GRACE_MS",
    default: "2000",
    description:
      "A bar closes once the symbol's event time (or, live, the wall clock) passes its end plus this",
  },
  {
    env: "RETENTION_1M",
    default: "2h",
    description: "Retention of 1m bars, in event time back from the symbol's latest trade",
  },
  {
    env: "RETENTION_5M",
    default: "12h",
    description: "Retention of 5m bars in memory (older bars are served from the history store)",
  },
  {
    env: "RETENTION_1H",
    default: "2d",
    description: "Retention of 1h bars in memory (older bars are served from the history store)",
  },
  {
    env: "CORRECTION_WINDOW",
    default: "",
    description:
      "How far back (event time, from the symbol's latest trade) a trade may be cancelled or corrected; its trades are kept in memory for that. Empty: `RETENTION_1M`, the longest allowed; `0` applies no cancel or correction",
  },
  {
    env: "DEDUPE_CAPACITY",
    default: "65536",
    description: "Trade ids remembered per symbol for duplicate detection",
  },
  // History
  {
    env: "HISTORY_URL",
    default: "sqlite:.data/history.sqlite",
    description:
      "Where closed bars are kept beyond in-memory retention: `sqlite:PATH` (embedded, for one node; relative to the working directory; `-NAMESPACE` is inserted before the extension when set), `postgres://user:password@host:5432/db` (PostgreSQL, shared by a cluster; rows keyed by namespace), or `off`",
  },
  {
    env: "HISTORY_FLUSH_MS",
    default: "1000",
    description: "Longest a closed bar waits in memory before it is written to history",
  },
  {
    env: "HISTORY_BATCH_SIZE",
    default: "500",
    description: "Bars per history write; a full batch is written at once",
  },
  {
    env: "HISTORY_BUFFER_MAX",
    default: "100000",
    description:
      "Closed bars held while history is slow or down; beyond this the oldest are dropped (and counted)",
  },
  {
    env: "HISTORY_RETRY_MAX_MS",
    default: "10000",
    description:
      "Longest pause between write attempts while history is down (backoff doubles from `HISTORY_FLUSH_MS`)",
  },
  {
    env: "HISTORY_TIMEOUT_MS",
    default: "3000",
    description:
      "Longest a PostgreSQL history query may take; a read that fails or times out answers with the in-memory bars only",
  },
  // Anomalies
  { env: "DETECTOR", default: "zscore", description: "Anomaly detector: zscore, ewma, mad" },
  { env: "DETECTOR_WINDOW", default: "100", description: "Returns kept by the detector (W)" },
  {
    env: "DETECTOR_MIN_SAMPLES",
    default: "30",
    description: "Returns needed before the detector judges (M)",
  },
  {
    env: "DETECTOR_THRESHOLD",
    default: "4",
    description: "|z| at or above which a trade is an anomaly (T)",
  },
  { env: "DETECTOR_LAMBDA", default: "0.94", description: "Decay of the ewma detector" },
  {
    env: "DETECTOR_OVERRIDES",
    default: "",
    description: 'Per-symbol detector settings as JSON, e.g. `{"BTC-USD":{"threshold":6}}`',
  },
  { env: "ANOMALY_CAPACITY", default: "10000", description: "Recent anomalies kept per node" },
] as const satisfies readonly Setting[];

export type SettingName = (typeof SETTINGS)[number]["env"];

export class ConfigError extends Error {
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(`${setting}: ${message}`);
    this.name = "ConfigError";
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function raw(env: Env, name: SettingName): string {
  const value = env[name];
  if (value !== undefined && value.trim() !== "") return value.trim();
  const setting = SETTINGS.find((s) => s.env === name);
  return setting ? setting.default : "";
}

function int(env: Env, name: SettingName, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const text = raw(env, name);
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new ConfigError(name, `expected an integer in [${min}, ${max}], got "${text}"`);
  return n;
}

function num(env: Env, name: SettingName, min: number, max: number): number {
  const text = raw(env, name);
  const n = Number(text);
  if (!Number.isFinite(n) || n < min || n > max)
    throw new ConfigError(name, `expected a number in [${min}, ${max}], got "${text}"`);
  return n;
}

function bool(env: Env, name: SettingName): boolean {
  const text = raw(env, name).toLowerCase();
  if (["1", "true", "yes", "on"].includes(text)) return true;
  if (["0", "false", "no", "off"].includes(text)) return false;
  throw new ConfigError(name, `expected true or false, got "${text}"`);
}

function oneOf<T extends string>(env: Env, name: SettingName, allowed: readonly T[]): T {
  const text = raw(env, name);
  const found = allowed.find((a) => a.toLowerCase() === text.toLowerCase());
  if (!found) throw new ConfigError(name, `expected one of ${allowed.join(", ")}, got "${text}"`);
  return found;
}

const DURATION_UNITS_MS: Record<string, number> = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 };

/** Parses `90s`, `15m`, `24h`, `7d` (or plain milliseconds) to milliseconds. */
export function parseDurationMs(text: string): number | undefined {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m?.[1]) return undefined;
  const n = Number(m[1]);
  const unit = m[2];
  if (unit === undefined || unit === "ms") return n;
  const factor = DURATION_UNITS_MS[unit];
  return factor === undefined ? undefined : n * factor;
}

function duration(env: Env, name: SettingName): number {
  const text = raw(env, name);
  const ms = parseDurationMs(text);
  if (ms === undefined || ms <= 0)
    throw new ConfigError(name, `expected a duration like 24h, got "${text}"`);
  return ms;
}

/**
 * `BAR_INTERVALS`: the core keeps 1m, 5m and 1h; a subset names the ones roll-ups read. Tick and
 * volume specs are kept as listed.
 */
function liveIntervals(env: Env): { intervals: LiveInterval[]; activity: string[] } {
  const text = raw(env, "BAR_INTERVALS");
  const parsed = parseLiveIntervals(text);
  if (parsed === null)
    throw new ConfigError(
      "BAR_INTERVALS",
      `expected distinct intervals among ${LIVE_INTERVALS.join(", ")} (the ones the Rust core keeps; at least one) and up to four <n>t or <n>v, got "${text}"`,
    );
  return parsed;
}

/** `CORRECTION_WINDOW`: empty is the 1m retention, which is also the most it may be. */
function correctionWindow(env: Env, retention1mMs: number): number {
  const text = raw(env, "CORRECTION_WINDOW");
  if (text === "") return retention1mMs;
  const ms = parseDurationMs(text);
  if (ms === undefined || ms < 0)
    throw new ConfigError("CORRECTION_WINDOW", `expected a duration like 30m, got "${text}"`);
  if (ms > retention1mMs)
    throw new ConfigError(
      "CORRECTION_WINDOW",
      `${text} is longer than RETENTION_1M: a corrected trade's 1m bar must still be in memory`,
    );
  return ms;
}

export const SERVICE_NAMES = ["ingest", "parser", "aggregator", "anomaly", "api"] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export function parseServiceList(text: string): ServiceName[] {
  const names = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  const unknown = names.filter((n) => !(SERVICE_NAMES as readonly string[]).includes(n));
  if (unknown.length > 0)
    throw new ConfigError(
      "SERVICES",
      `unknown service(s) ${unknown.join(", ")}; known: ${SERVICE_NAMES.join(", ")}`,
    );
  return names as ServiceName[];
}

export interface DetectorOverride {
  window?: number;
  minSamples?: number;
  threshold?: number;
  lambda?: number;
}

function detectorOverrides(env: Env): Record<string, DetectorOverride> {
  const text = raw(env, "DETECTOR_OVERRIDES");
  if (text === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err: unknown) {
    throw new ConfigError("DETECTOR_OVERRIDES", `not JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new ConfigError("DETECTOR_OVERRIDES", "expected an object of symbol → settings");
  const out: Record<string, DetectorOverride> = {};
  for (const [symbol, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (typeof value !== "object" || value === null)
      throw new ConfigError("DETECTOR_OVERRIDES", `settings of ${symbol} must be an object`);
    const o: DetectorOverride = {};
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      if (!["window", "minSamples", "threshold", "lambda"].includes(key) || typeof v !== "number")
        throw new ConfigError(
          "DETECTOR_OVERRIDES",
          `${symbol}.${key} is not a known numeric setting`,
        );
      o[key as keyof DetectorOverride] = v;
    }
    out[symbol] = o;
  }
  return out;
}

export interface KafkaConfig {
  brokers: string[];
  clientId: string;
  groupId: string;
  topics: string[];
  partitions: number;
  dlqTopic: string;
  concurrency: number;
  maxBytesPerPartition: number;
  maxWaitMs: number;
  sessionTimeoutMs: number;
  replay: boolean;
  ssl: boolean;
  sasl: {
    mechanism: "plain" | "scram-sha-256" | "scram-sha-512";
    username: string;
    password: string;
  } | null;
}

function list(env: Env, name: SettingName): string[] {
  return raw(env, name)
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

function kafka(env: Env): KafkaConfig | null {
  const brokers = list(env, "KAFKA_BROKERS");
  if (brokers.length === 0) return null;
  const mechanism = raw(env, "KAFKA_SASL_MECHANISM");
  const topics = list(env, "KAFKA_TOPICS");
  if (topics.length === 0) throw new ConfigError("KAFKA_TOPICS", "needs at least one topic");
  return {
    brokers,
    clientId: raw(env, "KAFKA_CLIENT_ID"),
    groupId: raw(env, "KAFKA_GROUP_ID"),
    topics,
    partitions: int(env, "KAFKA_PARTITIONS", 1, 10_000),
    dlqTopic: raw(env, "KAFKA_DLQ_TOPIC"),
    concurrency: int(env, "KAFKA_CONCURRENCY", 1, 1000),
    maxBytesPerPartition: int(env, "KAFKA_MAX_BYTES_PER_PARTITION", 1024),
    maxWaitMs: int(env, "KAFKA_MAX_WAIT_MS", 0, 60_000),
    sessionTimeoutMs: int(env, "KAFKA_SESSION_TIMEOUT_MS", 6000, 300_000),
    replay: bool(env, "KAFKA_REPLAY"),
    ssl: bool(env, "KAFKA_SSL"),
    sasl:
      mechanism === ""
        ? null
        : {
            mechanism: oneOf(env, "KAFKA_SASL_MECHANISM", [
              "plain",
              "scram-sha-256",
              "scram-sha-512",
            ] as const),
            username: raw(env, "KAFKA_SASL_USERNAME"),
            password: raw(env, "KAFKA_SASL_PASSWORD"),
          },
  };
}

/** Where history goes: an embedded SQLite file or a PostgreSQL server. */
export type HistoryTarget = { kind: "sqlite"; path: string } | { kind: "postgres"; url: string };

export interface HistoryConfig {
  /** Null when history is off. */
  target: HistoryTarget | null;
  flushMs: number;
  batchSize: number;
  bufferMax: number;
  retryMaxMs: number;
  timeoutMs: number;
}

function historyTarget(env: Env): HistoryTarget | null {
  const text = raw(env, "HISTORY_URL");
  if (text.toLowerCase() === "off") return null;
  if (text.startsWith("sqlite:")) {
    const file = text.slice("sqlite:".length);
    if (file === "") throw new ConfigError("HISTORY_URL", "sqlite: needs a file path");
    return { kind: "sqlite", path: file };
  }
  if (/^postgres(ql)?:\/\//.test(text)) {
    try {
      new URL(text);
    } catch {
      throw new ConfigError("HISTORY_URL", "not a valid postgres:// URL");
    }
    return { kind: "postgres", url: text };
  }
  throw new ConfigError(
    "HISTORY_URL",
    `expected sqlite:PATH, postgres://… or off, got "${text.replace(/\/\/[^@/]*@/, "//…@")}"`,
  );
}

function history(env: Env): HistoryConfig {
  return {
    target: historyTarget(env),
    flushMs: int(env, "HISTORY_FLUSH_MS", 10, 3_600_000),
    batchSize: int(env, "HISTORY_BATCH_SIZE", 1, 100_000),
    bufferMax: int(env, "HISTORY_BUFFER_MAX", 1),
    retryMaxMs: int(env, "HISTORY_RETRY_MAX_MS", 10, 3_600_000),
    timeoutMs: int(env, "HISTORY_TIMEOUT_MS", 10, 600_000),
  };
}

export const DETECTORS = ["zscore", "ewma", "mad"] as const;
export type DetectorKind = (typeof DETECTORS)[number];

function custody(env: Env, transporter: string): Config["custody"] {
  const explicit = raw(env, "CHECKPOINT_NATS_URL");
  const natsUrl = explicit !== "" ? explicit : transporter.startsWith("nats://") ? transporter : "";
  const namespace = raw(env, "NAMESPACE");
  const bucket = raw(env, "CHECKPOINT_BUCKET");
  if (!/^[-\w]+$/.test(bucket))
    throw new ConfigError("CHECKPOINT_BUCKET", `"${bucket}": letters, digits, - and _ only`);
  const suffix = namespace.replace(/[^-\w]/g, "_");
  return {
    natsUrl: natsUrl === "" ? null : natsUrl,
    bucket: suffix === "" ? bucket : `${bucket}-${suffix}`,
  };
}

/**
 * Checkpoint rounds run where a cluster consumes Kafka; there they are how offsets are committed
 * (only what fenced writes made durable is committed), so they cannot be turned off.
 */
function checkpoints(env: Env, store: Config["custody"], kafka: boolean): Config["checkpoints"] {
  const intervalMs = int(env, "CHECKPOINT_INTERVAL_MS", 0, 3_600_000);
  if (store.natsUrl === null || !kafka) return null;
  if (intervalMs === 0)
    throw new ConfigError(
      "CHECKPOINT_INTERVAL_MS",
      "0: a cluster consuming Kafka commits offsets only through checkpoint rounds",
    );
  return { intervalMs };
}

/**
 * `BARS_TOPIC` / `ANOMALIES_TOPIC`: off unless one is set. Exactly once needs the records' states
 * to outlive a process (the custody store on NATS JetStream): a node restarted from memory would
 * make and publish its bars again under versions already used.
 */
function publish(env: Env, kafka: KafkaConfig | null, store: Config["custody"]): Config["publish"] {
  const bars = raw(env, "BARS_TOPIC");
  const anomalies = raw(env, "ANOMALIES_TOPIC");
  if (bars === "" && anomalies === "") return null;
  if (kafka === null)
    throw new ConfigError(
      bars === "" ? "ANOMALIES_TOPIC" : "BARS_TOPIC",
      "set, but KAFKA_BROKERS is empty: the topic needs a Kafka cluster",
    );
  if (store.natsUrl === null)
    throw new ConfigError(
      bars === "" ? "ANOMALIES_TOPIC" : "BARS_TOPIC",
      "set, but there is no custody store: exactly-once publishing needs states kept in NATS JetStream (TRANSPORTER=nats://… or CHECKPOINT_NATS_URL)",
    );
  return {
    barsTopic: bars === "" ? null : bars,
    anomaliesTopic: anomalies === "" ? null : anomalies,
    intervalMs: int(env, "PUBLISH_INTERVAL_MS", 10, 3_600_000),
  };
}

/** Tickstream's parsed configuration. */
export interface Config {
  transporter: string | null;
  namespace: string;
  nodeID: string;
  services: ServiceName[];
  serializer: "JSON" | "CBOR" | "MsgPack" | "Notepack";
  requestTimeoutMs: number;
  retries: number;
  circuitBreakerThreshold: number;
  bulkhead: { concurrency: number; maxQueueSize: number };
  heartbeat: { intervalS: number; timeoutS: number };
  http: { port: number; apiKey: string | null; rateLimitPerMin: number; dashboard: boolean };
  stream: {
    maxConnections: number;
    maxSymbols: number;
    throttleMs: number;
    keepAliveMs: number;
    maxBufferBytes: number;
    retryMs: number;
  };
  metrics: { enabled: boolean; port: number };
  tracing: { enabled: boolean; exporter: "Console" | "Zipkin"; zipkinUrl: string };
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace";
  feed: {
    file: string | null;
    rate: number;
    symbols: number;
    malformedRatio: number;
    jumpProbability: number;
    seed: number;
    batchMaxRecords: number;
  };
  kafka: KafkaConfig | null;
  /** The custody store: JetStream KV on `natsUrl`, or in process memory when null. */
  custody: { natsUrl: string | null; bucket: string };
  /** Checkpoint rounds (a cluster consuming Kafka); null otherwise. */
  checkpoints: { intervalMs: number } | null;
  publish: { barsTopic: string | null; anomaliesTopic: string | null; intervalMs: number } | null;
  decoder: { mdEntryTypes: string };
  bars: {
    /** Live intervals roll-ups read, finest first (BAR_INTERVALS). */
    intervals: LiveInterval[];
    /** Tick and volume bar specs (`100t`, `5000v`) of BAR_INTERVALS. */
    activity: string[];
    graceMs: number;
    retentionMs: Record<LiveInterval, number>;
    /** How far back a trade may be cancelled or corrected (≤ the 1m retention). */
    correctionWindowMs: number;
    dedupeCapacity: number;
  };
  history: HistoryConfig;
  detector: {
    kind: DetectorKind;
    window: number;
    minSamples: number;
    threshold: number;
    lambda: number;
    overrides: Record<string, DetectorOverride>;
  };
  anomalyCapacity: number;
  /** Test hook: ms to block the event loop on SIGUSR2 (0: off). */
  starveOnSigusr2Ms: number;
}

/** Reads the configuration from an environment (default: `process.env`); throws `ConfigError`. */
export function loadConfig(env: Env = process.env): Config {
  const transporter = raw(env, "TRANSPORTER");
  const file = raw(env, "FEED_FILE");
  const nodeID = env.NODEID?.trim() || `${os.hostname()}-${process.pid}`;
  const mdEntryTypes = raw(env, "FIX_MD_ENTRY_TYPES");
  if (!/^[0-9A-Za-z]+(,[0-9A-Za-z]+)*$/.test(mdEntryTypes))
    throw new ConfigError(
      "FIX_MD_ENTRY_TYPES",
      `expected a list like "2,3", got "${mdEntryTypes}"`,
    );
  const kafkaConfig = kafka(env);
  const store = custody(env, transporter);
  return {
    transporter: transporter === "" ? null : transporter,
    namespace: raw(env, "NAMESPACE"),
    nodeID,
    services: parseServiceList(raw(env, "SERVICES")),
    serializer: oneOf(env, "SERIALIZER", ["JSON", "CBOR", "MsgPack", "Notepack"] as const),
    requestTimeoutMs: int(env, "REQUEST_TIMEOUT_MS", 1),
    retries: int(env, "RETRIES", 0, 100),
    circuitBreakerThreshold: num(env, "CIRCUIT_BREAKER_THRESHOLD", 0.01, 1),
    bulkhead: {
      concurrency: int(env, "BULKHEAD_CONCURRENCY", 1),
      maxQueueSize: int(env, "BULKHEAD_MAX_QUEUE", 1),
    },
    heartbeat: {
      intervalS: int(env, "HEARTBEAT_INTERVAL_S", 1),
      timeoutS: int(env, "HEARTBEAT_TIMEOUT_S", 2),
    },
    http: {
      port: int(env, "PORT", 0, 65535),
      apiKey: raw(env, "API_KEY") || null,
      rateLimitPerMin: int(env, "RATE_LIMIT_PER_MIN", 1),
      dashboard: bool(env, "DASHBOARD"),
    },
    stream: {
      maxConnections: int(env, "STREAM_MAX_CONNECTIONS", 1, 1_000_000),
      maxSymbols: int(env, "STREAM_MAX_SYMBOLS", 1, 100_000),
      throttleMs: int(env, "STREAM_THROTTLE_MS", 0, 60_000),
      keepAliveMs: int(env, "STREAM_KEEPALIVE_MS", 10, 3_600_000),
      maxBufferBytes: int(env, "STREAM_MAX_BUFFER_BYTES", 1024),
      retryMs: int(env, "STREAM_RETRY_MS", 0, 3_600_000),
    },
    metrics: { enabled: bool(env, "METRICS"), port: int(env, "METRICS_PORT", 0, 65535) },
    tracing: {
      enabled: bool(env, "TRACING"),
      exporter: oneOf(env, "TRACING_EXPORTER", ["Console", "Zipkin"] as const),
      zipkinUrl: raw(env, "ZIPKIN_URL"),
    },
    logLevel: oneOf(env, "LOG_LEVEL", [
      "fatal",
      "error",
      "warn",
      "info",
      "debug",
      "trace",
    ] as const),
    feed: {
      file: file === "" ? null : file,
      // A file replays as fast as it can unless a rate is given explicitly.
      rate: file !== "" && !env.FEED_RATE?.trim() ? 0 : int(env, "FEED_RATE", 0),
      symbols: int(env, "FEED_SYMBOLS", 1, 100_000),
      malformedRatio: num(env, "FEED_MALFORMED_RATIO", 0, 1),
      jumpProbability: num(env, "FEED_JUMP_PROBABILITY", 0, 1),
      seed: int(env, "FEED_SEED", 0, 2 ** 31 - 1),
      batchMaxRecords: int(env, "BATCH_MAX_RECORDS", 1, 100_000),
    },
    kafka: kafkaConfig,
    custody: store,
    checkpoints: checkpoints(env, store, kafkaConfig !== null),
    publish: publish(env, kafkaConfig, store),
    starveOnSigusr2Ms: int(env, "STARVE_ON_SIGUSR2_MS", 0, 600_000),
    decoder: { mdEntryTypes },
    bars: {
      ...liveIntervals(env),
      graceMs: int(env, "BAR_GRACE_MS", 0),
      retentionMs: {
        "1m": duration(env, "RETENTION_1M"),
        "5m": duration(env, "RETENTION_5M"),
        "1h": duration(env, "RETENTION_1H"),
      },
      correctionWindowMs: correctionWindow(env, duration(env, "RETENTION_1M")),
      dedupeCapacity: int(env, "DEDUPE_CAPACITY", 0),
    },
    history: history(env),
    detector: {
      kind: oneOf(env, "DETECTOR", DETECTORS),
      window: int(env, "DETECTOR_WINDOW", 2),
      minSamples: int(env, "DETECTOR_MIN_SAMPLES", 2),
      threshold: num(env, "DETECTOR_THRESHOLD", 0, 1e6),
      lambda: num(env, "DETECTOR_LAMBDA", 0, 1),
      overrides: detectorOverrides(env),
    },
    anomalyCapacity: int(env, "ANOMALY_CAPACITY", 1),
  };
}
