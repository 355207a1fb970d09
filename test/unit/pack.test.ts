/**
 * Records whose crc32 header does not match leave the packed payload as empty records; every
 * other record keeps its bytes, in order (checked against rebuilding the payload from scratch).
 */
import { leaveEmpty } from "../../services/ingest/sources/kafka/pack";
import { mulberry32 } from "../../src/feed/synthetic";

describe("leaveEmpty", () => {
  it("empties exactly the listed records, whatever their place and size", () => {
    const rand = mulberry32(7);
    for (let round = 0; round < 200; round++) {
      const n = Math.floor(rand() * 20);
      const recs = Array.from({ length: n }, (_, i) =>
        Buffer.alloc(Math.floor(rand() * 6), String.fromCharCode(97 + (i % 26))),
      );
      const empty = [...Array(n).keys()].filter(() => rand() < 0.3);
      const offsets = new Uint32Array(n + 1);
      recs.forEach((r, i) => (offsets[i + 1] = offsets[i]! + r.length));
      const payload = Buffer.concat(recs);

      const end = leaveEmpty(payload, offsets, Uint32Array.from(empty));

      const kept = recs.map((r, i) => (empty.includes(i) ? Buffer.alloc(0) : r));
      expect(payload.subarray(0, end)).toEqual(Buffer.concat(kept));
      for (let i = 0; i < n; i++)
        expect(payload.subarray(offsets[i], offsets[i + 1])).toEqual(kept[i]);
      expect(offsets[n]).toBe(end);
    }
  });
});
