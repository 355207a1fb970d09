/**
 * The history store's parts without a broker: the SQLite store (exact values, idempotent upsert,
 * version order, one file per namespace, files from before versions, ranges, transactions), the
 * batching writer, the memory/history merge REST answers with, the scan for revised bars on the
 * real engine, and HISTORY_URL parsing.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { ConfigError, loadConfig } from "../../src/config";
import { fixFill } from "../support/fix-data";
import { HistoryWriter, mergeBars, openHistoryStore, RevisionScanner } from "../../src/history";
import { SqliteHistory } from "../../src/history/sqlite";
import { decimal, type StoredBar } from "../../src/history/store";
import { native, type Binding } from "../../src/native";
import { storedBase } from "../../src/windowing/parts";
import { eventually } from "../support/node";

const T0 = Date.UTC(2024, 0, 2, 14, 30, 0);
const MIN = 60_000;

function bar(startMs: number, over: Partial<StoredBar> = {}): StoredBar {
  return {
    symbol: "ACME",
    interval: "1m",
    startMs,
    open: "10.5",
    high: "11",
    low: "10",
    close: "10.75",
    volume: "300",
    volumeExact: "300",
    notional: "3180",
    vwap: "10.6",
    trades: 3,
    revised: false,
    orderCount: 0,
    buyQty: "0",
    sellQty: "0",
    generation: 1,
    revision: 3,
    ...over,
  };
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "tickstream-history-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileNo = 0;
const newFile = () => path.join(dir, `h${++fileNo}`, "history.sqlite");

/** Every row as stored, write time included (it changes only when a row is rewritten). */
function rawRows(file: string): Record<string, unknown>[] {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return db.prepare('SELECT * FROM bars ORDER BY symbol, "interval", start_ms').all();
  } finally {
    db.close();
  }
}

describe("SqliteHistory", () => {
  it("keeps prices and quantities as exact decimal text, nulls and flags included", async () => {
    const file = newFile();
    const store = new SqliteHistory(file);
    // Prices as real data has them (17 significant digits), and floats' awkward corners.
    const awkward = [
      Number("25929.169999999996"),
      0.1 + 0.2,
      1e-7,
      1e21,
      Number("123456789.123456789"),
    ];
    const bars = awkward.map((p, i) =>
      bar(T0 + i * MIN, {
        open: decimal(p),
        high: decimal(p),
        low: decimal(p),
        close: decimal(p),
        volume: decimal(p * 3),
        vwap: decimal(p),
      }),
    );
    // A bar with orders but no trade has no prices.
    bars.push(
      bar(T0 + 9 * MIN, {
        open: null,
        high: null,
        low: null,
        close: null,
        volume: "0",
        vwap: null,
        trades: 0,
        orderCount: 2,
        buyQty: "150.25",
        sellQty: "0.000000001",
        revised: true,
      }),
    );
    await store.writeBars(bars);
    const back = await store.readBars("ACME", "1m", undefined, undefined, 100);
    expect(back).toEqual(bars);
    back.slice(0, awkward.length).forEach((b, i) => expect(Number(b.close)).toBe(awkward[i]));
    // The column really holds text, not a float the driver turned back into text.
    const db = new DatabaseSync(file, { readOnly: true });
    expect(
      db.prepare("SELECT DISTINCT typeof(close) AS t FROM bars WHERE trades > 0").all(),
    ).toEqual([{ t: "text" }]);
    db.close();
    await store.close();
  });

  it("changes nothing when the same bars are written again (no row is even rewritten)", async () => {
    const file = newFile();
    const store = new SqliteHistory(file);
    const bars = [bar(T0), bar(T0 + MIN), bar(T0, { interval: "5m" }), bar(T0, { symbol: "B" })];
    await store.writeBars(bars);
    const before = rawRows(file);
    expect(before).toHaveLength(4);
    await new Promise((r) => setTimeout(r, 5)); // a rewrite would now stamp a later updated_ms
    await store.writeBars(bars);
    await store.writeBars([...bars].reverse());
    expect(rawRows(file)).toEqual(before);
    await store.close();
  });

  it("keeps the latest version of a bar: (generation, revision), not the fullest", async () => {
    const store = new SqliteHistory(newFile());
    const read = async () => (await store.readBars("ACME", "1m", undefined, undefined, 10))[0];
    await store.writeBars([bar(T0)]);
    const late = bar(T0, {
      trades: 4,
      high: "12",
      close: "12",
      volume: "400",
      revised: true,
      revision: 4,
    });
    await store.writeBars([late]);
    expect(await read()).toEqual(late);
    // A cancel leaves fewer trades at a higher revision: it replaces the fuller version.
    const busted = { ...late, trades: 3, high: "11", close: "10.75", volume: "300", revision: 5 };
    await store.writeBars([busted]);
    expect(await read()).toEqual(busted);
    // A bar rebuilt from part of its changes (a replay that began inside it) does not clobber it.
    await store.writeBars([bar(T0, { trades: 1, open: "10.75", volume: "100", revision: 1 })]);
    expect(await read()).toEqual(busted);
    // A superseded owner (older generation) loses whatever its revision; a newer owner wins.
    await store.writeBars([bar(T0, { generation: 0, revision: 99, trades: 9 })]);
    expect(await read()).toEqual(busted);
    // The same version again, even with other content, changes nothing.
    await store.writeBars([{ ...busted, close: "99" }]);
    expect(await read()).toEqual(busted);
    const moved = { ...busted, generation: 2, revision: 1 };
    await store.writeBars([moved]);
    expect(await read()).toEqual(moved);
    // Within one batch, the latest version of a key wins whatever the order.
    await store.writeBars([
      bar(T0 + MIN, { trades: 2, revision: 9 }),
      bar(T0 + MIN, { trades: 9, revision: 8 }),
    ]);
    expect((await store.readBars("ACME", "1m", T0 + MIN, undefined, 1))[0]?.trades).toBe(2);
    await store.close();
  });

  it("keeps one file per namespace; a reopened namespace resumes its bars", async () => {
    const config = loadConfig({ HISTORY_URL: `sqlite:${path.join(dir, "ns", "history.sqlite")}` });
    const a = openHistoryStore(config.history, "prod")!;
    const b = openHistoryStore(config.history, "test/1")!;
    const none = openHistoryStore(config.history, "")!;
    await a.writeBars([bar(T0, { close: "1" })]);
    await b.writeBars([bar(T0, { close: "2" })]);
    const close = async (s: typeof a) =>
      (await s.readBars("ACME", "1m", undefined, undefined, 1))[0]?.close;
    expect([await close(a), await close(b), await close(none)]).toEqual(["1", "2", undefined]);
    expect(
      readdirSync(path.join(dir, "ns"))
        .filter((f) => f.endsWith(".sqlite"))
        .sort(),
    ).toEqual(["history-prod.sqlite", "history-test_1.sqlite", "history.sqlite"]);
    await Promise.all([a.close(), b.close(), none.close()]);
    const again = openHistoryStore(config.history, "prod")!;
    expect(await close(again)).toBe("1");
    await again.close();
  });

  it("opens a file written before bar versions: its rows are version (0, 0)", async () => {
    const file = newFile();
    mkdirSync(path.dirname(file), { recursive: true });
    const old = new DatabaseSync(file);
    old.exec(`CREATE TABLE bars (
      symbol TEXT NOT NULL, "interval" TEXT NOT NULL, start_ms INTEGER NOT NULL, open TEXT,
      high TEXT, low TEXT, close TEXT, volume TEXT NOT NULL, vwap TEXT, trades INTEGER NOT NULL,
      revised INTEGER NOT NULL, order_count INTEGER NOT NULL, buy_qty TEXT NOT NULL,
      sell_qty TEXT NOT NULL, updated_ms INTEGER NOT NULL,
      PRIMARY KEY (symbol, "interval", start_ms)) STRICT, WITHOUT ROWID`);
    old.exec(`INSERT INTO bars VALUES ('ACME', '1m', ${T0}, '1', '1', '1', '1', '9', '1', 9, 0, 0,
      '0', '0', 0)`);
    old.close();
    const store = new SqliteHistory(file);
    const [held] = await store.readBars("ACME", "1m", undefined, undefined, 1);
    expect([held?.trades, held?.generation, held?.revision]).toEqual([9, 0, 0]);
    // Nor did it keep the exact sums: a roll-up counts its notional as VWAP × volume.
    expect([held?.volumeExact, held?.notional]).toEqual([null, null]);
    expect(storedBase(held!)).toMatchObject({ volume: 9_000_000_000n, notional: 9n * 10n ** 18n });
    await store.writeBars([bar(T0, { generation: 0, revision: 1 })]);
    const [rewritten] = await store.readBars("ACME", "1m", undefined, undefined, 1);
    expect([rewritten?.trades, rewritten?.volumeExact, rewritten?.notional]).toEqual([
      3,
      "300",
      "3180",
    ]);
    await store.close();
  });

  it("answers ranges like the engine: start in [from, to), the newest `limit`, oldest first", async () => {
    const store = new SqliteHistory(newFile());
    const all = Array.from({ length: 10 }, (_, i) => bar(T0 + i * MIN, { trades: i + 1 }));
    await store.writeBars([
      ...all,
      bar(T0, { symbol: "OTHER" }),
      bar(T0, { interval: "5m" }),
      bar(T0 + 5 * MIN, { interval: "5m" }),
    ]);
    const starts = async (from?: number, to?: number, limit = 100) =>
      (await store.readBars("ACME", "1m", from, to, limit)).map((b) => (b.startMs - T0) / MIN);
    expect(await starts()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(await starts(undefined, undefined, 3)).toEqual([7, 8, 9]);
    expect(await starts(T0 + 2 * MIN, T0 + 5 * MIN)).toEqual([2, 3, 4]);
    expect(await starts(T0 + 2 * MIN, T0 + 5 * MIN, 2)).toEqual([3, 4]);
    expect(await starts(T0 + 2 * MIN - 0.5, T0 + 4 * MIN + 0.5)).toEqual([2, 3, 4]);
    expect(await starts(T0 + 5 * MIN, T0 + 5 * MIN)).toEqual([]);
    expect(await starts(T0 + 9 * MIN, T0)).toEqual([]);
    expect(await store.readBars("ACME", "5m", undefined, undefined, 10)).toHaveLength(2);
    expect(await store.readBars("ACME", "1h", undefined, undefined, 10)).toEqual([]);
    expect(await store.readBars("NOPE", "1m", undefined, undefined, 10)).toEqual([]);
    await store.close();
  });

  it("writes a batch in one transaction: a bad row leaves none of the batch behind", async () => {
    const store = new SqliteHistory(newFile());
    const broken = { ...bar(T0 + 2 * MIN), volume: null } as unknown as StoredBar;
    await expect(store.writeBars([bar(T0), bar(T0 + MIN), broken])).rejects.toThrow(/NOT NULL/);
    expect(await store.readBars("ACME", "1m", undefined, undefined, 10)).toEqual([]);
    // The store is still usable afterwards.
    await store.writeBars([bar(T0)]);
    expect(await store.readBars("ACME", "1m", undefined, undefined, 10)).toHaveLength(1);
    await store.close();
  });

  it("keeps its bars across a reopen, in WAL mode", async () => {
    const file = newFile();
    const a = new SqliteHistory(file);
    await a.writeBars([bar(T0), bar(T0 + MIN)]);
    await a.close();
    const b = new SqliteHistory(file);
    expect(await b.readBars("ACME", "1m", undefined, undefined, 10)).toHaveLength(2);
    await b.close();
    const db = new DatabaseSync(file, { readOnly: true });
    expect(db.prepare("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
    db.close();
  });

  it("fails to open with a clear error when the path cannot be a file", async () => {
    const file = newFile();
    await new SqliteHistory(file).close();
    // A directory under a regular file cannot exist.
    const impossible = path.join(file, "sub", "h.sqlite");
    expect(() => new SqliteHistory(impossible)).toThrow(/ENOTDIR/);
    const config = loadConfig({ HISTORY_URL: `sqlite:${impossible}` }).history;
    expect(() => openHistoryStore(config, "")).toThrow(/HISTORY_URL: cannot open sqlite:.*ENOTDIR/);
  });
});

describe("HistoryWriter", () => {
  const options = { flushMs: 100, batchSize: 4, bufferMax: 1000, retryMaxMs: 1000 };

  it("writes a full batch at once and the rest within the flush interval", async () => {
    const store = new SqliteHistory(newFile());
    const writes: number[] = [];
    const writer = new HistoryWriter(
      store,
      { ...options, flushMs: 60_000 },
      { written: (n) => writes.push(n) },
    );
    writer.add([bar(T0), bar(T0 + MIN)]);
    await writer.flush(); // the timer has not fired: a partial batch is written only when asked
    expect(writes).toEqual([2]);
    writer.add([0, 1, 2, 3, 4].map((i) => bar(T0 + (10 + i) * MIN)));
    await eventually(() => (writer.stats.buffered === 0 ? true : undefined), "a full batch");
    expect(writes.slice(1)).toEqual([4, 1]);
    expect(await store.readBars("ACME", "1m", undefined, undefined, 100)).toHaveLength(7);
    expect(await writer.close(1000)).toBe(0);
  });

  it("flushes on its timer without being asked", async () => {
    const store = new SqliteHistory(newFile());
    const writer = new HistoryWriter(store, options);
    writer.add([bar(T0)]);
    await eventually(
      async () =>
        (await store.readBars("ACME", "1m", undefined, undefined, 10)).length === 1
          ? true
          : undefined,
      "the timer's flush",
    );
    expect(writer.stats).toMatchObject({ written: 1, buffered: 0, failures: 0, dropped: 0 });
    await writer.close(1000);
  });

  it("writes a bar queued several times once, in its latest version", async () => {
    const store = new SqliteHistory(newFile());
    const writer = new HistoryWriter(store, { ...options, flushMs: 60_000 });
    writer.add([bar(T0, { trades: 1, revision: 1 }), bar(T0 + MIN)]);
    writer.add([bar(T0, { trades: 3, close: "12", revision: 3 })]);
    writer.add([bar(T0, { trades: 2, revision: 2 })]); // an older version queued late
    expect(writer.stats.buffered).toBe(2);
    await writer.flush();
    expect(writer.stats.written).toBe(2);
    const stored = await store.readBars("ACME", "1m", undefined, T0 + 1, 10);
    expect(stored).toEqual([bar(T0, { trades: 3, close: "12", revision: 3 })]);
    await writer.close(1000);
  });

  it("writes what is buffered when closed, then only counts what comes later as dropped", async () => {
    const file = newFile();
    const store = new SqliteHistory(file);
    const writer = new HistoryWriter(store, { ...options, flushMs: 60_000 });
    writer.add([bar(T0), bar(T0 + MIN), bar(T0 + 2 * MIN)]);
    expect(await writer.close(5000)).toBe(0);
    expect(rawRows(file)).toHaveLength(3);
    writer.add([bar(T0 + 3 * MIN)]);
    expect(writer.stats).toMatchObject({ written: 3, dropped: 1, buffered: 0 });
  });
});

describe("mergeBars", () => {
  const b = (startMs: number, revision: number, from: string, generation = 1) => ({
    startMs,
    revision,
    generation,
    from,
  });

  it("lists memory's bars where both hold one, history's before, sorted, the newest `limit`", () => {
    const stored = [b(1, 5, "h"), b(2, 5, "h"), b(3, 5, "h")];
    const memory = [b(3, 6, "m"), b(4, 1, "m")];
    expect(mergeBars(memory, stored, 10).map((x) => `${x.startMs}${x.from}`)).toEqual([
      "1h",
      "2h",
      "3m",
      "4m",
    ]);
    expect(mergeBars(memory, stored, 2).map((x) => `${x.startMs}${x.from}`)).toEqual(["3m", "4m"]);
    expect(mergeBars([], stored, 2).map((x) => x.startMs)).toEqual([2, 3]);
    expect(mergeBars(memory, [], 10).map((x) => x.startMs)).toEqual([3, 4]);
  });

  it("prefers a later stored version (memory rebuilt from a replay that began inside the bar)", () => {
    expect(mergeBars([b(1, 2, "m")], [b(1, 7, "h")], 10)[0]?.from).toBe("h");
    expect(mergeBars([b(1, 7, "m")], [b(1, 7, "h")], 10)[0]?.from).toBe("m");
    // A newer generation wins over a higher revision of an older one, either side.
    expect(mergeBars([b(1, 1, "m", 2)], [b(1, 50, "h", 1)], 10)[0]?.from).toBe("m");
    expect(mergeBars([b(1, 50, "m", 1)], [b(1, 1, "h", 2)], 10)[0]?.from).toBe("h");
  });
});

describe("RevisionScanner", () => {
  const decoder = new native.FixDecoder();
  let seq = 0;
  const batch = (trades: [id: number, price: string, qty: string, atMs: number][]) => {
    const records = trades.map(([id, price, qty, atMs]) =>
      fixFill(`E${id}`, "ACME", price, qty, atMs),
    );
    const offsets = new Uint32Array(records.length + 1);
    records.forEach((r, i) => (offsets[i + 1] = offsets[i]! + r.length));
    const seqs = Float64Array.from(records, () => seq++);
    return decoder.decodeBatch(Buffer.concat(records), offsets, seqs, "t/0").batch;
  };

  it("finds closed bars a late trade changed, once per change", () => {
    const engine = new native.Engine({ detector: false, graceMs: 0 });
    engine.applyBatch(
      batch([
        [1, "10", "100", T0 + 1000],
        [2, "11", "100", T0 + 2 * MIN + 1000],
      ]),
      Date.now(),
    );
    const closed = engine.drainClosed().filter((c) => c.interval === "1m");
    expect(closed.map((c) => c.bar.startMs)).toEqual([T0]);
    const scanner = new RevisionScanner();
    expect(scanner.scan(engine, 1000)).toEqual([]); // nothing marked

    // A late trade revises the closed 1m bar; the engine does not queue it again.
    const late = engine.applyBatch(batch([[3, "12", "50", T0 + 30_000]]), Date.now());
    expect(late.revised).toBe(1);
    expect(engine.drainClosed()).toEqual([]);
    scanner.mark(["ACME"]);
    const found = scanner.scan(engine, 1000);
    expect(found).toEqual([
      expect.objectContaining({
        interval: "1m",
        startMs: T0,
        trades: 2,
        high: "12",
        close: "12",
        volume: "150",
        revised: true,
      }),
    ]);
    expect(scanner.pending).toBe(0);
    // Marked again without a change: nothing new. Changed again: the new version.
    scanner.mark(["ACME"]);
    expect(scanner.scan(engine, 1000)).toEqual([]);
    engine.applyBatch(batch([[4, "9", "10", T0 + 40_000]]), Date.now());
    scanner.mark(["ACME", "UNKNOWN"]);
    expect(scanner.scan(engine, 1000).map((b) => [b.trades, b.low])).toEqual([[3, "9"]]);
  });

  it("hands a bar on again when its version changed, whatever its trade and order counts", () => {
    const engineBar = (version: Pick<Binding.Bar, "generation" | "revision">, close: number) => ({
      startMs: T0,
      open: 10,
      high: 12,
      low: 9,
      close,
      volume: 200,
      volumeExact: "200",
      notional: "2100",
      vwap: 10.5,
      trades: 2,
      closed: true,
      revised: true,
      orderCount: 1,
      buyQty: 5,
      sellQty: 0,
      ...version,
    });
    let held: Binding.Bar = engineBar({ generation: 1, revision: 3 }, 11);
    const engine = { revisedBars: () => [{ symbol: "ACME", interval: "1m", bar: held }] };
    const scanner = new RevisionScanner();
    const scan = () => {
      scanner.mark(["ACME"]);
      return scanner.scan(engine, 10).map((b) => [b.generation, b.revision, b.close]);
    };
    expect(scan()).toEqual([[1, 3, "11"]]);
    expect(scan()).toEqual([]);
    // A cancel and a late trade since the last scan: the same counts, a new version.
    held = engineBar({ generation: 1, revision: 5 }, 12);
    expect(scan()).toEqual([[1, 5, "12"]]);
    // A new owner (generation) whose state carries fewer revisions of the bar.
    held = engineBar({ generation: 2, revision: 4 }, 12);
    expect(scan()).toEqual([[2, 4, "12"]]);
    expect(scan()).toEqual([]);
  });

  it("spreads a large scan over several calls by its bar budget", () => {
    const engine = new native.Engine({ detector: false, graceMs: 0 });
    engine.applyBatch(batch([[10, "10", "1", T0]]), Date.now());
    const scanner = new RevisionScanner();
    scanner.mark(["ACME", "B", "C"]);
    scanner.scan(engine, 1); // one symbol per call: ACME; B and C wait
    expect(scanner.pending).toBe(2);
    scanner.scan(engine, 1000);
    expect(scanner.pending).toBe(0);
  });
});

describe("HISTORY_URL", () => {
  it("selects SQLite by default, PostgreSQL by URL, nothing with off", () => {
    expect(loadConfig({}).history.target).toEqual({
      kind: "sqlite",
      path: ".data/history.sqlite",
    });
    expect(loadConfig({ HISTORY_URL: "postgres://u:p@db:5432/ts" }).history.target).toEqual({
      kind: "postgres",
      url: "postgres://u:p@db:5432/ts",
    });
    expect(loadConfig({ HISTORY_URL: "OFF" }).history.target).toBeNull();
  });

  it("rejects what it cannot use, naming the setting and hiding credentials", () => {
    expect(() => loadConfig({ HISTORY_URL: "sqlite:" })).toThrow(ConfigError);
    expect(() => loadConfig({ HISTORY_URL: "mysql://root:secret@db/x" })).toThrow(/HISTORY_URL/);
    expect(() => loadConfig({ HISTORY_URL: "mysql://root:secret@db/x" })).not.toThrow(/secret/);
    expect(() => loadConfig({ HISTORY_BUFFER_MAX: "0" })).toThrow(/HISTORY_BUFFER_MAX/);
  });
});
