/**
 * The custody store's contract, for both implementations (a real nats-server with JetStream, and
 * process memory): keys are valid for any symbol, values round-trip byte for byte, and a write is
 * refused unless the entry is still at the revision it names.
 */
import { randomBytes } from "node:crypto";
import {
  CasConflict,
  custodyKey,
  JetStreamCustodyStore,
  MemoryCustodyStore,
  type CustodyStore,
} from "../../src/custody/store";
import { startNats, type NatsHandle } from "../../scripts/infra/nats";

const holder = { nodeID: "node-a", instanceID: "3f9c0f1e" };

describe("custody store", () => {
  let nats: NatsHandle;
  const stores: CustodyStore[] = [];

  beforeAll(async () => {
    nats = await startNats({ jetstream: true });
  }, 60_000);
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await nats?.stop();
  });

  it("keys are valid KV keys for any symbol and distinct per service", () => {
    for (const symbol of ["AAPL", "BRK.B", "EUR/USD", "ÄÖÜ", "a b*>"]) {
      expect(custodyKey("aggregator", symbol)).toMatch(/^[-/_=.a-zA-Z0-9]+$/);
      expect(custodyKey("aggregator", symbol)).not.toBe(custodyKey("anomaly", symbol));
    }
    expect(custodyKey("aggregator", "BRK.B")).not.toBe(custodyKey("aggregator", "BRK/B"));
  });

  const cases: [string, () => Promise<CustodyStore>][] = [
    [
      "NATS JetStream KV",
      () => JetStreamCustodyStore.open(nats.url, `test-custody-${process.pid}`),
    ],
    ["memory", () => Promise.resolve(new MemoryCustodyStore())],
  ];
  it.each(cases)(
    "%s: compare-and-set on the revision; values round-trip",
    async (_, open) => {
      const store = await open();
      stores.push(store);
      const key = custodyKey("aggregator", "BRK.B");
      expect(await store.read(key)).toBeNull();
      const state = randomBytes(50_000);
      const r1 = await store.write(key, { epoch: 1, holder, state }, null);
      // A second create of the same key, and an update naming an old revision, are refused.
      await expect(store.write(key, { epoch: 1, holder, state }, null)).rejects.toBeInstanceOf(
        CasConflict,
      );
      const read = await store.read(key);
      expect(read).toMatchObject({ revision: r1, epoch: 1, holder });
      expect(read?.state.equals(state)).toBe(true);
      const r2 = await store.write(key, { epoch: 2, holder: null, state: Buffer.alloc(0) }, r1);
      expect(r2).toBeGreaterThan(r1);
      await expect(store.write(key, { epoch: 3, holder, state }, r1)).rejects.toBeInstanceOf(
        CasConflict,
      );
      expect(await store.read(key)).toMatchObject({ revision: r2, epoch: 2, holder: null });
      expect((await store.read(key))?.state.length).toBe(0);
    },
    60_000,
  );
});
