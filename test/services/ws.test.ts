/**
 * `/api/ws` over a real socket, with Node's own WebSocket client: hello, subscribe (ack, snapshot,
 * then only what was subscribed), unsubscribe (nothing more), sequence numbers without gaps, bad
 * messages answered with an error on a connection that stays open, the symbol limit, the API key,
 * a slow client closed with 1008 instead of buffered, and 1,000 connections on one gateway.
 */
import type { Server } from "node:http";
import WebSocketClient from "ws";
import type { StartedNode } from "../../app/start";
import type { StreamHub } from "../../src/stream/hub";
import { eventually, startTestNode } from "../support/node";
import type { BarJson } from "../../src/contracts/bars";

interface Message {
  type: string;
  seq: number;
  id?: unknown;
  bars?: { symbol: string; interval: string }[];
  data?: { symbol: string; interval: string };
  error?: { code: string; message: string };
  [field: string]: unknown;
}

/** A connection that records every message it receives. */
class Client {
  readonly messages: Message[] = [];
  closed: { code: number; reason: string } | null = null;
  readonly ready: Promise<void>;
  readonly ws: WebSocket;

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.onmessage = (e: MessageEvent) => this.messages.push(JSON.parse(String(e.data)));
    this.ws.onclose = (e: CloseEvent) => (this.closed = { code: e.code, reason: e.reason });
    this.ready = new Promise((resolve, reject) => {
      this.ws.onopen = () => resolve();
      this.ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
    });
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === "string" ? msg : JSON.stringify(msg));
  }

  of(type: string): Message[] {
    return this.messages.filter((m) => m.type === type);
  }

  next(type: string, after = 0): Promise<Message> {
    return eventually(() => this.messages.find((m) => m.type === type && m.seq > after), type);
  }
}

describe("WebSocket /api/ws", () => {
  let node: StartedNode & { url: string };
  let wsUrl: string;
  const clients: Client[] = [];
  const open = async (query = "") => {
    const c = new Client(`${wsUrl}${query}`);
    clients.push(c);
    await c.ready;
    return c;
  };

  beforeAll(async () => {
    node = await startTestNode({
      FEED_RATE: "1000",
      FEED_SYMBOLS: "4",
      STREAM_MAX_SYMBOLS: "3",
      STREAM_MAX_BUFFER_BYTES: "65536",
      STREAM_MAX_CONNECTIONS: "1100",
      API_KEY: "k1",
    });
    wsUrl = `${node.url.replace("http", "ws")}/api/ws?apiKey=k1`;
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.ws.close();
  });
  afterAll(() => node?.stop());

  it("subscribes, gets an ack and a snapshot, then only what it asked for; unsubscribes", async () => {
    const c = await open();
    const hello = await c.next("hello");
    expect(hello.seq).toBe(1);
    c.send({ op: "subscribe", symbols: ["AAPL"], intervals: ["1m", "5m"], id: 7 });
    const ack = await c.next("ack");
    expect(ack).toMatchObject({
      op: "subscribe",
      id: 7,
      symbols: ["AAPL"],
      intervals: ["1m", "5m"],
      anomalies: false,
    });
    const snapshot = await c.next("snapshot");
    expect((snapshot.bars ?? []).map((b) => `${b.symbol} ${b.interval}`).sort()).toEqual([
      "AAPL 1m",
      "AAPL 5m",
    ]);
    await eventually(() => (c.of("bar").length >= 4 ? true : undefined), "forming bars");
    for (const m of c.of("bar")) {
      expect(m.data?.symbol).toBe("AAPL");
      expect(["1m", "5m"]).toContain(m.data?.interval);
    }
    // Every message carries the next sequence number of this connection.
    expect(c.messages.map((m) => m.seq)).toEqual(c.messages.map((_, i) => i + 1));

    c.send({ op: "unsubscribe", symbols: ["AAPL"], id: 8 });
    const gone = await c.next("ack", ack.seq);
    expect(gone).toMatchObject({ op: "unsubscribe", id: 8, symbols: [] });
    const after = c.messages.length;
    // Forming bars of every symbol come at least 4 times a second: a second of silence shows it.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(c.messages.slice(after)).toEqual([]);
  });

  it("answers a bad message with an error and keeps the connection", async () => {
    const c = await open();
    await c.next("hello");
    c.send("not json");
    c.send({ op: "dance" });
    c.send({ op: "subscribe", symbols: [1] });
    c.send({ op: "subscribe", symbols: ["AAPL"], intervals: ["2m"] });
    c.send({ op: "subscribe", symbols: ["A", "B", "C", "D"], id: "too-many" });
    await eventually(() => (c.of("error").length === 5 ? true : undefined), "five errors");
    expect(c.of("error").map((e) => e.error?.message)).toEqual([
      "not JSON",
      '"op" must be "subscribe" or "unsubscribe"',
      '"symbols" must be an array of strings',
      'parameter "intervals" must be one of 1m, 5m, 1h',
      "a connection may subscribe to at most 3 symbols",
    ]);
    expect(c.of("error")[4]!.id).toBe("too-many");
    c.send({ op: "subscribe", symbols: ["MSFT"] });
    expect(await c.next("ack")).toMatchObject({ symbols: ["MSFT"], intervals: ["1m"] });
    expect(c.closed).toBeNull();
  });

  it("refuses a connection without the API key", async () => {
    const c = new Client(`${node.url.replace("http", "ws")}/api/ws`);
    await expect(c.ready).rejects.toThrow(/cannot connect/);
  });

  it("closes a client that does not read with 1008 instead of buffering for it", async () => {
    // The `ws` client lets the test stop reading from the socket; the server then floods it.
    const slow = new WebSocketClient(wsUrl);
    await new Promise((resolve) => slow.once("open", resolve));
    const closed = new Promise<number>((resolve) => slow.once("close", (code) => resolve(code)));
    slow.send(JSON.stringify({ op: "subscribe", symbols: ["AAPL"], intervals: ["1m"] }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const socket = (slow as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    socket.pause();
    const hub = (node.broker.getLocalService("api") as unknown as { hub: StreamHub }).hub;
    const dropped = hub.counts.dropped;
    const big = { startMs: 0, note: "x".repeat(50_000) } as unknown as BarJson;
    const flood = setInterval(
      () => hub.barsClosed([{ symbol: "AAPL", interval: "1m", bar: big }]),
      5,
    );
    try {
      await eventually(() => (hub.counts.dropped > dropped ? true : undefined), "the drop");
    } finally {
      clearInterval(flood);
    }
    // Reading again, the client gets what was sent before the drop, then the close frame.
    socket.resume();
    expect(await closed).toBe(1008);
  });

  it("serves 1,000 connections on one gateway, each getting its updates", async () => {
    const server = (node.broker.getLocalService("api") as unknown as { server: Server }).server;
    expect(server.listening).toBe(true);
    const many = await Promise.all(Array.from({ length: 1000 }, () => open()));
    for (const c of many) c.send({ op: "subscribe", symbols: ["MSFT"] });
    await eventually(
      () => (many.every((c) => c.of("bar").length > 0) ? true : undefined),
      "a forming bar on every connection",
    );
  }, 120_000);
});
