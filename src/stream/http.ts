/**
 * The stream's HTTP side. moleculer-web pipes the readable an action returns into the response;
 * the hub writes into that readable, and counts as backlog whatever is still buffered there or in
 * the response (the part the client has not taken yet).
 */
import { tooManyStreams } from "../errors";
import type { ServerResponse } from "node:http";
import { PassThrough } from "node:stream";
import type { StreamFilter } from "./filter";
import { corker, type StreamHub, type StreamSink } from "./hub";

/**
 * Response headers of an event stream: no caching, no buffering by proxies (nginx), and no reuse
 * of the connection once the stream ends (so a stopping node closes it at once).
 */
export const STREAM_HEADERS = {
  "Cache-Control": "no-cache, no-transform",
  "X-Accel-Buffering": "no",
  Connection: "close",
};

export const STREAM_CONTENT_TYPE = "text/event-stream; charset=utf-8";

/** A sink writing into `stream` (what the action returns), watching `res` too when given. */
export function responseSink(stream: PassThrough, res?: ServerResponse): StreamSink {
  const corked = res ? corker(res) : () => undefined;
  return {
    write(chunk) {
      if (stream.destroyed || stream.writableEnded) return;
      corked();
      stream.write(chunk);
    },
    backlogBytes: () => stream.writableLength + stream.readableLength + (res?.writableLength ?? 0),
    end: () => stream.end(),
    destroy() {
      stream.destroy();
      res?.destroy();
    },
    onClose(listener) {
      stream.once("close", listener);
      res?.once("close", listener);
    },
  };
}

/**
 * Opens a connection on the hub and returns the readable for moleculer-web to pipe into the
 * response; 503 when this node already serves its maximum of connections. Not a retryable error:
 * the broker would retry the (local) call itself, when it is the client that should come back later.
 */
export function openEventStream(
  hub: StreamHub,
  filter: StreamFilter,
  hello: object,
  res?: ServerResponse,
): PassThrough {
  if (hub.full) throw tooManyStreams();
  const stream = new PassThrough();
  hub.open(filter, responseSink(stream, res), hello);
  return stream;
}
