/**
 * Server-Sent Events framing (WHATWG HTML, "Server-sent events"): an event is `event:` and
 * `data:` lines ended by a blank line; a line starting with `:` is a comment that clients ignore,
 * which makes it the keep-alive; `retry:` sets the client's reconnection delay.
 */

/** One event whose data is JSON text (which never holds a raw newline: one line). */
export function sseEventJson(event: string, json: string): string {
  return `event: ${event}\ndata: ${json}\n\n`;
}

export function sseComment(text: string): string {
  return `: ${text}\n\n`;
}

export function sseRetry(ms: number): string {
  return `retry: ${Math.round(ms)}\n\n`;
}
