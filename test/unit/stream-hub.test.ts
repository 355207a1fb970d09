/**
 * The stream hub without a broker or a socket: filtering, throttling with coalescing, keep-alives,
 * dropping a client that does not keep up, cleanup. Time is Jest's fake clock.
 */
import { PassThrough } from "node:stream";
import { parseStreamFilter, type StreamFilter } from "../../src/stream/filter";
import { responseSink } from "../../src/stream/http";
import { StreamHub, type StreamHubOptions, type StreamSink } from "../../src/stream/hub";
import type { AnomalyRecord } from "../../src/contracts/anomalies";
import type { SymbolBarJson } from "../../src/contracts/bars";

const OPTIONS: StreamHubOptions = {
  throttleMs: 250,
  keepAliveMs: 1000,
  maxBufferBytes: 4096,
  retryMs: 1500,
  maxConnections: 3,
};

interface SseEvent {
  event: string;
  data: { symbol?: string; interval?: string; bar?: { close?: number } };
}

/** Splits SSE text into events and comments the way a browser's EventSource reads it. */
function parseSse(text: string): { events: SseEvent[]; comments: string[]; retry: number | null } {
  const events: SseEvent[] = [];
  const comments: string[] = [];
  let retry: number | null = null;
  for (const block of text.split("\n\n")) {
    if (block === "") continue;
    let event = "message";
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) comments.push(line.slice(1).trim());
      else if (line.startsWith("retry: ")) retry = Number(line.slice(7));
      else if (line.startsWith("event: ")) event = line.slice(7);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
    }
    if (data.length > 0) events.push({ event, data: JSON.parse(data.join("\n")) });
  }
  return { events, comments, retry };
}

class FakeSink implements StreamSink {
  text = "";
  backlog = 0;
  ended = false;
  destroyed = false;
  /** When each event arrived (fake clock). */
  arrivals: number[] = [];
  private readonly listeners: (() => void)[] = [];

  write(chunk: string): void {
    this.text += chunk;
    for (const _ of chunk.matchAll(/^data: /gm)) this.arrivals.push(Date.now());
  }
  backlogBytes(): number {
    return this.backlog;
  }
  end(): void {
    this.ended = true;
  }
  destroy(): void {
    this.destroyed = true;
    this.leave();
  }
  onClose(listener: () => void): void {
    this.listeners.push(listener);
  }
  /** The client goes away. */
  leave(): void {
    for (const l of this.listeners.splice(0)) l();
  }
  /** Events received so far, then forgets them. */
  take(): SseEvent[] {
    const { events } = parseSse(this.text);
    this.text = "";
    this.arrivals = [];
    return events;
  }
}

function filter(symbols: string, intervals = "1m", anomalies = "0"): StreamFilter {
  return parseStreamFilter({ symbols, intervals, anomalies }, 100);
}

function bar(symbol: string, interval: string, startMs: number, close: number): SymbolBarJson {
  return { symbol, interval, bar: { startMs, close, closed: false } as SymbolBarJson["bar"] };
}

function anomaly(symbol: string, price: number): AnomalyRecord {
  return {
    symbol,
    time: new Date(0).toISOString(),
    timeMs: 0,
    price,
    prevPrice: price / 1.05,
    ret: Math.log(1.05),
    zscore: 6,
    mean: 0,
    std: 0.001,
    detector: "zscore",
    tradeKey: `0/${price}/0`,
    cancelled: false,
  };
}

describe("stream hub", () => {
  let hub: StreamHub;

  beforeEach(() => {
    // Streams need the real nextTick and setImmediate; the hub's timers and clock are fake.
    jest.useFakeTimers({
      now: 1_000_000,
      doNotFake: ["nextTick", "setImmediate", "queueMicrotask"],
    });
    hub = new StreamHub(OPTIONS);
  });

  afterEach(() => {
    hub.stop();
    jest.useRealTimers();
  });

  it("starts with the retry hint and a hello", () => {
    const sink = new FakeSink();
    expect(hub.open(filter("AAPL"), sink, { nodeID: "n1" })).toBe(true);
    const parsed = parseSse(sink.text);
    expect(parsed.retry).toBe(1500);
    expect(parsed.events).toEqual([{ event: "hello", data: { nodeID: "n1" } }]);
  });

  it("sends each connection only its symbols and intervals", () => {
    const a = new FakeSink();
    const b = new FakeSink();
    hub.open(filter("AAPL,MSFT", "1m"), a, {});
    hub.open(filter("MSFT", "5m,1h"), b, {});
    a.take();
    b.take();
    hub.barsUpdated([
      bar("AAPL", "1m", 0, 1),
      bar("AAPL", "5m", 0, 2),
      bar("MSFT", "1m", 0, 3),
      bar("MSFT", "5m", 0, 4),
      bar("NVDA", "1m", 0, 5),
    ]);
    expect(a.take().map((e) => [e.event, e.data.symbol, e.data.interval])).toEqual([
      ["bar", "AAPL", "1m"],
      ["bar", "MSFT", "1m"],
    ]);
    expect(b.take().map((e) => [e.event, e.data.symbol, e.data.interval])).toEqual([
      ["bar", "MSFT", "5m"],
    ]);
  });

  it("sends anomalies by scope: none, the subscribed symbols', or all", () => {
    const none = new FakeSink();
    const subscribed = new FakeSink();
    const all = new FakeSink();
    hub.open(filter("AAPL", "1m", "0"), none, {});
    hub.open(filter("AAPL", "1m", "1"), subscribed, {});
    hub.open(parseStreamFilter({ anomalies: "all" }, 100), all, {});
    for (const s of [none, subscribed, all]) s.take();
    hub.anomaly(anomaly("AAPL", 105));
    hub.anomaly(anomaly("MSFT", 210));
    expect(none.take()).toEqual([]);
    expect(subscribed.take().map((e) => [e.event, e.data.symbol])).toEqual([["anomaly", "AAPL"]]);
    expect(all.take().map((e) => [e.event, e.data.symbol])).toEqual([
      ["anomaly", "AAPL"],
      ["anomaly", "MSFT"],
    ]);
  });

  it("throttles forming bars per symbol and interval, coalescing to the latest", () => {
    const sink = new FakeSink();
    hub.open(filter("AAPL,MSFT", "1m,5m"), sink, {});
    sink.take();
    // Ten updates of AAPL 1m within 90 ms: the first goes at once, the rest become the latest one.
    for (let i = 1; i <= 10; i++) {
      hub.barsUpdated([bar("AAPL", "1m", 0, i)]);
      jest.advanceTimersByTime(10);
    }
    hub.barsUpdated([bar("AAPL", "5m", 0, 100), bar("MSFT", "1m", 0, 200)]);
    expect(sink.take().map((e) => [e.data.symbol, e.data.interval, e.data.bar?.close])).toEqual([
      ["AAPL", "1m", 1],
      ["AAPL", "5m", 100],
      ["MSFT", "1m", 200],
    ]);
    jest.advanceTimersByTime(249 - 100);
    expect(sink.take()).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(sink.take().map((e) => [e.data.symbol, e.data.interval, e.data.bar?.close])).toEqual([
      ["AAPL", "1m", 10],
    ]);
    // Nothing more was pending; the next update waits for the next slot.
    jest.advanceTimersByTime(1000);
    expect(sink.take()).toEqual([]);

    // Two seconds of an update every 10 ms: one update per 250 ms slot, each the latest made.
    sink.take();
    let latest = 0;
    const latestWhenSent: number[] = [];
    const write = sink.write.bind(sink);
    sink.write = (chunk) => {
      if (chunk.includes("\ndata: ")) latestWhenSent.push(latest);
      write(chunk);
    };
    for (let t = 1; t <= 200; t++) {
      latest = t;
      hub.barsUpdated([bar("AAPL", "1m", 0, t)]);
      jest.advanceTimersByTime(10);
    }
    const arrivals = sink.arrivals;
    const closes = sink.take().map((e) => e.data.bar?.close as number);
    expect(closes).toHaveLength(9); // at 0, 250, …, 2000 ms
    expect(closes).toEqual(latestWhenSent);
    for (let i = 1; i < arrivals.length; i++)
      expect(arrivals[i]! - arrivals[i - 1]!).toBeGreaterThanOrEqual(250);
  });

  it("sends closed bars at once, superseding the forming update they close", () => {
    const sink = new FakeSink();
    hub.open(filter("AAPL"), sink, {});
    sink.take();
    hub.barsUpdated([bar("AAPL", "1m", 0, 1)]);
    hub.barsUpdated([bar("AAPL", "1m", 0, 2)]); // pending, coalesced
    hub.barsClosed([{ ...bar("AAPL", "1m", 0, 3), bar: { startMs: 0, closed: true } as never }]);
    expect(sink.take().map((e) => e.event)).toEqual(["bar", "closed"]);
    jest.advanceTimersByTime(1000);
    expect(sink.take().filter((e) => e.event !== "hello")).toEqual([]);
  });

  it("writes a keep-alive comment every keepAliveMs, and none once the client is gone", () => {
    const sink = new FakeSink();
    hub.open(filter("AAPL"), sink, {});
    sink.take();
    jest.advanceTimersByTime(3000);
    expect(parseSse(sink.text).comments).toEqual(["keep-alive", "keep-alive", "keep-alive"]);
    sink.leave();
    expect(hub.size).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
  });

  it("drops a client that does not read instead of buffering for it, and counts it", () => {
    const closed: string[] = [];
    hub = new StreamHub(OPTIONS, { onClose: (reason) => closed.push(reason) });
    const slow = new PassThrough(); // nobody reads it: a client that stopped taking data
    const fast = new PassThrough();
    let fastBytes = 0;
    fast.on("data", (chunk: Buffer) => (fastBytes += chunk.length));
    hub.open(filter("AAPL"), responseSink(slow), {});
    hub.open(filter("AAPL"), responseSink(fast), {});
    let maxBacklog = 0;
    for (let i = 0; i < 200 && !slow.destroyed; i++) {
      hub.barsClosed([bar("AAPL", "1m", i * 60_000, i)]);
      maxBacklog = Math.max(maxBacklog, slow.writableLength + slow.readableLength);
    }
    expect(slow.destroyed).toBe(true);
    expect(hub.counts.dropped).toBe(1);
    expect(closed).toEqual(["slow"]);
    expect(hub.size).toBe(1);
    // Bounded: never more than the limit plus the one event that crossed it.
    expect(maxBacklog).toBeLessThan(OPTIONS.maxBufferBytes + 1024);
    // The reading client is unaffected.
    hub.barsClosed([bar("AAPL", "1m", 999 * 60_000, 1)]);
    return new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      expect(fast.destroyed).toBe(false);
      expect(fastBytes).toBeGreaterThan(OPTIONS.maxBufferBytes);
    });
  });

  it("forgets a connection whose client went, and refuses connections beyond the maximum", () => {
    const sinks = [new FakeSink(), new FakeSink(), new FakeSink()];
    for (const s of sinks) expect(hub.open(filter("AAPL"), s, {})).toBe(true);
    expect(hub.full).toBe(true);
    expect(hub.open(filter("AAPL"), new FakeSink(), {})).toBe(false);
    sinks[0]!.leave();
    expect(hub.size).toBe(2);
    sinks[0]!.take();
    hub.barsClosed([bar("AAPL", "1m", 0, 1)]);
    expect(sinks[0]!.take()).toEqual([]);
    expect(sinks[1]!.take().map((e) => e.event)).toEqual(["hello", "closed"]);
    expect(hub.open(filter("AAPL"), new FakeSink(), {})).toBe(true);
  });

  it("ends every connection when the node stops", () => {
    const closed: string[] = [];
    hub = new StreamHub(OPTIONS, { onClose: (reason) => closed.push(reason) });
    const a = new FakeSink();
    const b = new FakeSink();
    hub.open(filter("AAPL"), a, {});
    hub.open(filter("MSFT"), b, {});
    hub.stop();
    expect([a.ended, b.ended]).toEqual([true, true]);
    expect(closed).toEqual(["shutdown", "shutdown"]);
    expect(hub.size).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
  });
});

describe("stream filter", () => {
  it("parses symbols, intervals (default 1m) and the anomaly scope", () => {
    expect(parseStreamFilter({ symbols: "AAPL, MSFT,AAPL" }, 10)).toEqual({
      symbols: new Set(["AAPL", "MSFT"]),
      intervals: new Set(["1m"]),
      anomalies: "none",
    });
    expect(parseStreamFilter({ symbols: "A", intervals: "5m,1h", anomalies: "1" }, 10)).toEqual({
      symbols: new Set(["A"]),
      intervals: new Set(["5m", "1h"]),
      anomalies: "subscribed",
    });
    expect(parseStreamFilter({ anomalies: "all" }, 10).symbols.size).toBe(0);
  });

  it.each([
    [{}, "symbols"],
    [{ symbols: "A,B,C" }, "symbols"],
    [{ symbols: "A,,B" }, "symbols"],
    [{ symbols: "A", intervals: "1m,2m" }, "intervals"],
    [{ symbols: "A", intervals: "1m," }, "intervals"],
    [{ symbols: "A", anomalies: "yes please" }, "anomalies"],
  ])("names the wrong parameter of %j", (query, parameter) => {
    expect(() => parseStreamFilter(query, 2)).toThrow(
      expect.objectContaining({ code: 422, data: expect.objectContaining({ parameter }) }),
    );
  });
});
