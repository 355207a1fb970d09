/**
 * Writing FIX tag=value messages: header, BodyLength and CheckSum computed as the standard says.
 * Used by the synthetic feed and the Kafka producer tool; decoding lives in the Rust core.
 */

export const SOH = "\x01";

export type Field = readonly [tag: number, value: string];

/**
 * Encodes one message. `fields` is the body after MsgType (header fields such as 34/49/52/56
 * included, in the order given); BodyLength and CheckSum are computed here.
 */
export function encodeFix(beginString: string, msgType: string, fields: readonly Field[]): Buffer {
  let body = `35=${msgType}${SOH}`;
  for (const [tag, value] of fields) body += `${tag}=${value}${SOH}`;
  const bodyBytes = Buffer.from(body, "latin1");
  const head = Buffer.from(`8=${beginString}${SOH}9=${bodyBytes.length}${SOH}`, "latin1");
  let sum = 0;
  for (const b of head) sum += b;
  for (const b of bodyBytes) sum += b;
  const trailer = Buffer.from(`10=${String(sum % 256).padStart(3, "0")}${SOH}`, "latin1");
  return Buffer.concat([head, bodyBytes, trailer]);
}

/** Formats epoch milliseconds (plus optional extra microseconds) as a FIX UTCTimestamp. */
export function fixTimestamp(epochMs: number, micros = 0): string {
  const d = new Date(epochMs);
  const p2 = (n: number) => String(n).padStart(2, "0");
  const date = `${d.getUTCFullYear()}${p2(d.getUTCMonth() + 1)}${p2(d.getUTCDate())}`;
  const time = `${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}`;
  const ms = String(d.getUTCMilliseconds()).padStart(3, "0");
  return micros > 0
    ? `${date}-${time}.${ms}${String(micros).padStart(3, "0")}`
    : `${date}-${time}.${ms}`;
}

/** Replaces `|` by SOH, for messages written readably. */
export function fromPipes(text: string): Buffer {
  return Buffer.from(text.replaceAll("|", SOH), "latin1");
}
