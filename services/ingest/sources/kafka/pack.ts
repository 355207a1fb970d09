/**
 * Kafka records → one raw batch (`RawBatch`): record i keeps its index, its offset as seq and its
 * timestamp. A record whose crc32 header does not match stays in the batch as an empty record and
 * is returned as a reject (for the dead-letter topic). Runs for every record: one pass into one
 * buffer, and one native call for all the crc32 headers of a batch.
 */
import type { KafkaMessage } from "kafkajs";
import { native } from "../../../../src/native";
import type { Delivery, RawBatch } from "../source";

export type Reject = Delivery["rejects"][number];

const CRC_HEADER = "crc32";
const EMPTY = Buffer.alloc(0);

function headerText(message: KafkaMessage, name: string): Buffer | undefined {
  const v = message.headers?.[name];
  if (v === undefined || v === null) return undefined;
  const first = Array.isArray(v) ? v[0] : v;
  return first === undefined ? undefined : Buffer.isBuffer(first) ? first : Buffer.from(first);
}

/**
 * Removes the bytes of the records listed in `empty` (ascending) from a packed payload, leaving
 * them as empty records; moves the later records down and fixes the offsets. Returns the new end.
 */
export function leaveEmpty(payload: Buffer, offsets: Uint32Array, empty: Uint32Array): number {
  let write = 0;
  let next = 0;
  for (let i = 0; i + 1 < offsets.length; i++) {
    const from = offsets[i]!;
    const to = offsets[i + 1]!;
    offsets[i] = write;
    if (next < empty.length && empty[next] === i) {
      next += 1;
      continue;
    }
    payload.copyWithin(write, from, to);
    write += to - from;
  }
  offsets[offsets.length - 1] = write;
  return write;
}

/** Packs messages into a raw batch; records whose crc32 header does not match are left empty. */
export function packMessages(
  source: string,
  messages: KafkaMessage[],
): { raw: RawBatch; crcRejects: Reject[] } {
  const n = messages.length;
  const crcs: (Buffer | undefined)[] = new Array<Buffer | undefined>(n);
  let total = 0;
  let headerTotal = 0;
  for (let i = 0; i < n; i++) {
    const m = messages[i]!;
    total += m.value?.length ?? 0;
    const crc = headerText(m, CRC_HEADER);
    crcs[i] = crc;
    headerTotal += crc?.length ?? 0;
  }
  const payload = Buffer.allocUnsafe(total);
  const offsets = new Uint32Array(n + 1);
  const headers = Buffer.allocUnsafe(headerTotal);
  const headerOffsets = new Uint32Array(n + 1);
  const seqs = new Float64Array(n);
  const producedAtMs = new Float64Array(n);
  let at = 0;
  let headerAt = 0;
  for (let i = 0; i < n; i++) {
    const m = messages[i]!;
    offsets[i] = at;
    headerOffsets[i] = headerAt;
    seqs[i] = Number(m.offset);
    producedAtMs[i] = Number(m.timestamp);
    const value = m.value ?? EMPTY;
    payload.set(value, at);
    at += value.length;
    const crc = crcs[i];
    if (crc !== undefined) {
      headers.set(crc, headerAt);
      headerAt += crc.length;
    }
  }
  offsets[n] = at;
  headerOffsets[n] = headerAt;
  const crcRejects: Reject[] = [];
  if (headerTotal > 0) {
    const bad = native.verifyCrc32Batch(payload, offsets, headers, headerOffsets);
    if (bad.length > 0) at = leaveEmpty(payload, offsets, bad);
    for (const record of bad) crcRejects.push({ record, reason: "CRC32", offset: 0 });
  }
  return {
    raw: { source, payload: payload.subarray(0, at), offsets, seqs, producedAtMs },
    crcRejects,
  };
}
