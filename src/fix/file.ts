/**
 * Reading FIX files as users have them: a raw SOH stream (as captured from a session), or one
 * message per line with SOH or `|` as the field delimiter.
 *
 * Each non-empty line is one stream (a raw capture is a single "line"); a line without any SOH
 * has its `|` turned into SOH before validation. Data fields that contain a newline cannot be
 * represented in the line format.
 */
import { readFileSync } from "node:fs";

const SOH = 0x01;
const PIPE = 0x7c;
const LF = 0x0a;
const CR = 0x0d;

/** One line of a FIX file, ready for the decoder. */
export interface FixLine {
  /** 1-based line number in the file. */
  line: number;
  bytes: Buffer;
}

/** Splits file contents into lines and normalises their delimiter. */
export function splitFixLines(contents: Buffer): FixLine[] {
  const lines: FixLine[] = [];
  let start = 0;
  let lineNo = 0;
  while (start <= contents.length) {
    let end = contents.indexOf(LF, start);
    if (end < 0) end = contents.length;
    lineNo += 1;
    let stop = end;
    if (stop > start && contents[stop - 1] === CR) stop -= 1;
    if (stop > start) {
      let bytes = contents.subarray(start, stop);
      if (!bytes.includes(SOH)) {
        bytes = Buffer.from(bytes);
        for (let i = 0; i < bytes.length; i++) if (bytes[i] === PIPE) bytes[i] = SOH;
      }
      lines.push({ line: lineNo, bytes });
    }
    if (end === contents.length) break;
    start = end + 1;
  }
  return lines;
}

/** Reads a FIX file; throws the usual `ENOENT`/`EISDIR` errors for unusable paths. */
export function readFixFile(path: string): FixLine[] {
  return splitFixLines(readFileSync(path));
}
