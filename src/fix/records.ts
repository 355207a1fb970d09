/** Splitting FIX streams into one record per message, and keying records by symbol. */
import { native } from "../native";

/** One record per framed message (or run of skipped bytes), framed by BodyLength in the Rust core. */
export function frameRecords(stream: Buffer): Buffer[] {
  const frames = native.frameStream(stream);
  const out: Buffer[] = [];
  for (let i = 0; i + 1 < frames.length; i += 2) {
    const start = frames[i]!;
    out.push(stream.subarray(start, start + frames[i + 1]!));
  }
  return out;
}

/** The first Symbol(55) of a FIX message (its Kafka key), or null. */
export function symbolOf(message: Buffer): string | null {
  const at = message.indexOf("\x0155=");
  if (at < 0) return null;
  const end = message.indexOf(0x01, at + 4);
  return end < 0 ? null : message.toString("latin1", at + 4, end);
}
