/**
 * The live stream of one gateway node: the bar and anomaly events this node receives from the
 * broker, fanned out to its open stream connections, each with its own filter.
 *
 * - Forming-bar updates are throttled per symbol and interval: at most one per `throttleMs`; the
 *   ones in between are coalesced to the latest (bars are whole snapshots, so nothing is lost but
 *   intermediate states). Closed bars and anomalies are sent at once.
 * - Memory per connection is bounded: when a connection's unsent backlog passes `maxBufferBytes`,
 *   the connection is closed (its client reconnects and reloads history) rather than buffered.
 * - A comment every `keepAliveMs` keeps proxies from closing idle connections and finds dead ones.
 *
 * Every gateway node receives every broadcast event, so a client may connect to any of them. The
 * hub does not know the wire format: each connection has a `Framing` (Server-Sent Events for
 * `/api/stream`, JSON messages with a sequence number for the WebSocket, src/stream/ws.ts), and
 * a WebSocket connection may change what it subscribes to (`refilter`).
 */
import type { AnomalyRecord } from "../contracts/anomalies";
import type { SymbolBarJson } from "../contracts/bars";
import type { StreamFilter } from "./filter";
import { sseComment, sseEventJson, sseRetry } from "./sse";

/** Where a connection's bytes go: an HTTP response in production, anything in tests. */
export interface StreamSink {
  write(chunk: string): void;
  /** Bytes written and not yet handed to the network. */
  backlogBytes(): number;
  /** Ends the stream normally (node shutting down). */
  end(): void;
  /** Abandons the stream and whatever it still buffers (client too slow). */
  destroy(): void;
  /** Called once the client is gone, however it went. */
  onClose(listener: () => void): void;
  /** Keeps the transport alive when its framing writes no keep-alive (WebSocket ping). */
  keepAlive?(): void;
}

/**
 * Returns a function that corks `stream` until the next turn of the event loop (the first call
 * in a turn corks, `setImmediate` uncorks): the events a hub delivery writes to one connection
 * then leave in one system call instead of one each, which is what holds the event loop when
 * hundreds of connections are open. `setImmediate`, not `nextTick`: SSE events reach the response
 * through a pipe that forwards them on `nextTick`.
 */
export function corker(stream: { cork(): void; uncork(): void }): () => void {
  let corked = false;
  const uncork = () => {
    corked = false;
    stream.uncork();
  };
  return () => {
    if (corked) return;
    corked = true;
    stream.cork();
    setImmediate(uncork);
  };
}

/** How one connection's events are written: one string per event, made from its JSON. */
export interface Framing {
  event(name: "bar" | "closed" | "anomaly", json: string): string;
  /** The keep-alive to write, or null when the transport keeps itself alive (WebSocket pings). */
  keepAlive(): string | null;
}

/** Server-Sent Events: stateless, so one framing serves every SSE connection. */
export const SSE_FRAMING: Framing = {
  event: sseEventJson,
  keepAlive: () => sseComment("keep-alive"),
};

export interface StreamHubOptions {
  throttleMs: number;
  keepAliveMs: number;
  maxBufferBytes: number;
  retryMs: number;
  maxConnections: number;
}

/** Why a connection closed: the client left, it fell too far behind, or the node stopped. */
export type CloseReason = "client" | "slow" | "shutdown";

export interface StreamHubHooks {
  onOpen?(): void;
  onClose?(reason: CloseReason): void;
}

/** An open connection, as `connect` returns it (opaque to callers). */
export interface StreamConnection {
  filter: StreamFilter;
  readonly sink: StreamSink;
  readonly framing: Framing;
  open: boolean;
}

type Connection = StreamConnection;

const KEY_SEPARATOR = "\u0000";

export class StreamHub {
  /** Connections opened and dropped for being slow, since the hub started. */
  readonly counts = { opened: 0, dropped: 0 };
  private readonly connections = new Set<Connection>();
  private readonly bySymbol = new Map<string, Set<Connection>>();
  private readonly allAnomalies = new Set<Connection>();
  /** Latest forming bar per symbol+interval waiting for its throttle slot. */
  private readonly pending = new Map<string, SymbolBarJson>();
  private readonly lastSentAt = new Map<string, number>();
  private flushTimer: NodeJS.Timeout | null = null;
  private flushAt = Infinity;
  private keepAliveTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly opts: StreamHubOptions,
    private readonly hooks: StreamHubHooks = {},
  ) {}

  /** Open connections. */
  get size(): number {
    return this.connections.size;
  }

  get full(): boolean {
    return this.connections.size >= this.opts.maxConnections;
  }

  /**
   * Starts streaming to `sink`: the `retry:` hint and a `hello` event first, then whatever the
   * filter selects. Returns false (and writes nothing) when the hub is full.
   */
  open(filter: StreamFilter, sink: StreamSink, hello: object): boolean {
    if (this.full) return false;
    sink.write(sseRetry(this.opts.retryMs) + sseEventJson("hello", JSON.stringify(hello)));
    return this.connect(filter, sink, SSE_FRAMING) !== null;
  }

  /** Starts sending what `filter` selects to `sink` in `framing`; null when the hub is full. */
  connect(filter: StreamFilter, sink: StreamSink, framing: Framing): StreamConnection | null {
    if (this.full) return null;
    const c: Connection = { filter, sink, framing, open: true };
    this.connections.add(c);
    this.index(c);
    sink.onClose(() => this.remove(c, "client"));
    this.counts.opened += 1;
    this.hooks.onOpen?.();
    this.startKeepAlive();
    return c;
  }

  /** Replaces what an open connection receives (a WebSocket subscribe or unsubscribe). */
  refilter(c: StreamConnection, filter: StreamFilter): void {
    if (!c.open) return;
    this.unindex(c);
    c.filter = filter;
    this.index(c);
  }

  /** Forming bars (`bars.updated`): throttled per symbol and interval, coalesced to the latest. */
  barsUpdated(bars: readonly SymbolBarJson[]): void {
    const now = Date.now();
    for (const b of bars) {
      if (!this.wanted(b)) continue;
      const key = b.symbol + KEY_SEPARATOR + b.interval;
      const last = this.lastSentAt.get(key);
      if (!this.pending.has(key) && (last === undefined || now - last >= this.opts.throttleMs)) {
        this.lastSentAt.set(key, now);
        this.deliverBar("bar", b);
      } else {
        this.pending.set(key, b);
        this.scheduleFlush(now, (last ?? now) + this.opts.throttleMs);
      }
    }
  }

  /** Closed (or revised) bars (`bars.closed`): sent at once; supersede a pending forming update. */
  barsClosed(bars: readonly SymbolBarJson[]): void {
    for (const b of bars) {
      if (!this.wanted(b)) continue;
      const key = b.symbol + KEY_SEPARATOR + b.interval;
      const waiting = this.pending.get(key);
      if (waiting && waiting.bar.startMs <= b.bar.startMs) this.pending.delete(key);
      this.deliverBar("closed", b);
    }
  }

  /** An anomaly (`anomaly.detected`), to connections that want all or this symbol's anomalies. */
  anomaly(record: AnomalyRecord): void {
    let json: string | null = null;
    const send = (c: Connection) =>
      this.write(c, c.framing.event("anomaly", (json ??= JSON.stringify(record))));
    for (const c of this.allAnomalies) send(c);
    for (const c of this.bySymbol.get(record.symbol) ?? [])
      if (c.filter.anomalies === "subscribed") send(c);
  }

  /** Ends every connection and stops the timers (the node is stopping). */
  stop(): void {
    for (const c of [...this.connections]) {
      this.remove(c, "shutdown");
      c.sink.end();
    }
    this.stopTimers();
  }

  private wanted(b: SymbolBarJson): boolean {
    const set = this.bySymbol.get(b.symbol);
    if (!set) return false;
    for (const c of set) if (c.filter.intervals.has(b.interval)) return true;
    return false;
  }

  private deliverBar(event: "bar" | "closed", b: SymbolBarJson): void {
    let json: string | null = null;
    for (const c of this.bySymbol.get(b.symbol) ?? [])
      if (c.filter.intervals.has(b.interval))
        this.write(c, c.framing.event(event, (json ??= JSON.stringify(b))));
  }

  private write(c: Connection, chunk: string): void {
    if (!c.open) return;
    c.sink.write(chunk);
    if (c.sink.backlogBytes() > this.opts.maxBufferBytes) {
      this.remove(c, "slow");
      c.sink.destroy();
    }
  }

  private remove(c: Connection, reason: CloseReason): void {
    if (!c.open) return;
    c.open = false;
    this.connections.delete(c);
    this.unindex(c);
    if (reason === "slow") this.counts.dropped += 1;
    this.hooks.onClose?.(reason);
    if (this.connections.size === 0) {
      this.stopTimers();
      this.pending.clear();
      this.lastSentAt.clear();
    }
  }

  private index(c: Connection): void {
    for (const symbol of c.filter.symbols) {
      let set = this.bySymbol.get(symbol);
      if (!set) this.bySymbol.set(symbol, (set = new Set()));
      set.add(c);
    }
    if (c.filter.anomalies === "all") this.allAnomalies.add(c);
  }

  private unindex(c: Connection): void {
    for (const symbol of c.filter.symbols) {
      const set = this.bySymbol.get(symbol);
      set?.delete(c);
      if (set?.size === 0) this.bySymbol.delete(symbol);
    }
    this.allAnomalies.delete(c);
  }

  /** Makes sure a flush runs by `due` (the earliest slot of any pending key). */
  private scheduleFlush(now: number, due: number): void {
    if (this.flushTimer !== null && this.flushAt <= due) return;
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushAt = due;
    this.flushTimer = setTimeout(() => this.flush(), Math.max(1, due - now));
    this.flushTimer.unref();
  }

  private flush(): void {
    this.flushTimer = null;
    this.flushAt = Infinity;
    const now = Date.now();
    for (const [key, b] of this.pending) {
      const last = this.lastSentAt.get(key);
      if (last !== undefined && now - last < this.opts.throttleMs) continue;
      this.pending.delete(key);
      this.lastSentAt.set(key, now);
      this.deliverBar("bar", b);
    }
    let due = Infinity;
    for (const key of this.pending.keys())
      due = Math.min(due, (this.lastSentAt.get(key) ?? now) + this.opts.throttleMs);
    if (due < Infinity) this.scheduleFlush(now, due);
  }

  private startKeepAlive(): void {
    if (this.keepAliveTimer !== null) return;
    this.keepAliveTimer = setInterval(() => this.keepAlive(), this.opts.keepAliveMs);
    this.keepAliveTimer.unref();
  }

  private keepAlive(): void {
    for (const c of [...this.connections]) {
      const chunk = c.framing.keepAlive();
      if (chunk === null) c.sink.keepAlive?.();
      else this.write(c, chunk);
    }
    // A throttle slot older than the throttle window no longer delays anything: forget it.
    const now = Date.now();
    for (const [key, at] of this.lastSentAt)
      if (now - at >= this.opts.throttleMs && !this.pending.has(key)) this.lastSentAt.delete(key);
  }

  private stopTimers(): void {
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    if (this.keepAliveTimer !== null) clearInterval(this.keepAliveTimer);
    this.flushTimer = null;
    this.flushAt = Infinity;
    this.keepAliveTimer = null;
  }
}
