/**
 * What one stream connection asks for, parsed from its query. Each problem names the parameter
 * (422), like every other REST parameter.
 */
import { parseInterval, parseSymbol } from "../api/params";
import { LIVE_INTERVALS, type LiveInterval } from "../contracts/bars";
import { badParameter } from "../errors";

/** `none`: no anomalies; `subscribed`: those of the subscribed symbols; `all`: every symbol's. */
export type AnomalyScope = "none" | "subscribed" | "all";

export interface StreamFilter {
  symbols: ReadonlySet<string>;
  intervals: ReadonlySet<string>;
  anomalies: AnomalyScope;
}

export interface StreamQuery {
  symbols?: string | undefined;
  intervals?: string | undefined;
  anomalies?: string | undefined;
}

function items(value: string | undefined): string[] | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  return value.split(",").map((s) => s.trim());
}

function anomalyScope(value: string | undefined): AnomalyScope {
  switch ((value ?? "").toLowerCase()) {
    case "":
    case "0":
    case "false":
      return "none";
    case "1":
    case "true":
      return "subscribed";
    case "all":
      return "all";
    default:
      throw badParameter("anomalies", "must be 0, 1 or all", value);
  }
}

/** Parses `symbols=A,B&intervals=1m,5m&anomalies=1|all`; `intervals` defaults to `1m`. */
export function parseStreamFilter(q: StreamQuery, maxSymbols: number): StreamFilter {
  const anomalies = anomalyScope(q.anomalies);
  const symbolList = items(q.symbols) ?? [];
  if (symbolList.length === 0 && anomalies !== "all")
    throw badParameter("symbols", "is required (a comma-separated list) unless anomalies=all");
  const symbols = new Set(symbolList.map((s) => parseSymbol(s, "symbols")));
  if (symbols.size > maxSymbols)
    throw badParameter("symbols", `may list at most ${maxSymbols} symbols`, symbols.size);
  const intervalList = items(q.intervals) ?? ["1m"];
  const intervals = new Set<LiveInterval>(
    intervalList.map((i) => {
      if (i === "")
        throw badParameter("intervals", `must list ${LIVE_INTERVALS.join(", ")}`, q.intervals);
      return parseInterval(i, "intervals");
    }),
  );
  return { symbols, intervals, anomalies };
}
