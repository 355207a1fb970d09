/**
 * `npm run bench:serializers`: which Moleculer serializer carries Tickstream's packets best.
 *
 * Measures the two packets that cross nodes on the hot path — a raw batch to the parser (records
 * as one Buffer plus typed-array boundaries) and a packed trade batch to an actor — with each
 * built-in serializer: size, encode+decode time, and whether the binary fields survive the round
 * trip (a serializer that turns a Buffer into an array of numbers cannot carry them at all).
 */
import { Serializers, ServiceBroker } from "moleculer";
import { SyntheticMarket } from "../src/feed/synthetic";
import { native } from "../src/native";

const NAMES = ["JSON", "CBOR", "MsgPack", "Notepack"] as const;

function packets() {
  const market = new SyntheticMarket({
    symbols: 1000,
    seed: 7,
    malformedRatio: 0,
    jumpProbability: 0,
  });
  const records = market.next(2000, Date.UTC(2024, 0, 2, 14, 30));
  const offsets = new Uint32Array(records.length + 1);
  records.forEach((r, i) => (offsets[i + 1] = offsets[i]! + r.length));
  const payload = Buffer.concat(records);
  const seqs = Float64Array.from(records, (_, i) => 1_000_000 + i);
  const decoded = new native.FixDecoder().decodeBatch(payload, offsets, seqs, "trades/0");
  return {
    parse: {
      action: "parser.parse",
      params: { source: "trades/0", payload, offsets, seqs },
      meta: {},
      level: 1,
    },
    apply: {
      action: "aggregator.apply",
      params: { batch: decoded.batch, producedAtMs: Date.now() },
      meta: {},
      level: 1,
    },
  };
}

function survives(original: Record<string, unknown>, decoded: Record<string, unknown>): boolean {
  return Object.entries(original).every(([k, v]) => {
    const d = decoded[k];
    if (ArrayBuffer.isView(v))
      return (
        ArrayBuffer.isView(d) &&
        Buffer.from(v.buffer, v.byteOffset, v.byteLength).equals(
          Buffer.from(d.buffer, d.byteOffset, d.byteLength),
        )
      );
    return JSON.stringify(d) === JSON.stringify(v);
  });
}

export interface SerializerResult {
  name: string;
  packet: string;
  bytes: number;
  roundTripMs: number;
  binarySafe: boolean;
}

export function measureSerializers(iterations = 200): SerializerResult[] {
  const broker = new ServiceBroker({ logger: false });
  const out: SerializerResult[] = [];
  const p = packets();
  for (const name of NAMES) {
    const s = Serializers.resolve(name);
    s.init(broker);
    for (const [packet, data] of Object.entries(p)) {
      const encoded = s.serialize(data as never, "REQ");
      const back = s.deserialize(encoded, "REQ") as { params: Record<string, unknown> };
      for (let i = 0; i < 10; i++) s.deserialize(s.serialize(data as never, "REQ"), "REQ");
      const started = process.hrtime.bigint();
      for (let i = 0; i < iterations; i++) s.deserialize(s.serialize(data as never, "REQ"), "REQ");
      const ms = Number(process.hrtime.bigint() - started) / 1e6 / iterations;
      out.push({
        name,
        packet,
        bytes: encoded.length,
        roundTripMs: ms,
        binarySafe: survives(data.params, back.params),
      });
    }
  }
  return out;
}

if (require.main === module) {
  const rows = measureSerializers();
  console.table(rows.map((r) => ({ ...r, roundTripMs: r.roundTripMs.toFixed(3) })));
}
