/**
 * Cluster-wide views over the per-symbol actors, shared by the REST gateway and the REPL: a
 * symbol's bars come from its owner; symbols, anomalies and stats are merged from every node.
 */
import type { Context, ServiceBroker } from "moleculer";
import type { AnomalyQuery, AnomalyRecord } from "../contracts/anomalies";
import {
  SKIP_REASONS,
  type AggregatorStats,
  type AnomalyStats,
  type IngestStats,
  type NodeStats,
  type ParserStats,
  type SymbolSummary,
} from "../contracts/stats";

/** A `Context` (keeps the request id and trace) or, outside a request, the broker itself. */
export type Caller = Context | ServiceBroker;

function brokerOf(caller: Caller): ServiceBroker {
  return "broker" in caller && caller.broker ? caller.broker : (caller as ServiceBroker);
}

/** Calls an action on every node that has it, in parallel. */
export async function callEverywhere<T>(
  caller: Caller,
  action: string,
  params: object = {},
): Promise<{ nodeID: string; result: T }[]> {
  const list = brokerOf(caller).registry.getActionEndpoints(action);
  const nodeIDs = list ? list.endpoints.filter((e) => e.isAvailable).map((e) => e.id) : [];
  return Promise.all(
    nodeIDs.map(async (nodeID) => ({
      nodeID,
      result: await caller.call<T, object>(action, params, { nodeID }),
    })),
  );
}

export async function symbolsView(caller: Caller): Promise<SymbolSummary[]> {
  const parts = await callEverywhere<SymbolSummary[]>(caller, "aggregator.symbols");
  // A superseded node may still list a symbol it has not yet found out it lost: the newest epoch wins.
  const newest = new Map<string, SymbolSummary>();
  for (const s of parts.flatMap((p) => p.result.map((r) => ({ ...r, node: p.nodeID })))) {
    const seen = newest.get(s.symbol);
    if (seen === undefined || s.epoch > seen.epoch) newest.set(s.symbol, s);
  }
  return [...newest.values()].sort((a, b) =>
    a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0,
  );
}

export async function anomaliesView(caller: Caller, query: AnomalyQuery): Promise<AnomalyRecord[]> {
  const parts = await callEverywhere<AnomalyRecord[]>(caller, "anomaly.list", query);
  return parts
    .flatMap((p) => p.result)
    .sort((a, b) => b.timeMs - a.timeMs)
    .slice(0, query.limit);
}

/** Per-node counters of the whole pipeline. */
export async function statsView(caller: Caller): Promise<NodeStats[]> {
  const [parser, aggregator, anomaly, ingest] = await Promise.all([
    callEverywhere<ParserStats>(caller, "parser.stats"),
    callEverywhere<AggregatorStats>(caller, "aggregator.stats"),
    callEverywhere<AnomalyStats>(caller, "anomaly.stats"),
    callEverywhere<IngestStats>(caller, "ingest.stats"),
  ]);
  const nodes = new Map<string, NodeStats>();
  const node = (nodeID: string): NodeStats => {
    let n = nodes.get(nodeID);
    if (!n) {
      n = {
        nodeID,
        messages: { received: 0, valid: 0, rejected: {}, ignored: {} },
        trades: { decoded: 0, applied: 0, duplicates: 0, revised: 0, tooLate: 0, corrections: 0 },
        orders: 0,
        anomalies: 0,
        symbols: 0,
        corrections: { received: 0, unreferenced: 0, cancelled: 0, corrected: 0, skipped: {} },
        source: null,
        publishing: { pending: 0, published: 0, oldestPendingMs: null },
      };
      nodes.set(nodeID, n);
    }
    return n;
  };
  for (const { nodeID, result: p } of parser) {
    const n = node(nodeID);
    n.messages = { received: p.records, valid: p.valid, rejected: p.rejected, ignored: p.ignored };
    n.trades.decoded = p.trades;
    n.trades.corrections = p.corrections;
    n.corrections.received = p.corrections;
    n.corrections.unreferenced = p.unreferenced;
  }
  for (const { nodeID, result: a } of aggregator) {
    const n = node(nodeID);
    Object.assign(n.trades, {
      applied: a.applied,
      duplicates: a.duplicates,
      revised: a.revised,
      tooLate: a.tooLate,
    });
    n.orders = a.orders;
    n.symbols = a.symbols;
    n.corrections.cancelled = a.corrections.cancelled;
    n.corrections.corrected = a.corrections.corrected;
    n.corrections.skipped = Object.fromEntries(
      Object.entries(SKIP_REASONS).map(([k, reason]) => [
        reason,
        a.corrections.skipped[k as keyof typeof SKIP_REASONS],
      ]),
    );
  }
  for (const { nodeID, result: a } of anomaly) node(nodeID).anomalies = a.anomalies;
  for (const { nodeID, result } of [...aggregator, ...anomaly]) {
    const p = node(nodeID).publishing;
    const o = result.outbox;
    p.pending += o.pending;
    p.published += o.published;
    if (o.oldestPendingMs !== null)
      p.oldestPendingMs = Math.max(p.oldestPendingMs ?? 0, o.oldestPendingMs);
  }
  for (const { nodeID, result: i } of ingest) {
    const { source, live, ...counters } = i;
    node(nodeID).source = { name: source, live, ...counters };
  }
  return [...nodes.values()].sort((a, b) => a.nodeID.localeCompare(b.nodeID));
}
