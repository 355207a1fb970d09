/**
 * Infrastructure faults on real servers (issue #10): nats-server, then the Kafka broker, is killed
 * with SIGKILL while a stream is being produced and consumed by a cluster of three Tickstream
 * processes, and restarted on the same port (Kafka: with the same data). Nobody touches the
 * Tickstream nodes: the cluster must recover by itself, and at the end every bar of every symbol,
 * in every interval, must equal the independent computation over everything produced — nothing
 * lost, nothing counted twice. Rejected records must all reach the dead-letter topic.
 *
 * Cluster: `a` and `b` run every service (two ingest nodes sharing the topic's partitions), `c`
 * runs only the actors (aggregator, anomaly) and the gateway, so it receives trades only over NATS.
 */
import { readFileSync } from "node:fs";
import { Kafka, logLevel, type Producer } from "kafkajs";
import { Errors, ServiceBroker } from "moleculer";
import { reliableProducer } from "../../services/ingest/sources/kafka/client";
import { TickstreamNatsTransporter } from "../../src/cluster/nats-transporter";
import { startKafka, type KafkaHandle } from "../../scripts/infra/kafka";
import { startNats, type NatsHandle } from "../../scripts/infra/nats";
import { freePort } from "../../scripts/infra/processes";
import { frameRecords, symbolOf } from "../../src/fix/records";
import { fixFile } from "../support/fix-data";
import { eventually, getJson } from "../support/node";
import type { NodeProcess } from "../support/processes";
import { processCluster, type ProcessCluster } from "../support/cluster";
import { expectBarsEqualReference } from "../support/bars";
import { mdTrades } from "../support/reference";

const JSE = readFileSync(fixFile("hffix-fix.5.0.set.1.fix"));
const PARTITIONS = 6;
/** Records per produce request and the paced rate of the stream around the fault. */
const CHUNK = 100;
const RATE_PER_S = 800;
/** Every BROKEN_EVERY-th record is followed by a copy with a wrong CheckSum (a dead letter). */
const BROKEN_EVERY = 1000;
const HEARTBEAT_TIMEOUT_MS = 3000;
/** What src/cluster/nats-transporter.ts logs when the connection drops and returns. */
const NATS_LOST = "NATS connection lost";
const NATS_BACK = "NATS connection back";

/** A copy of a FIX message whose CheckSum(10) is off by one: the decoder rejects it. */
function breakChecksum(message: Buffer): Buffer {
  const copy = Buffer.from(message);
  const at = copy.lastIndexOf("\x0110=") + 4;
  const sum = Number(copy.toString("latin1", at, at + 3));
  copy.write(String((sum + 1) % 256).padStart(3, "0"), at, "latin1");
  return copy;
}

/** The stream to produce: the JSE corpus in order, with a broken copy after every 1000th record. */
function buildStream(): { records: Buffer[]; broken: Set<string> } {
  const records: Buffer[] = [];
  const broken = new Set<string>();
  frameRecords(JSE).forEach((r, i) => {
    records.push(r);
    if ((i + 1) % BROKEN_EVERY === 0) {
      const b = breakChecksum(r);
      records.push(b);
      broken.add(b.toString("latin1"));
    }
  });
  return { records, broken };
}

interface StatsNode {
  nodeID: string;
  source: { live: boolean; partitions: number } | null;
}

async function statsOf(via: NodeProcess): Promise<StatsNode[]> {
  const { status, body } = await getJson(`${via.url}/api/stats`);
  if (status !== 200) throw new Error(`stats: ${status}`);
  return (body as { nodes: StatsNode[] }).nodes;
}

async function heldPerSymbol(via: NodeProcess): Promise<Map<string, number>> {
  const { status, body } = await getJson(`${via.url}/api/symbols`);
  if (status !== 200) throw new Error(`symbols: ${status}`);
  return new Map(
    (body as { symbols: { symbol: string; trades: number }[] }).symbols.map((s) => [
      s.symbol,
      s.trades,
    ]),
  );
}

/** Trades applied by one node's own actors (its Prometheus counter; no other node is asked). */
async function appliedOn(metricsPort: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  if (res.status !== 200) throw new Error(`metrics: ${res.status}`);
  let sum = 0;
  for (const line of (await res.text()).split("\n"))
    if (/^tickstream_trades_applied[ {]/.test(line))
      sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  return sum;
}

const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

/** The `time` of the first log line (pino JSON) of `output` whose `msg` starts with `msg`, after `since`. */
function loggedAt(output: string, msg: string, since = 0): number | undefined {
  for (const line of output.split("\n")) {
    if (!line.includes(msg)) continue;
    try {
      const entry = JSON.parse(line) as { msg?: string; time?: string };
      const at = entry.time ? Date.parse(entry.time) : NaN;
      if (entry.msg?.startsWith(msg) && at >= since) return at;
    } catch {
      // not a JSON line
    }
  }
  return undefined;
}

describe("infrastructure faults", () => {
  let kafka: KafkaHandle;
  let nats: NatsHandle;
  let client: Kafka;
  const run = `${process.pid}-${Date.now().toString(36)}`;
  const clusters: ProcessCluster[] = [];
  const { records, broken } = buildStream();
  const trades = mdTrades(JSE, ["2", "3"]);
  const expected = new Map<string, number>();
  for (const t of trades) expected.set(t.symbol, (expected.get(t.symbol) ?? 0) + 1);

  beforeAll(async () => {
    [kafka, nats] = await Promise.all([startKafka(), startNats({ jetstream: true })]);
    client = new Kafka({
      clientId: "faults-test",
      brokers: [kafka.brokers],
      logLevel: logLevel.NOTHING,
    });
  }, 180_000);
  afterEach(async () => {
    for (const cluster of clusters.splice(0)) {
      // Each node's log, to look at after a failure: $TMPDIR/tickstream-natsfault-a.log, ...
      cluster.saveLogs();
      await cluster.kill();
    }
  });
  afterAll(async () => {
    await Promise.all([kafka?.stop(), nats?.stop()]);
  });

  /** A fresh topic, DLQ, group and namespace, and the three nodes on them, ready. */
  async function cluster(name: string): Promise<{
    topic: string;
    dlq: string;
    a: NodeProcess;
    b: NodeProcess;
    c: NodeProcess;
    cMetrics: number;
  }> {
    const cluster = await processCluster({
      kafka,
      nats,
      name,
      partitions: PARTITIONS,
      env: {
        HEARTBEAT_TIMEOUT_S: String(HEARTBEAT_TIMEOUT_MS / 1000),
        FIX_MD_ENTRY_TYPES: "2,3",
        BATCH_MAX_RECORDS: "200",
      },
    });
    clusters.push(cluster);
    const cMetrics = await freePort();
    const [a, b, c] = await Promise.all([
      cluster.spawn("a"),
      cluster.spawn("b"),
      // c exposes its metrics: its own applied-trade counter can be read while NATS is down.
      cluster.spawn("c", {
        SERVICES: "aggregator,anomaly,api",
        METRICS: "true",
        METRICS_PORT: String(cMetrics),
      }),
    ]);
    await Promise.all([a.ready(90_000), b.ready(90_000), c.ready(90_000)]);
    return { topic: cluster.topic, dlq: cluster.dlq, a, b, c, cMetrics };
  }

  /**
   * Produces `records` to `topic`, keyed by symbol: `upTo(n)` sends records [sent, n) paced at
   * RATE_PER_S, one CHUNK per request (an idempotent producer that retries through an outage).
   */
  function streamer(topic: string) {
    const producer: Producer = reliableProducer(client);
    let sent = 0;
    return {
      producer,
      get sent() {
        return sent;
      },
      async upTo(n: number, paced: boolean): Promise<void> {
        const started = Date.now();
        const from = sent;
        while (sent < n) {
          const chunk = records.slice(sent, Math.min(n, sent + CHUNK));
          await producer.send({
            topic,
            acks: -1,
            messages: chunk.map((v) => ({ key: symbolOf(v), value: v })),
          });
          sent += chunk.length;
          // Pacing, not waiting for a condition: spreads the stream over the fault.
          const due = started + ((sent - from) * 1000) / RATE_PER_S;
          if (paced && due > Date.now())
            await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
        }
      },
    };
  }

  /** Trades of the valid records among the first n of the stream, per symbol. */
  function expectedUpTo(n: number): Map<string, number> {
    const m = new Map<string, number>();
    const valid = records.slice(0, n).filter((r) => !broken.has(r.toString("latin1")));
    const part = mdTrades(Buffer.concat(valid), ["2", "3"]);
    for (const t of part) m.set(t.symbol, (m.get(t.symbol) ?? 0) + 1);
    return m;
  }

  /**
   * Waits until the cluster, seen through `via`, holds exactly `want` per symbol and every ingest
   * node is live (caught up with the log), then checks it. Returns when it first held them.
   */
  async function exactly(
    via: NodeProcess,
    want: Map<string, number>,
    what: string,
    timeoutMs = 120_000,
  ): Promise<number> {
    let last = new Map<string, number>();
    try {
      return await eventually(
        async () => {
          last = await heldPerSymbol(via);
          if (total(last) !== total(want)) return undefined;
          // Both ingest nodes consume again (neither was left out of the group) and are live.
          const ingest = (await statsOf(via)).filter((n) => n.source !== null);
          if (ingest.length !== 2 || !ingest.every((n) => n.source!.live)) return undefined;
          const partitions = ingest.map((n) => n.source!.partitions);
          if (partitions.some((p) => p === 0) || partitions.reduce((x, y) => x + y) !== PARTITIONS)
            return undefined;
          // Held again after the live check: nothing moved in between.
          last = await heldPerSymbol(via);
          return total(last) === total(want) ? Date.now() : undefined;
        },
        what,
        timeoutMs,
      );
    } finally {
      const diff = [...new Set([...want.keys(), ...last.keys()])]
        .filter((s) => last.get(s) !== want.get(s))
        .map((s) => `${s}:${last.get(s) ?? "-"}/${want.get(s) ?? "-"}`);
      expect({ what, diff }).toEqual({ what, diff: [] });
    }
  }

  /** Every bar of every symbol, in every interval, equals the reference; asked through `via`. */
  function expectExactBars(via: NodeProcess): Promise<void> {
    return expectBarsEqualReference(via.url, trades, expected.keys());
  }

  /**
   * Every broken record is in the dead-letter topic, by its source position; a record may be
   * there more than once (dead letters are at least once: a replayed batch rejects it again).
   */
  async function expectDeadLetters(topic: string, dlq: string): Promise<number> {
    const consumer = client.consumer({ groupId: `dlq-${topic}`, maxWaitTimeInMs: 100 });
    const positions = new Map<string, string>();
    let letters = 0;
    await consumer.connect();
    await consumer.subscribe({ topics: [dlq], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        letters += 1;
        const h = (name: string) => message.headers?.[name]?.toString() ?? "";
        positions.set(
          `${h("source.topic")}/${h("source.partition")}/${h("source.offset")}`,
          message.value?.toString("latin1") ?? "",
        );
        return Promise.resolve();
      },
    });
    try {
      await eventually(
        () => (positions.size >= broken.size ? true : undefined),
        "every broken record in the dead-letter topic",
        60_000,
      );
    } finally {
      await consumer.disconnect();
    }
    expect([...positions.keys()].every((k) => k.startsWith(`${topic}/`))).toBe(true);
    expect(positions.size).toBe(broken.size);
    expect(new Set(positions.values())).toEqual(broken);
    return letters;
  }

  /** The topic holds exactly the records produced: the test's producer lost and doubled none. */
  async function expectTopicHoldsStream(topic: string): Promise<void> {
    const admin = client.admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets(topic);
      expect(offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0)).toBe(records.length);
    } finally {
      await admin.disconnect();
    }
  }

  it("recovers by itself from nats-server killed mid-stream, exactly", async () => {
    const { topic, dlq, a, b, c, cMetrics } = await cluster("natsfault");
    const s = streamer(topic);
    await s.producer.connect();
    const third = Math.floor(records.length / 3);
    await s.upTo(third, false);
    await exactly(a, expectedUpTo(s.sent), "the first third, before the fault");
    const appliedOnC = () => appliedOn(cMetrics);

    // Mid-stream: the second third is being produced (and consumed: Kafka is up) while NATS dies.
    const during = s.upTo(2 * third, true);
    await eventually(() => (s.sent >= third + 3 * CHUNK ? true : undefined), "the stream to flow");
    nats.kill();
    const killedAt = Date.now();
    // The outage outlasts twice the heartbeat timeout, in which a node that hears nobody would
    // declare the others lost: before the fix, each node then believed it was alone, owned every
    // symbol and rebuilt other nodes' symbols from the log (double counted when NATS came back).
    const peers = [a, b, c];
    await eventually(
      () =>
        nats.pid === undefined && Date.now() - killedAt > 2 * HEARTBEAT_TIMEOUT_MS
          ? true
          : undefined,
      "nats-server gone for two heartbeat timeouts",
      60_000,
    );
    // The nodes say so: /api/ready is not 200 (503 from the node itself; the gateway may first
    // try the action on other nodes, which fails, and answer with that failure instead).
    expect((await getJson(`${c.url}/api/ready`)).status).not.toBe(200);
    // c is cut off now: whatever reached it before the kill has been applied.
    const cBefore = await appliedOnC();
    await nats.restart();
    const backAt = Date.now();
    // The stream goes on (the last third is produced after the server is back).
    const after = during.then(() => s.upTo(records.length, true));

    // The first trade applied on c (it only receives them over NATS) after NATS came back.
    const firstApplied = await eventually(
      async () => ((await appliedOnC()) > cBefore ? Date.now() : undefined),
      "a trade applied on the actor-only node after NATS came back",
      90_000,
    );
    await after;
    const producedAt = Date.now();
    await s.producer.disconnect();
    const exactAt = await exactly(a, expected, "every trade exactly once after the NATS outage");
    await Promise.all(peers.map((n) => n.ready()));
    const reconnected = Math.max(
      ...peers.map((n) => loggedAt(n.output(), NATS_BACK, killedAt) ?? Infinity),
    );
    expect(Number.isFinite(reconnected)).toBe(true);
    // Nobody was declared lost: no node believed itself alone, so no symbol was rebuilt twice.
    for (const n of peers) {
      expect(n.output()).not.toContain("disconnected unexpectedly");
      expect(loggedAt(n.output(), NATS_LOST, killedAt - 1000)).toBeDefined();
    }

    await expectExactBars(a);
    await expectExactBars(c);
    await expectTopicHoldsStream(topic);
    const letters = await expectDeadLetters(topic, dlq);
    for (const n of peers) expect(n.child.exitCode).toBeNull();
    console.log(
      `NATS SIGKILLed mid-stream, down ${backAt - killedAt} ms (heartbeat 1 s, timeout 3 s); ` +
        `server back → every node reconnected in ${reconnected - backAt} ms, first trade applied on the actor-only node in ` +
        `${firstApplied - backAt} ms, every trade exactly once ${exactAt - producedAt} ms after the last record was produced ` +
        `(${total(expected)} trades, ${records.length} records, the last ${records.length - 2 * third} produced after the restart at ${RATE_PER_S}/s); ` +
        `${broken.size} rejects, ${letters} dead letters`,
    );
  }, 240_000);

  it("recovers by itself from the Kafka broker killed mid-stream, exactly", async () => {
    const { topic, dlq, a, b, c } = await cluster("kafkafault");
    const s = streamer(topic);
    await s.producer.connect();
    const third = Math.floor(records.length / 3);
    await s.upTo(third, false);
    await exactly(a, expectedUpTo(s.sent), "the first third, before the fault");

    const during = s.upTo(2 * third, true);
    await eventually(() => (s.sent >= third + 3 * CHUNK ? true : undefined), "the stream to flow");
    kafka.kill();
    const killedAt = Date.now();
    await eventually(() => (kafka.pid === undefined ? true : undefined), "the broker to be gone");
    // Batches fetched before the kill still get applied (only their commit fails); they are done
    // long before a new JVM serves requests, so the first increase over the count when the
    // broker is launched again is a newly consumed record. Sampled from the launch on, because
    // consumers may reconnect before restart() has seen the broker ready.
    const heldAtLaunch = total(await heldPerSymbol(a));
    let firstApplied = 0;
    const sampler = eventually(
      async () => (total(await heldPerSymbol(a)) > heldAtLaunch ? Date.now() : undefined),
      "a trade applied after the broker came back",
      150_000,
    ).then((t) => (firstApplied = t));
    await kafka.restart();
    const backAt = Date.now();
    const downFor = backAt - killedAt;
    const after = during.then(() => s.upTo(records.length, true));
    await sampler;
    await after;
    const producedAt = Date.now();
    await s.producer.disconnect();
    const exactAt = await exactly(a, expected, "every trade exactly once after the Kafka outage");

    await expectExactBars(a);
    await expectExactBars(c);
    await expectTopicHoldsStream(topic);
    const letters = await expectDeadLetters(topic, dlq);
    for (const n of [a, b, c]) expect(n.child.exitCode).toBeNull();
    console.log(
      `Kafka broker SIGKILLed mid-stream, restarted on the same port and data (down ${downFor} ms); ` +
        `broker ready → first trade applied in ${firstApplied - backAt} ms, every trade exactly once ` +
        `${exactAt - producedAt} ms after the last record was produced (${total(expected)} trades, ${records.length} records); ` +
        `${broken.size} rejects, ${letters} dead letters`,
    );
  }, 240_000);

  it("fails calls fast to a node not heard from since NATS came back, then reaches it", async () => {
    // Two in-process brokers on the Tickstream transporter: `early` reconnects 0.2 s after the
    // server is back, `late` only on its next attempt, 6 s after its first. A request published
    // for `late` before it has resubscribed would be dropped by NATS and wait out the request
    // timeout; it must fail at once (retryable) instead, and nobody may be declared lost.
    const namespace = `reconnect-${run}`;
    const transporter = (reconnectTimeWait: number) =>
      new TickstreamNatsTransporter({ url: nats.url, maxReconnectAttempts: -1, reconnectTimeWait });
    const options = { namespace, logger: false, heartbeatInterval: 1, heartbeatTimeout: 10 };
    const early = new ServiceBroker({
      ...options,
      nodeID: `early-${run}`,
      transporter: transporter(200),
      requestTimeout: 5000,
    });
    const late = new ServiceBroker({
      ...options,
      nodeID: `late-${run}`,
      transporter: transporter(6000),
    });
    late.createService({ name: "echo", actions: { hi: () => "hi" } });
    const lost: string[] = [];
    for (const b of [early, late])
      b.localBus.on("$node.disconnected", (p: { node: { id: string } }) => lost.push(p.node.id));
    const connected = (b: ServiceBroker) =>
      (b.transit!.tx as unknown as { connected: boolean }).connected;
    const hi = () => early.call("echo.hi", {}, { nodeID: late.nodeID, retries: 0 });
    try {
      await Promise.all([early.start(), late.start()]);
      await early.waitForServices("echo", 30_000);
      expect(await hi()).toBe("hi");

      // `late` makes its first reconnect attempt at once (the server is gone), the next 6 s later.
      const lateStatus = (
        late.transit!.tx as unknown as { client: { status(): AsyncIterable<{ type: string }> } }
      ).client.status();
      const attempted = (async () => {
        for await (const s of lateStatus) if (s.type === "reconnecting") return;
      })();
      nats.kill();
      await attempted;
      await nats.restart();
      await eventually(() => (connected(early) ? true : undefined), "early to reconnect");
      expect(connected(late)).toBe(false);

      const started = Date.now();
      const err = await hi().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(Errors.BrokerDisconnectedError);
      expect(Date.now() - started).toBeLessThan(1000);
      expect(connected(late)).toBe(false);

      await eventually(() => (connected(late) ? true : undefined), "late to reconnect", 20_000);
      expect(await eventually(() => hi().catch(() => undefined), "late to answer again")).toBe(
        "hi",
      );
      expect(lost).toEqual([]);
    } finally {
      await Promise.all([early.stop(), late.stop()]);
    }
  }, 60_000);

  it("fails a broadcast larger than NATS's max_payload and goes on", async () => {
    // The client refuses such a packet synchronously; it must reject the broadcast, not throw
    // out of broker.broadcast (which had ended a node replaying a large backlog).
    const namespace = `payload-${run}`;
    const options = { namespace, logger: false };
    const sender = new ServiceBroker({
      ...options,
      nodeID: `sender-${run}`,
      transporter: new TickstreamNatsTransporter({ url: nats.url }),
    });
    const receiver = new ServiceBroker({
      ...options,
      nodeID: `receiver-${run}`,
      transporter: new TickstreamNatsTransporter({ url: nats.url }),
    });
    const got: number[] = [];
    receiver.createService({
      name: "sink",
      events: { "big.test": (ctx: { params: { n: number } }) => void got.push(ctx.params.n) },
    });
    try {
      await Promise.all([sender.start(), receiver.start()]);
      await sender.waitForServices("sink", 30_000);
      const huge = "x".repeat(2 * 1024 * 1024);
      const err = await sender.broadcast("big.test", { n: 1, huge }, { throwError: true }).then(
        () => null,
        (e: unknown) => e,
      );
      expect((err as { code?: string } | null)?.code).toBe("MAX_PAYLOAD_EXCEEDED");
      await sender.broadcast("big.test", { n: 2 });
      await eventually(() => (got.includes(2) ? true : undefined), "the next broadcast");
      expect(got).toEqual([2]);
    } finally {
      await Promise.all([sender.stop(), receiver.stop()]);
    }
  }, 60_000);
});
