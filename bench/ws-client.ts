/**
 * WebSocket clients for the latency run: `count` connections on `/api/ws`, the first subscribed
 * to every watched symbol (its `bar` and `closed` messages are kept with the wall-clock time they
 * were read, as the SSE client does), the others to one watched symbol each, round robin, so the
 * gateway fans out to `count` connections at once.
 */
import WebSocket from "ws";
import type { ReceivedBar } from "./stats";

export interface WsClients {
  /** What the measuring connection received. */
  events: ReceivedBar[];
  /** Resolves once every connection's subscription is acknowledged. */
  opened: Promise<void>;
  close(): void;
}

interface Message {
  type: string;
  data?: { symbol: string; interval: string; bar: { startMs: number; trades: number } };
}

export function openWsClients(url: string, symbols: readonly string[], count: number): WsClients {
  const events: ReceivedBar[] = [];
  const sockets: WebSocket[] = [];
  const acks: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const ws = new WebSocket(`${url.replace(/^http/, "ws")}/api/ws`);
    sockets.push(ws);
    const wanted = i === 0 ? [...symbols] : [symbols[i % symbols.length]!];
    acks.push(
      new Promise<void>((resolve, reject) => {
        ws.once("error", reject);
        ws.once("open", () =>
          ws.send(JSON.stringify({ op: "subscribe", symbols: wanted, intervals: ["1m"] })),
        );
        ws.on("message", (raw: Buffer) => {
          const receivedAtMs = Date.now();
          const m = JSON.parse(raw.toString("utf8")) as Message;
          if (m.type === "ack") resolve();
          else if (i === 0 && (m.type === "bar" || m.type === "closed") && m.data)
            events.push({
              symbol: m.data.symbol,
              barStartMs: m.data.bar.startMs,
              trades: m.data.bar.trades,
              receivedAtMs,
            });
        });
      }),
    );
  }
  return {
    events,
    opened: Promise.all(acks).then(() => undefined),
    close: () => {
      for (const ws of sockets) ws.terminate();
    },
  };
}
