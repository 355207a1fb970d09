/**
 * A plain Server-Sent Events client for the latency run: one HTTP GET on `/api/stream`, read as it
 * arrives, split into events by the blank line that ends each. Every `bar` and `closed` event is
 * kept with the wall-clock time its bytes were read.
 */
import http from "node:http";
import type { ReceivedBar } from "./stats";

export interface StreamClient {
  events: ReceivedBar[];
  /** Resolves once the `hello` event arrived. */
  opened: Promise<void>;
  close(): void;
}

interface BarEvent {
  symbol: string;
  interval: string;
  bar: { startMs: number; trades: number };
}

export function openStream(url: string, symbols: readonly string[]): StreamClient {
  const events: ReceivedBar[] = [];
  const query = `symbols=${symbols.join(",")}&intervals=1m&anomalies=0`;
  let request: http.ClientRequest | null = null;
  const opened = new Promise<void>((resolve, reject) => {
    request = http.get(`${url}/api/stream?${query}`, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`/api/stream answered ${res.statusCode}`));
        res.resume();
        return;
      }
      res.setEncoding("utf8");
      let pending = "";
      res.on("data", (chunk: string) => {
        const receivedAtMs = Date.now();
        pending += chunk;
        let end: number;
        while ((end = pending.indexOf("\n\n")) >= 0) {
          const block = pending.slice(0, end);
          pending = pending.slice(end + 2);
          let event = "message";
          let data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event: ")) event = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (event === "hello") resolve();
          else if (event === "bar" || event === "closed") {
            const b = JSON.parse(data) as BarEvent;
            events.push({
              symbol: b.symbol,
              barStartMs: b.bar.startMs,
              trades: b.bar.trades,
              receivedAtMs,
            });
          }
        }
      });
      res.on("error", reject);
    });
    request.on("error", reject);
  });
  return {
    events,
    opened,
    close: () => request?.destroy(),
  };
}
