/**
 * Custom commands of the Moleculer REPL (`npm run repl`): `symbols`, `bars <symbol> [interval]
 * [--limit n] [--tz zone] [--session HH:MM-HH:MM] [--fill prev]`, `anomalies [symbol]`, `stats`, `owner <symbol>`, `handoffs`, each printed as a
 * table (`nodes` is Moleculer's own). They use the same
 * cluster-wide views as the REST gateway, so they work on any node of a cluster.
 */
import type { ServiceBroker } from "moleculer";
import { anomaliesView, callEverywhere, statsView, symbolsView } from "../cluster/views";
import type { BarJson } from "../contracts/bars";
import { parseFill, parseLimit, parseSymbol } from "../api/params";
import { parseSession } from "../windowing/session";
import { parseZone } from "../windowing/zone";
import { ACTIVITY_PATTERN } from "../windowing/spec";

/** Options of `bars` beside the interval and limit (the aggregator checks the interval). */
export interface BarsOptions {
  tz?: string | undefined;
  session?: string | undefined;
  fill?: string | undefined;
}

/** What moleculer-repl 0.8 passes as `args` (an object, whatever its typings say). */
export interface ReplArgs {
  options: Record<string, string | boolean | undefined>;
  [key: string]: unknown;
}

export type Rows = (string | number)[][];

const fmt = (n: number | null | undefined, digits = 4): string =>
  n === null || n === undefined ? "–" : Number.isInteger(n) ? String(n) : n.toFixed(digits);

export async function symbolsRows(broker: ServiceBroker): Promise<Rows> {
  const symbols = await symbolsView(broker);
  return [
    ["Symbol", "Trades", "Last price", "Last trade (UTC)"],
    ...symbols.map((s) => [s.symbol, s.trades, fmt(s.lastPrice), s.lastTradeTime ?? "–"]),
  ];
}

export async function barsRows(
  broker: ServiceBroker,
  symbol: string,
  interval: string | undefined,
  limit: string | undefined,
  options: BarsOptions = {},
): Promise<Rows> {
  const session = parseSession(options.session);
  // Tick and volume bars (`100t`, `5000v`) have their own action; the aggregator checks the spec.
  const activity = interval !== undefined && ACTIVITY_PATTERN.test(interval);
  const answer = await broker.call<{ bars: (BarJson & { filled?: boolean })[] }, object>(
    activity ? "aggregator.activityBars" : "aggregator.bars",
    {
      symbol: parseSymbol(symbol),
      interval: interval === undefined || interval === "" ? "1m" : interval,
      ...(options.tz === undefined ? {} : { tz: parseZone(options.tz) }),
      ...(session === null ? {} : { session: session.text }),
      ...(options.fill === undefined ? {} : { fill: parseFill(options.fill) }),
      limit: parseLimit(limit, 20),
    },
  );
  const state = (b: BarJson & { filled?: boolean }) =>
    b.filled === true
      ? "filled"
      : `${b.closed ? "closed" : "forming"}${b.revised ? ", revised" : ""}`;
  return [
    ["Start (UTC)", "Open", "High", "Low", "Close", "Volume", "VWAP", "Trades", "State"],
    ...answer.bars.map((b) => [
      b.start,
      fmt(b.open),
      fmt(b.high),
      fmt(b.low),
      fmt(b.close),
      fmt(b.volume, 2),
      fmt(b.vwap),
      b.trades,
      state(b),
    ]),
  ];
}

export async function anomaliesRows(
  broker: ServiceBroker,
  symbol: string | undefined,
): Promise<Rows> {
  const anomalies = await anomaliesView(broker, {
    ...(symbol ? { symbol: parseSymbol(symbol) } : {}),
    limit: 50,
  });
  return [
    ["Time (UTC)", "Symbol", "Price", "Prev", "Return", "z", "Detector"],
    ...anomalies.map((a) => [
      a.time,
      a.symbol,
      fmt(a.price),
      fmt(a.prevPrice),
      fmt(a.ret, 5),
      fmt(a.zscore, 2),
      a.detector,
    ]),
  ];
}

export async function statsRows(broker: ServiceBroker): Promise<Rows> {
  const nodes = await statsView(broker);
  return [
    [
      "Node",
      "Received",
      "Valid",
      "Rejected",
      "Applied",
      "Duplicates",
      "Revised",
      "Orders",
      "Anomalies",
      "Symbols",
      "Source",
    ],
    ...nodes.map((n) => [
      n.nodeID,
      n.messages.received,
      n.messages.valid,
      Object.entries(n.messages.rejected)
        .map(([r, c]) => `${r}:${c}`)
        .join(" ") || "0",
      n.trades.applied,
      n.trades.duplicates,
      n.trades.revised,
      n.orders,
      n.anomalies,
      n.symbols,
      n.source ? `${n.source.name}${n.source.live ? " (live)" : ""}` : "–",
    ]),
  ];
}

export async function ownerRows(broker: ServiceBroker, symbol: string): Promise<Rows> {
  const rows: Rows = [["Service", "Owner", "Held there", "Members"]];
  for (const service of ["aggregator", "anomaly"]) {
    const view = await broker.call<{ owner: string | null; members: string[] }, object>(
      `${service}.owner`,
      { symbol: parseSymbol(symbol) },
    );
    const held = view.owner
      ? (
          await broker.call<{ held: boolean }, object>(
            `${service}.owner`,
            { symbol },
            { nodeID: view.owner },
          )
        ).held
      : false;
    rows.push([service, view.owner ?? "–", held ? "yes" : "not yet", view.members.join(", ")]);
  }
  return rows;
}

interface HandoffRow {
  time: string;
  service: string;
  from: string;
  to: string;
  symbols: number;
  bytes: number;
  why: string;
}

export async function handoffRows(broker: ServiceBroker): Promise<Rows> {
  const parts = await Promise.all(
    ["aggregator", "anomaly"].map((s) => callEverywhere<HandoffRow[]>(broker, `${s}.handoffs`)),
  );
  const all = parts.flat().flatMap((p) => p.result);
  all.sort((a, b) => (a.time < b.time ? 1 : -1));
  return [
    ["Time (UTC)", "Service", "From", "To", "Symbols", "Bytes", "Why"],
    ...all.slice(0, 50).map((h) => [h.time, h.service, h.from, h.to, h.symbols, h.bytes, h.why]),
  ];
}

interface Helpers {
  table: (rows: Rows) => string;
}

function command(
  name: string,
  description: string,
  rows: (broker: ServiceBroker, args: ReplArgs) => Promise<Rows>,
  options: { option: string; description: string }[] = [],
) {
  return {
    command: name,
    description,
    options,
    async action(broker: ServiceBroker, args: unknown, helpers: unknown) {
      try {
        console.log((helpers as Helpers).table(await rows(broker, args as ReplArgs)));
      } catch (err: unknown) {
        console.error(`  ${(err as Error).message}`);
      }
    },
  };
}

export const REPL_COMMANDS = [
  command("symbols", "List the symbols held by the cluster", (b) => symbolsRows(b)),
  command(
    "bars <symbol> [interval]",
    "Show a symbol's bars (any interval a live one divides: 1m, 15m, 4h, 1d, 1w …)",
    (b, a) =>
      barsRows(
        b,
        String(a.symbol),
        a.interval as string | undefined,
        a.options.limit as string | undefined,
        {
          tz: a.options.tz as string | undefined,
          session: a.options.session as string | undefined,
          fill: a.options.fill as string | undefined,
        },
      ),
    [
      { option: "-l, --limit <n>", description: "Number of bars (default 20)" },
      { option: "--tz <zone>", description: "IANA time zone that aligns hours, days and weeks" },
      { option: "--session <HH:MM-HH:MM>", description: "Only trades inside this local session" },
      { option: "--fill <prev|none>", description: "prev: list intervals without trades too" },
    ],
  ),
  command("anomalies [symbol]", "Show recent anomalies", (b, a) =>
    anomaliesRows(b, a.symbol as string | undefined),
  ),
  command("stats", "Show pipeline counters per node", (b) => statsRows(b)),
  command(
    "owner <symbol>",
    "Show which node owns a symbol (rendezvous hashing over the live nodes)",
    (b, a) => ownerRows(b, String(a.symbol)),
  ),
  command("handoffs", "Show recent moves of symbol states between nodes and their sizes", (b) =>
    handoffRows(b),
  ),
];
