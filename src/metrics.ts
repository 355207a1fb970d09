/**
 * Tickstream's own metrics, registered in Moleculer's built-in metric registry and exported by
 * its Prometheus reporter as `tickstream_*`. No label ever carries a symbol: cardinality stays
 * bounded however many symbols trade.
 */
import type { ServiceBroker } from "moleculer";

export const M = {
  messagesReceived: "tickstream.messages.received",
  messagesValid: "tickstream.messages.valid",
  messagesRejected: "tickstream.messages.rejected",
  messagesIgnored: "tickstream.messages.ignored",
  deadLettered: "tickstream.messages.deadlettered",
  tradesApplied: "tickstream.trades.applied",
  duplicates: "tickstream.trades.duplicates",
  late: "tickstream.trades.late",
  revised: "tickstream.bars.revised",
  tooLate: "tickstream.trades.too_late",
  orders: "tickstream.orders.applied",
  corrections: "tickstream.trades.corrections",
  correctionsApplied: "tickstream.trades.corrections.applied",
  correctionsSkipped: "tickstream.trades.corrections.skipped",
  barsClosed: "tickstream.bars.closed",
  anomalies: "tickstream.anomalies",
  e2eLatency: "tickstream.e2e.latency",
  nativeCallTime: "tickstream.native.call.time",
  symbols: "tickstream.symbols.active",
  handoffs: "tickstream.handoffs",
  kafkaLag: "tickstream.kafka.lag",
  barCloseDelay: "tickstream.bars.close.delay",
  checkpointRounds: "tickstream.checkpoint.rounds",
  checkpointStates: "tickstream.checkpoint.states",
  checkpointBytes: "tickstream.checkpoint.bytes",
  checkpointRestored: "tickstream.checkpoint.restored",
  custodyDropped: "tickstream.custody.dropped",
  custodyIllegalMoves: "tickstream.custody.illegal_moves",
  historyWritten: "tickstream.history.bars.written",
  historyWriteErrors: "tickstream.history.write.errors",
  historyBuffered: "tickstream.history.bars.buffered",
  historyDropped: "tickstream.history.bars.dropped",
  historyReadErrors: "tickstream.history.read.errors",
  nodesLost: "tickstream.cluster.nodes.lost",
  outboxPending: "tickstream.outbox.pending",
  outboxPublished: "tickstream.outbox.published",
  outboxOldestPending: "tickstream.outbox.oldest_pending_seconds",
} as const;

const LATENCY_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/** Registers every Tickstream metric once per broker (services call it from `created`). */
export function registerMetrics(broker: ServiceBroker): void {
  const metrics = broker.metrics;
  if (!broker.isMetricsEnabled() || metrics.getMetric(M.messagesReceived)) return;
  const counter = (name: string, description: string, labelNames: string[] = []) =>
    metrics.register({ type: "counter", name, description, labelNames, rate: true });
  counter(M.messagesReceived, "Records received by ingest, by source kind", ["source"]);
  counter(M.messagesValid, "Messages that passed validation");
  counter(M.messagesRejected, "Messages rejected by the decoder, by reason", ["reason"]);
  counter(M.messagesIgnored, "Valid messages that carry no trade (heartbeats, acks), by MsgType", [
    "msgType",
  ]);
  counter(M.deadLettered, "Rejected records written to the dead-letter topic, by reason", [
    "reason",
  ]);
  counter(M.tradesApplied, "Trades applied to bars");
  counter(M.duplicates, "Re-delivered trades skipped, by how they were recognised", ["by"]);
  counter(M.revised, "Updates to bars that had already closed (late trades within retention)");
  counter(M.tooLate, "Trades older than every interval's retention (reported, not applied)");
  counter(M.orders, "Orders applied to bar order flow");
  counter(M.corrections, "Trade cancels and corrections decoded, by kind", ["kind"]);
  counter(M.correctionsApplied, "Trades cancelled or corrected in their bars, by kind", ["kind"]);
  counter(
    M.correctionsSkipped,
    "Cancels and corrections that changed nothing, by reason (unreferenced, unknown_trade, outside_window, already_cancelled, duplicate, unchanged)",
    ["reason"],
  );
  counter(M.barsClosed, "Bars closed, by interval", ["interval"]);
  counter(M.anomalies, "Anomalies detected, by detector", ["detector"]);
  metrics.register({
    type: "histogram",
    name: M.e2eLatency,
    description: "Produce (Kafka record timestamp or feed time) to applied-to-bars, milliseconds",
    unit: "millisecond",
    buckets: LATENCY_BUCKETS_MS,
    quantiles: [0.5, 0.95, 0.99],
  });
  metrics.register({
    type: "histogram",
    name: M.nativeCallTime,
    description: "Time of one call into the Rust core, milliseconds, by call",
    unit: "millisecond",
    labelNames: ["call"],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 25],
    quantiles: [0.5, 0.99],
  });
  counter(M.handoffs, "Symbol states handed between nodes, by service and cause", [
    "service",
    "why",
  ]);
  metrics.register({
    type: "gauge",
    name: M.kafkaLag,
    description: "Records behind the end of each assigned Kafka partition",
    labelNames: ["topic", "partition"],
  });
  metrics.register({
    type: "histogram",
    name: M.barCloseDelay,
    description:
      "Wall-clock time from a bar's end to its close, ms, by interval (live feeds; a replay of history shows its age)",
    unit: "millisecond",
    labelNames: ["interval"],
    buckets: [100, 250, 500, 1000, 2000, 2500, 3000, 5000, 10000, 30000, 60000],
    quantiles: [0.5, 0.99],
  });
  counter(M.checkpointRounds, "Checkpoint rounds run by this ingest node, by result", ["result"]);
  counter(M.checkpointStates, "Symbol states written to the checkpoint store, by service", [
    "service",
  ]);
  counter(M.checkpointBytes, "Bytes of symbol states written to the checkpoint store", ["service"]);
  counter(M.checkpointRestored, "Symbol states restored from the checkpoint store, by service", [
    "service",
  ]);
  counter(
    M.custodyDropped,
    "Symbol states dropped because another process holds a newer epoch (a paused or partitioned node's), by service",
    ["service"],
  );
  counter(
    M.custodyIllegalMoves,
    "Lease moves the custody state machine does not allow (a bug; each also logged as an error)",
    ["service"],
  );
  counter(M.historyWritten, "Closed bars written to the history store");
  counter(M.historyWriteErrors, "Failed history writes (each is retried with backoff)");
  counter(M.historyDropped, "Closed bars dropped unwritten because the history buffer was full");
  counter(M.historyReadErrors, "History reads that failed (REST answered from memory only)");
  counter(
    M.nodesLost,
    "Nodes this node saw leave the cluster, by whether they left unexpectedly (missed heartbeats, a crash) or said goodbye",
    ["unexpected"],
  );
  metrics.register({
    type: "gauge",
    name: M.historyBuffered,
    description: "Closed bars waiting to be written to the history store",
  });
  counter(
    M.outboxPublished,
    "Bar versions and anomalies the publisher committed to Kafka (BARS_TOPIC, ANOMALIES_TOPIC), by service",
    ["service"],
  );
  metrics.register({
    type: "gauge",
    name: M.outboxPending,
    description: "Bar versions and anomalies made but not yet committed to Kafka, by service",
    labelNames: ["service"],
  });
  metrics.register({
    type: "gauge",
    name: M.outboxOldestPending,
    description:
      "Age of the oldest bar version or anomaly not yet committed to Kafka (0: none), by service",
    labelNames: ["service"],
  });
  metrics.register({
    type: "gauge",
    name: M.symbols,
    description: "Symbols held by this node's actors",
    labelNames: ["service"],
  });
}

/**
 * Counts every node this node sees leave (`$node.disconnected`) and logs the unexpected ones: a
 * node declared lost while it was only busy costs a handoff and a replay, so a busy cluster
 * must keep this at 0.
 */
export function countLostNodes(broker: ServiceBroker): void {
  registerMetrics(broker);
  broker.localBus.on("$node.disconnected", (p: { node: { id: string }; unexpected: boolean }) => {
    if (broker.isMetricsEnabled())
      broker.metrics.increment(M.nodesLost, { unexpected: String(p.unexpected) });
    if (p.unexpected)
      broker.logger.warn({ node: p.node.id }, `node ${p.node.id} declared lost (no heartbeat)`);
  });
}

/** Times a synchronous native call into the call-time histogram. */
export function timed<T>(broker: ServiceBroker, call: string, fn: () => T): T {
  const started = process.hrtime.bigint();
  try {
    return fn();
  } finally {
    if (broker.isMetricsEnabled())
      broker.metrics.observe(M.nativeCallTime, Number(process.hrtime.bigint() - started) / 1e6, {
        call,
      });
  }
}
