/**
 * A Server-Sent Events reader over `fetch`, so that requests can carry the `X-API-Key` header
 * (`EventSource` cannot send headers). Parses the stream as the WHATWG spec says; reconnects after
 * the server's `retry:` delay.
 */

export interface SseMessage {
  event: string;
  data: string;
}

/** Incremental SSE parser: feed it text as it arrives, get whole messages back. */
export class SseParser {
  retryMs: number | null = null;
  private buffer = "";
  private event = "";
  private data: string[] = [];

  feed(text: string): SseMessage[] {
    this.buffer += text;
    const out: SseMessage[] = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      // A lone trailing \r may be the first half of \r\n: wait for more.
      if (!m || (m[0] === "\r" && m.index === this.buffer.length - 1)) break;
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      if (line === "") {
        if (this.data.length > 0)
          out.push({ event: this.event || "message", data: this.data.join("\n") });
        this.event = "";
        this.data = [];
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") this.event = value;
      else if (field === "data") this.data.push(value);
      else if (field === "retry" && /^\d+$/.test(value)) this.retryMs = Number(value);
    }
    return out;
  }
}

export type StreamState = "connecting" | "live" | "reconnecting" | "unauthorized";

export interface EventStreamOptions {
  url: string;
  headers: () => Record<string, string>;
  onMessage(message: SseMessage): void;
  onState(state: StreamState): void;
}

/** Keeps an event stream open until `close()`, reconnecting when it drops. */
export class EventStream {
  private readonly abort = new AbortController();
  private retryMs = 2000;

  constructor(private readonly opts: EventStreamOptions) {
    void this.run();
  }

  close(): void {
    this.abort.abort();
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      this.opts.onState("connecting");
      try {
        const res = await fetch(this.opts.url, {
          headers: { Accept: "text/event-stream", ...this.opts.headers() },
          cache: "no-store",
          signal,
        });
        if (res.status === 401) {
          this.opts.onState("unauthorized");
          return;
        }
        if (!res.ok || !res.body) throw new Error(`stream answered ${res.status}`);
        const parser = new SseParser();
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let live = false;
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          for (const message of parser.feed(value)) {
            if (!live) {
              live = true;
              this.opts.onState("live");
            }
            this.opts.onMessage(message);
          }
          if (parser.retryMs !== null) this.retryMs = parser.retryMs;
        }
      } catch {
        // dropped, refused or aborted: reconnect below unless closed
      }
      if (signal.aborted) return;
      this.opts.onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, this.retryMs));
    }
  }
}
