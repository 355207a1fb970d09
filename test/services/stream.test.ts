/**
 * `GET /api/stream` over real HTTP: what a client receives (checked against the event schemas of
 * the OpenAPI document), parameter errors, the connection limit and its release when clients go,
 * and a gateway node without any actor serving the stream of a cluster (Fake transporter).
 */
import Ajv2020 from "ajv/dist/2020";
import addFormats from "ajv-formats";
import type { StartedNode } from "../../app/start";
import { startNode } from "../../app/start";
import { eventually, getJson, startTestNode, testConfig } from "../support/node";

/** An event's JSON payload (checked against the document's schemas, not by the compiler). */
type Payload = Record<string, any>;

interface SseEvent {
  event: string;
  data: Payload;
}

/** A streaming client: reads the body as it comes and parses it into events and comments. */
class Client {
  readonly events: SseEvent[] = [];
  comments = 0;
  ended = false;
  private readonly abort = new AbortController();
  private buffer = "";

  private constructor(readonly res: Response) {}

  static async open(url: string): Promise<Client> {
    const abort = new AbortController();
    const res = await fetch(url, { signal: abort.signal });
    const client = new Client(res);
    client.abort.signal.addEventListener("abort", () => abort.abort());
    if (res.ok && res.body) void client.read(res.body);
    return client;
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of body) {
        this.buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = this.buffer.indexOf("\n\n")) >= 0) {
          const block = this.buffer.slice(0, end);
          this.buffer = this.buffer.slice(end + 2);
          let event = "message";
          const data: string[] = [];
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) this.comments += 1;
            else if (line.startsWith("event: ")) event = line.slice(7);
            else if (line.startsWith("data: ")) data.push(line.slice(6));
          }
          if (data.length > 0) this.events.push({ event, data: JSON.parse(data.join("\n")) });
        }
      }
    } catch {
      // aborted by close()
    }
    this.ended = true;
  }

  of(event: string): Payload[] {
    return this.events.filter((e) => e.event === event).map((e) => e.data);
  }

  close(): void {
    this.abort.abort();
  }
}

type Doc = {
  paths: Record<string, { get: Record<string, any> }>;
  components: { schemas: Record<string, object> };
};

describe("GET /api/stream", () => {
  let node: StartedNode & { url: string };
  let doc: Doc;
  const ajv = new Ajv2020({ strict: false });
  addFormats(ajv);
  const clients: Client[] = [];

  async function open(query: string): Promise<Client> {
    const c = await Client.open(`${node.url}/api/stream?${query}`);
    clients.push(c);
    return c;
  }

  /** Validates a payload against the schema the document gives its event. */
  function expectDocumented(event: string, payload: unknown) {
    const ref = doc.paths["/api/stream"]!.get["x-events"][event] as object;
    const validate = ajv.compile({ ...ref, components: doc.components });
    const ok = validate(payload);
    expect({ event, errors: ok ? null : validate.errors }).toEqual({ event, errors: null });
  }

  beforeAll(async () => {
    node = await startTestNode({
      FEED_RATE: "1000",
      FEED_SYMBOLS: "4",
      FEED_JUMP_PROBABILITY: "0.01",
      STREAM_KEEPALIVE_MS: "200",
      STREAM_MAX_SYMBOLS: "3",
      STREAM_MAX_CONNECTIONS: "4",
    });
    doc = (await getJson(`${node.url}/api/openapi.json`)).body as Doc;
  });

  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  afterAll(() => node?.stop());

  it("sends a hello, then only the requested symbols and intervals, and keep-alives", async () => {
    const c = await open("symbols=AAPL,MSFT&intervals=1m,5m");
    expect(c.res.status).toBe(200);
    expect(c.res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect(c.res.headers.get("cache-control")).toMatch(/no-cache/);
    const wanted = ["AAPL 1m", "AAPL 5m", "MSFT 1m", "MSFT 5m"];
    await eventually(() => {
      const seen = new Set(c.of("bar").map((b) => `${b.symbol} ${b.interval}`));
      return wanted.every((k) => seen.has(k)) && c.comments >= 2 ? true : undefined;
    }, "bars of every requested symbol and interval, and keep-alives");
    expect(c.events[0]).toEqual({
      event: "hello",
      data: expect.objectContaining({
        nodeID: node.broker.nodeID,
        symbols: ["AAPL", "MSFT"],
        intervals: ["1m", "5m"],
        anomalies: "none",
      }),
    });
    expectDocumented("hello", c.events[0]!.data);
    const bars = [...c.of("bar"), ...c.of("closed")];
    expect(new Set(bars.map((b) => `${b.symbol} ${b.interval}`))).toEqual(new Set(wanted));
    for (const b of bars) expectDocumented("bar", b);
    expect(c.of("anomaly")).toEqual([]);
  });

  it("sends at most one forming update per symbol and interval per throttle slot", async () => {
    const c = await open("symbols=AAPL&intervals=1m");
    const from = Date.now();
    await eventually(() => (c.of("bar").length >= 4 ? true : undefined), "forming updates");
    // 250 ms slots: n updates need at least (n - 1) slots since the first one.
    const elapsed = Date.now() - from;
    expect(c.of("bar").length).toBeLessThanOrEqual(Math.floor(elapsed / 250) + 1);
  });

  it("sends anomalies of every symbol with anomalies=all, and of its own with anomalies=1", async () => {
    const all = await open("anomalies=all");
    const mine = await open("symbols=AAPL&anomalies=1");
    const found = await eventually(
      () => (new Set(all.of("anomaly").map((a) => String(a.symbol))).size >= 2 ? true : undefined),
      "anomalies of two symbols",
    );
    expect(found).toBe(true);
    for (const a of all.of("anomaly")) expectDocumented("anomaly", a);
    expect(all.of("bar")).toEqual([]);
    for (const a of mine.of("anomaly")) expect(a.symbol).toBe("AAPL");
  });

  it("names the wrong parameter with a documented 422", async () => {
    const cases: [string, string][] = [
      ["", "symbols"],
      ["symbols=A,B,C,D", "symbols"],
      ["symbols=AAPL&intervals=1m,2m", "intervals"],
      ["symbols=AAPL&anomalies=maybe", "anomalies"],
      [`symbols=${encodeURIComponent("A\u0001")}`, "symbols"],
    ];
    const responses = doc.paths["/api/stream"]!.get.responses as Record<string, unknown>;
    expect(responses["422"]).toBeDefined();
    for (const [query, parameter] of cases) {
      const res = await getJson(`${node.url}/api/stream?${query}`);
      expect({ query, status: res.status }).toEqual({ query, status: 422 });
      expect((res.body as { data: { parameter: string } }).data.parameter).toBe(parameter);
    }
  });

  it("has the aggregator publish forming bars only while a client streams", async () => {
    const agg = node.broker.getLocalService("aggregator") as unknown as {
      listeners: Set<string>;
      actors: { engine: { drainTouched(): string[] } };
    };
    const ticks = jest.spyOn(agg.actors.engine, "drainTouched");
    const broadcast = jest.spyOn(node.broker, "broadcast");
    const formingSent = () => broadcast.mock.calls.filter(([e]) => e === "bars.updated").length;
    try {
      // Every client of the earlier cases has gone: the feed trades, but nobody listens.
      await eventually(() => (agg.listeners.size === 0 ? true : undefined), "no listener");
      const since = ticks.mock.calls.length;
      const before = formingSent();
      await eventually(
        () => (ticks.mock.calls.length >= since + 3 ? true : undefined),
        "three forming ticks",
      );
      expect(formingSent()).toBe(before);

      const c = await open("symbols=AAPL&intervals=1m");
      await eventually(() => (c.of("bar").length > 0 ? true : undefined), "a forming bar");
      expect(agg.listeners.has(node.broker.nodeID)).toBe(true);
      c.close();
      await eventually(() => (agg.listeners.size === 0 ? true : undefined), "the listener gone");
    } finally {
      ticks.mockRestore();
      broadcast.mockRestore();
    }
  });

  it("refuses streams beyond STREAM_MAX_CONNECTIONS and frees a slot when a client leaves", async () => {
    const open4 = await Promise.all([1, 2, 3, 4].map(() => open("symbols=AAPL")));
    for (const c of open4) expect(c.res.status).toBe(200);
    const refused = await getJson(`${node.url}/api/stream?symbols=AAPL`);
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ type: "ERR_TOO_MANY_STREAMS" });
    open4[0]!.close();
    const again = await eventually(async () => {
      const c = await Client.open(`${node.url}/api/stream?symbols=AAPL`);
      clients.push(c);
      return c.res.status === 200 ? c : undefined;
    }, "a slot to free up");
    expect(again.res.status).toBe(200);
  });
});

describe("the stream in a cluster", () => {
  it("is served by a gateway node that holds no actor, and ends when that node stops", async () => {
    const namespace = `stream-${process.pid}-${Date.now()}`;
    const workers = await startNode(
      testConfig({
        NAMESPACE: namespace,
        SERVICES: "ingest,parser,aggregator,anomaly",
        FEED_RATE: "500",
        FEED_SYMBOLS: "3",
      }),
      { logger: false, transporter: "Fake" },
    );
    const gateway = await startNode(testConfig({ NAMESPACE: namespace, SERVICES: "api" }), {
      logger: false,
      transporter: "Fake",
    });
    try {
      expect(gateway.broker.getLocalService("aggregator")).toBeFalsy();
      const c = await Client.open(`${gateway.url}/api/stream?symbols=AAPL&intervals=1m`);
      try {
        await eventually(
          () => (c.of("bar").length > 0 ? true : undefined),
          "a bar via the gateway",
        );
        expect(c.events[0]!.data.nodeID).toBe(gateway.broker.nodeID);
        const started = Date.now();
        await gateway.stop();
        expect(Date.now() - started).toBeLessThan(2000);
        await eventually(() => (c.ended ? true : undefined), "the stream to end", 5000);
      } finally {
        c.close();
      }
    } finally {
      await gateway.stop();
      await workers.stop();
    }
  });
});
