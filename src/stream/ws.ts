/**
 * The live stream over WebSocket, at `/api/ws` on the gateway: one connection, many subscriptions.
 *
 * Client → server (JSON text):
 *   {"op":"subscribe","symbols":[...],"intervals":[...],"anomalies":true|false,"id":any}
 *   {"op":"unsubscribe","symbols":[...],"intervals":[...],"anomalies":false,"id":any}
 * Server → client, every message with a per-connection `seq` (1, 2, …, no gaps):
 *   {"type":"hello",...}  once, on connect
 *   {"type":"ack","op":...,"id":...,"symbols":[...],"intervals":[...],"anomalies":bool}  per request,
 *     with what the connection receives from now on
 *   {"type":"snapshot","bars":[{symbol,interval,bar}]}  after a subscribe: the latest bar of each
 *     newly subscribed symbol and interval (it may be older than an update already received for the
 *     same bar: keep the one with the later `updated`)
 *   {"type":"bar"|"closed"|"anomaly","data":{...}}  as on the SSE stream (src/stream/hub.ts)
 *   {"type":"error","id":...,"error":{"code","message"}}  for a message it cannot take; the
 *     connection stays open
 * Limits as for SSE: the API key (X-API-Key header, or `apiKey` in the query for browsers), the
 * node's connection limit (close 1013), at most STREAM_MAX_SYMBOLS symbols per connection, and a
 * client more than STREAM_MAX_BUFFER_BYTES behind is closed with 1008 "slow client", never buffered
 * without bound. Pings keep idle connections alive.
 */
import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import { parseInterval, parseSymbol } from "../api/params";
import { LIVE_INTERVALS, type SymbolBarJson } from "../contracts/bars";
import { ERR_BAD_MESSAGE } from "../errors";
import type { AnomalyScope, StreamFilter } from "./filter";
import {
  corker,
  type Framing,
  type StreamConnection,
  type StreamHub,
  type StreamSink,
} from "./hub";

export const WS_PATH = "/api/ws";
/** Close codes (RFC 6455): 1001 going away, 1008 policy violation, 1013 try again later. */
export const WS_CLOSE = { shutdown: 1001, slow: 1008, full: 1013 } as const;
/** Largest client message accepted (a subscribe of the maximum symbol list fits easily). */
const MAX_MESSAGE_BYTES = 256 * 1024;

export interface WsOptions {
  apiKey: string | null;
  maxSymbols: number;
  /** What the hello message carries besides `type` and `seq`. */
  hello(): object;
  /** The latest bar of each symbol and interval (any gateway asks the owners). */
  snapshot(symbols: readonly string[], intervals: readonly string[]): Promise<SymbolBarJson[]>;
}

interface Request {
  op: "subscribe" | "unsubscribe";
  id: unknown;
  symbols: string[] | undefined;
  intervals: string[] | undefined;
  anomalies: boolean | undefined;
}

class BadMessage extends Error {}

/** Serves `/api/ws` on `server`; other upgrade requests are refused with 404. */
export function attachWebSocket(server: Server, hub: StreamHub, opts: WsOptions): WebSocketServer {
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const refuse = (status: number, text: string) => {
      socket.end(
        `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n${text}\n`,
      );
    };
    if (url.pathname !== WS_PATH) return refuse(404, "Not Found");
    const key = req.headers["x-api-key"] ?? url.searchParams.get("apiKey");
    if (opts.apiKey !== null && key !== opts.apiKey) return refuse(401, "Unauthorized");
    if (hub.full) return refuse(503, "Service Unavailable");
    wss.handleUpgrade(req, socket, head, (ws) => serve(ws, socket, hub, opts));
  });
  return wss;
}

function serve(ws: WebSocket, socket: Duplex, hub: StreamHub, opts: WsOptions): void {
  let seq = 0;
  const corked = corker(socket);
  const send = (type: string, fields: object) =>
    ws.send(JSON.stringify({ type, seq: ++seq, ...fields }));
  const framing: Framing = {
    event: (name, json) => `{"type":"${name}","seq":${++seq},"data":${json}}`,
    keepAlive: () => null,
  };
  const sink: StreamSink = {
    write: (chunk) => {
      corked();
      ws.send(chunk);
    },
    backlogBytes: () => ws.bufferedAmount,
    end: () => ws.close(WS_CLOSE.shutdown, "node stopping"),
    destroy: () => {
      ws.close(WS_CLOSE.slow, "slow client: too much unsent data");
      // The close frame waits behind the backlog; a client that never reads is cut off.
      setTimeout(() => ws.terminate(), 5000).unref();
    },
    onClose: (listener) => ws.once("close", listener),
    keepAlive: () => ws.ping(),
  };
  const empty: StreamFilter = { symbols: new Set(), intervals: new Set(), anomalies: "none" };
  const conn = hub.connect(empty, sink, framing);
  if (conn === null) {
    ws.close(WS_CLOSE.full, "too many open streams on this node");
    return;
  }
  send("hello", opts.hello());
  ws.on("message", (data: RawData, isBinary: boolean) => {
    let req: Request;
    try {
      req = parseRequest(data, isBinary);
    } catch (err: unknown) {
      send("error", { error: { code: ERR_BAD_MESSAGE, message: (err as Error).message } });
      return;
    }
    try {
      const before = conn.filter;
      const after = req.op === "subscribe" ? subscribe(before, req) : unsubscribe(before, req);
      if (after.symbols.size > opts.maxSymbols)
        throw new BadMessage(`a connection may subscribe to at most ${opts.maxSymbols} symbols`);
      hub.refilter(conn, after);
      send("ack", { op: req.op, id: req.id, ...describe(after) });
      if (req.op === "subscribe") void sendSnapshot(conn, before, after);
    } catch (err: unknown) {
      send("error", {
        id: req.id,
        error: { code: ERR_BAD_MESSAGE, message: (err as Error).message },
      });
    }
  });

  /** The latest bars of what the subscribe added (new symbols in every interval, new intervals). */
  async function sendSnapshot(c: StreamConnection, before: StreamFilter, after: StreamFilter) {
    const pairs: [string, string][] = [];
    for (const s of after.symbols)
      for (const i of after.intervals)
        if (!before.symbols.has(s) || !before.intervals.has(i)) pairs.push([s, i]);
    if (pairs.length === 0) return;
    const bySymbol = new Map<string, string[]>();
    for (const [s, i] of pairs) bySymbol.set(s, [...(bySymbol.get(s) ?? []), i]);
    const bars: SymbolBarJson[] = [];
    for (const [symbol, intervals] of bySymbol)
      bars.push(...(await opts.snapshot([symbol], intervals)));
    if (c.open) send("snapshot", { bars });
  }
}

function describe(f: StreamFilter): object {
  return {
    symbols: [...f.symbols],
    intervals: [...f.intervals],
    anomalies: f.anomalies !== "none",
  };
}

function subscribe(f: StreamFilter, r: Request): StreamFilter {
  const intervals = r.intervals ?? (f.intervals.size === 0 ? ["1m"] : []);
  const anomalies: AnomalyScope =
    r.anomalies === undefined ? f.anomalies : r.anomalies ? "subscribed" : "none";
  return {
    symbols: new Set([...f.symbols, ...(r.symbols ?? [])]),
    intervals: new Set([...f.intervals, ...intervals]),
    anomalies,
  };
}

/** Removes the listed symbols and intervals; with neither listed, everything. */
function unsubscribe(f: StreamFilter, r: Request): StreamFilter {
  const all = r.symbols === undefined && r.intervals === undefined && r.anomalies === undefined;
  if (all) return { symbols: new Set(), intervals: new Set(), anomalies: "none" };
  const symbols = new Set(f.symbols);
  for (const s of r.symbols ?? []) symbols.delete(s);
  const intervals = new Set(f.intervals);
  for (const i of r.intervals ?? []) intervals.delete(i);
  return { symbols, intervals, anomalies: r.anomalies === false ? "none" : f.anomalies };
}

function parseRequest(data: RawData, isBinary: boolean): Request {
  if (isBinary) throw new BadMessage("messages are JSON text");
  let msg: unknown;
  try {
    msg = JSON.parse(rawText(data));
  } catch {
    throw new BadMessage("not JSON");
  }
  if (typeof msg !== "object" || msg === null || Array.isArray(msg))
    throw new BadMessage('a message is an object with "op"');
  const m = msg as Record<string, unknown>;
  if (m.op !== "subscribe" && m.op !== "unsubscribe")
    throw new BadMessage('"op" must be "subscribe" or "unsubscribe"');
  // The parsers' errors name the field as REST does: `parameter "symbols" must be …`.
  const list = (name: string, parse: (v: string) => string): string[] | undefined => {
    const v = m[name];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string"))
      throw new BadMessage(`"${name}" must be an array of strings`);
    return (v as string[]).map(parse);
  };
  if (m.anomalies !== undefined && typeof m.anomalies !== "boolean")
    throw new BadMessage('"anomalies" must be true or false');
  return {
    op: m.op,
    id: m.id ?? null,
    symbols: list("symbols", (s) => parseSymbol(s, "symbols")),
    intervals: list("intervals", (i) => {
      if (i === "") throw new BadMessage(`"intervals" must list ${LIVE_INTERVALS.join(", ")}`);
      return parseInterval(i, "intervals");
    }),
    anomalies: m.anomalies,
  };
}

function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString("utf8");
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  return Buffer.from(data).toString("utf8");
}
