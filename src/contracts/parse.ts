/** What the parser service takes and answers (`parser.parse`), and a rejected message. */

export interface ParseParams {
  source: string;
  payload: Buffer;
  offsets: Uint32Array;
  seqs: Float64Array;
}

export interface Reject {
  /** Index of the record in the batch. */
  record: number;
  reason: string;
  /** Byte offset of the rejected message within its record. */
  offset: number;
}

export interface ParseResult {
  batch: Buffer;
  symbols: string[];
  records: number;
  messages: number;
  valid: number;
  trades: number;
  orders: number;
  corrections: number;
  rejects: Reject[];
}
