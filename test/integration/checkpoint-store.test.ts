/**
 * The checkpoint store against a real nats-server with JetStream: states round-trip byte for byte
 * under any symbol spelling, the latest write wins, and a missing key is null.
 */
import { randomBytes } from "node:crypto";
import { checkpointKey, JetStreamCheckpointStore } from "../../src/checkpoint/store";
import { startNats, type NatsHandle } from "../../src/infra/local";

describe("checkpoint store (NATS JetStream KV)", () => {
  let nats: NatsHandle;
  const bucket = `test-checkpoints-${process.pid}`;

  beforeAll(async () => {
    nats = await startNats({ jetstream: true });
  }, 60_000);
  afterAll(async () => {
    await nats?.stop();
  });

  it("keys are valid KV keys for any symbol and distinct per service", () => {
    for (const symbol of ["AAPL", "BRK.B", "EUR/USD", "ÄÖÜ", "a b*>"]) {
      expect(checkpointKey("aggregator", symbol)).toMatch(/^[-/_=.a-zA-Z0-9]+$/);
      expect(checkpointKey("aggregator", symbol)).not.toBe(checkpointKey("anomaly", symbol));
    }
    expect(checkpointKey("aggregator", "BRK.B")).not.toBe(checkpointKey("aggregator", "BRK/B"));
  });

  it("round-trips states, keeps the latest, and answers null for what it never had", async () => {
    const store = await JetStreamCheckpointStore.open(nats.url, bucket);
    try {
      const states = ["AAPL", "BRK.B", "EUR/USD", "ÄÖÜ"].map((symbol) => ({
        symbol,
        state: randomBytes(50_000),
      }));
      await store.put("aggregator", states);
      for (const { symbol, state } of states)
        expect((await store.get("aggregator", symbol))?.equals(state)).toBe(true);
      expect(await store.get("anomaly", "AAPL")).toBeNull();
      expect(await store.get("aggregator", "MSFT")).toBeNull();
      const newer = randomBytes(1_000);
      await store.put("aggregator", [{ symbol: "AAPL", state: newer }]);
      expect((await store.get("aggregator", "AAPL"))?.equals(newer)).toBe(true);
    } finally {
      await store.close();
    }
  }, 60_000);
});
