import { readFileSync } from "node:fs";
import { encodeFix, fromPipes } from "../../src/fix/encode";
import { native, NATIVE_ERRORS } from "../../src/native";
import { fixFile } from "../support/fix-data";

const jse = readFileSync(fixFile("hffix-fix.5.0.set.1.fix"));

/** Splits the corpus into one record per message with the core's framer. */
function records(buf: Buffer): Buffer[] {
  const frames = native.frameStream(buf);
  const out: Buffer[] = [];
  for (let i = 0; i < frames.length; i += 2)
    out.push(buf.subarray(frames[i], frames[i]! + frames[i + 1]!));
  return out;
}

/** What `fn` threw; fails the test when it returns. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err: unknown) {
    return err;
  }
  throw new Error("expected a throw");
}

function pack(recs: Buffer[]): { payload: Buffer; offsets: Uint32Array } {
  const offsets = new Uint32Array(recs.length + 1);
  recs.forEach((r, i) => (offsets[i + 1] = offsets[i]! + r.length));
  return { payload: Buffer.concat(recs), offsets };
}

describe("native decoder", () => {
  const decoder = new native.FixDecoder({ mdEntryTypes: "2,3" });

  it("gives the same trades through the batch API as message by message", () => {
    const recs = records(jse);
    expect(recs).toHaveLength(13_888);
    const { payload, offsets } = pack(recs);
    const decoded = decoder.decodeBatch(payload, offsets, null, "file:jse");
    expect(decoded.records).toBe(13_888);
    expect(decoded.rejects).toEqual([]);

    const perMessage = recs.flatMap((r, i) =>
      decoder.decodeMessages(r, i).flatMap((m) => m.trades),
    );
    expect(decoded.trades).toBe(perMessage.length);
    expect(decoded.trades).toBeGreaterThan(11_000);

    // An engine fed the batch must hold exactly the per-message trades, symbol by symbol.
    const engine = new native.Engine({ detector: false });
    const applied = engine.applyBatch(decoded.batch, Date.now());
    expect(applied.applied).toBe(perMessage.length);
    const bySymbol = new Map<string, number>();
    for (const t of perMessage) bySymbol.set(t.symbol, (bySymbol.get(t.symbol) ?? 0) + 1);
    const held = new Map(engine.symbols().map((s) => [s.symbol, s.trades]));
    expect(held).toEqual(bySymbol);
    expect(new Set(decoded.symbols)).toEqual(new Set(bySymbol.keys()));
  });

  it("reports bad input as reasons with offsets, never as exceptions", () => {
    const good = encodeFix("FIX.4.4", "8", [
      [17, "E1"],
      [31, "101.25"],
      [32, "100"],
      [55, "AAPL"],
      [60, "20240102-14:30:00.123"],
      [150, "F"],
    ]);
    const badChecksum = Buffer.from(good);
    badChecksum[badChecksum.length - 2] =
      badChecksum[badChecksum.length - 2] === 0x30 ? 0x31 : 0x30;
    const cases: [Buffer, string][] = [
      [badChecksum, "CHECKSUM"],
      [good.subarray(0, 40), "TRUNCATED"],
      [Buffer.from("hello world"), "GARBLED"],
      [
        fromPipes("8=FIX.4.2|9=AB|35=0|34=3|49=TW|52=20000426-12:05:06|56=ISLD|10=218|"),
        "BODY_LENGTH",
      ],
      [encodeFix("FIX.5.0", "0", [[34, "1"]]), "BAD_BEGIN_STRING"],
      [
        encodeFix("FIX.4.4", "8", [
          [17, "E2"],
          [31, "0"],
          [32, "5"],
          [55, "X"],
          [60, "20240102-14:30:00"],
          [150, "F"],
        ]),
        "BAD_PRICE",
      ],
      [
        encodeFix("FIX.4.4", "8", [
          [17, "E3"],
          [31, "1.5"],
          [32, "-5"],
          [55, "X"],
          [60, "20240102-14:30:00"],
          [150, "F"],
        ]),
        "BAD_QTY",
      ],
      [
        encodeFix("FIX.4.4", "8", [
          [17, "E4"],
          [31, "1.5"],
          [32, "5"],
          [60, "20240102-14:30:00"],
          [150, "F"],
        ]),
        "MISSING_FIELD",
      ],
      [
        encodeFix("FIX.4.4", "8", [
          [17, "E5"],
          [31, "1.5"],
          [32, "5"],
          [55, "X"],
          [60, "20241302-14:30:00"],
          [150, "F"],
        ]),
        "BAD_TIMESTAMP",
      ],
      [Buffer.from('{"symbol":"X","price":"abc","qty":1,"ts":1700000000000}'), "BAD_PRICE"],
      [Buffer.from('{"symbol":"X","price":1,'), "GARBLED"],
    ];
    for (const [bytes, reason] of cases) {
      const [first] = decoder.decodeMessages(bytes);
      expect({ reason: first?.reason, ok: first?.ok }).toEqual({ reason, ok: false });
    }
    const { payload, offsets } = pack([good, ...cases.map(([b]) => b), good]);
    const decoded = decoder.decodeBatch(payload, offsets, null, "test");
    expect(decoded.trades).toBe(2);
    expect(decoded.rejects.map((r) => [r.record, r.reason])).toEqual(
      cases.map(([, reason], i) => [i + 1, reason]),
    );
  });

  it("resynchronises after a framing error and reports the skipped bytes", () => {
    const a = encodeFix("FIX.4.4", "0", [[34, "1"]]);
    const b = encodeFix("FIX.4.4", "0", [[34, "2"]]);
    const stream = Buffer.concat([a, Buffer.from("junk!"), b]);
    const messages = decoder.decodeMessages(stream);
    expect(messages.map((m) => [m.ok, m.reason ?? null, m.offset, m.len])).toEqual([
      [true, null, 0, a.length],
      [false, "GARBLED", a.length, 5],
      [true, null, a.length + 5, b.length],
    ]);
  });

  it("decodes JSON trades with exact decimals and ISO or epoch-ms times", () => {
    const [m] = decoder.decodeMessages(
      Buffer.from(
        '{"symbol":"BTC-USD","price":64123.45,"qty":"0.015","ts":"2024-03-01T12:00:00.123456Z","side":"buy","id":"t1"}',
      ),
    );
    expect(m?.trades).toEqual([
      {
        symbol: "BTC-USD",
        price: 64123.45,
        qty: 0.015,
        time: "2024-03-01T12:00:00.123456Z",
        timeNs: "1709294400123456000",
        id: "t1",
        side: "buy",
      },
    ]);
    const [e] = decoder.decodeMessages(
      Buffer.from('{"symbol":"X","price":1,"qty":2,"ts":1709294400123}'),
    );
    expect(e?.trades[0]?.time).toBe("2024-03-01T12:00:00.123Z");
  });

  it("rejects malformed input with an error coded by its class, not a crash", () => {
    const { badArgument, badBatch, badConfig, badState } = NATIVE_ERRORS;
    const payload = Buffer.from("abc");
    expect(
      thrown(() => decoder.decodeBatch(payload, new Uint32Array([0, 10]), null, "s")),
    ).toMatchObject({ code: badArgument, message: expect.stringMatching(/outside the payload/) });
    expect(
      thrown(() => decoder.decodeBatch(payload, new Uint32Array([]), null, "s")),
    ).toMatchObject({
      code: badArgument,
      message: expect.stringMatching(/boundaries/),
    });
    expect(thrown(() => new native.FixDecoder({ mdEntryTypes: "" }))).toMatchObject({
      code: badConfig,
      message: expect.stringMatching(/mdEntryTypes/),
    });
    expect(thrown(() => new native.Engine({ detectorKind: "nope" }))).toMatchObject({
      code: badConfig,
    });

    const engine = new native.Engine();
    expect(thrown(() => engine.applyBatch(Buffer.from("not a batch"), 0))).toMatchObject({
      code: badBatch,
      message: expect.stringMatching(/^bad batch/),
    });
    expect(thrown(() => native.batchSymbols(Buffer.from("not a batch")))).toMatchObject({
      code: badBatch,
    });
    const empty = decoder.decodeBatch(Buffer.alloc(0), new Uint32Array([0]), null, "s").batch;
    expect(thrown(() => engine.applyBatch(empty, Number.NaN))).toMatchObject({
      code: badArgument,
      message: expect.stringMatching(/nowMs/),
    });
    expect(thrown(() => engine.bars("X", "7m"))).toMatchObject({ code: badArgument });
    expect(thrown(() => engine.importSymbol(Buffer.from("TSS1garbage"), false))).toMatchObject({
      code: badState,
      message: expect.stringMatching(/^bad state/),
    });
  });

  it("turns a panic in the core into a JS error and keeps the process alive", () => {
    // napi's own code, not one of the binding's: services treat it as a native failure.
    expect(thrown(() => native.forcePanic("boom from a test"))).toMatchObject({
      code: "GenericFailure",
      message: "boom from a test",
    });
    // The addon still works after the panic.
    expect(native.crc32(Buffer.from("123456789"))).toBe(0xcbf43926);
  });

  it("checks crc32 headers in decimal and hex", () => {
    const payload = Buffer.from("123456789");
    expect(native.verifyCrc32(payload, Buffer.from(String(0xcbf43926)))).toBe(true);
    expect(native.verifyCrc32(payload, Buffer.from("cbf43926"))).toBe(true);
    expect(native.verifyCrc32(payload, Buffer.from("cbf43927"))).toBe(false);
  });

  it("checks a batch's crc32 headers in one call exactly as record by record", () => {
    const recs = records(jse).slice(0, 500);
    const headers = recs.map((r, i) => {
      const crc = native.crc32(r);
      switch (i % 5) {
        case 0:
          return Buffer.from(String(crc));
        case 1:
          return Buffer.from(crc.toString(16).padStart(8, "0"));
        case 2:
          return Buffer.from(String((crc + 1) % 2 ** 32));
        case 3:
          return Buffer.from("not a crc");
        default:
          return Buffer.alloc(0); // no header: not checked
      }
    });
    const { payload, offsets } = pack(recs);
    const h = pack(headers);
    const bad = native.verifyCrc32Batch(payload, offsets, h.payload, h.offsets);
    const expected = recs
      .map((r, i) => (headers[i]!.length > 0 && !native.verifyCrc32(r, headers[i]!) ? i : -1))
      .filter((i) => i >= 0);
    expect([...bad]).toEqual(expected);
    expect(expected.length).toBe(200);

    expect(() =>
      native.verifyCrc32Batch(payload, offsets, h.payload, h.offsets.subarray(1)),
    ).toThrow(/boundaries/);
    const beyond = Uint32Array.from(offsets);
    beyond[beyond.length - 1] = payload.length + 1;
    expect(() => native.verifyCrc32Batch(payload, beyond, h.payload, h.offsets)).toThrow(/outside/);
  });
});
