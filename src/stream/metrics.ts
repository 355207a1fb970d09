/** The stream's metrics, registered beside Tickstream's own (`tickstream_stream_*`). */
import type { ServiceBroker } from "moleculer";
import type { StreamHubHooks } from "./hub";

export const STREAM_METRICS = {
  connections: "tickstream.stream.connections",
  closed: "tickstream.stream.closed",
} as const;

/** Registers the stream metrics once per broker and returns the hub hooks that keep them. */
export function streamMetricsHooks(broker: ServiceBroker, open: () => number): StreamHubHooks {
  if (!broker.isMetricsEnabled()) return {};
  const metrics = broker.metrics;
  if (!metrics.getMetric(STREAM_METRICS.connections)) {
    metrics.register({
      type: "gauge",
      name: STREAM_METRICS.connections,
      description: "Open /api/stream connections on this gateway node",
    });
    metrics.register({
      type: "counter",
      name: STREAM_METRICS.closed,
      description:
        "Stream connections closed, by reason (client, slow: dropped for falling behind, shutdown)",
      labelNames: ["reason"],
    });
  }
  return {
    onOpen: () => metrics.set(STREAM_METRICS.connections, open()),
    onClose(reason) {
      metrics.set(STREAM_METRICS.connections, open());
      metrics.increment(STREAM_METRICS.closed, { reason });
    },
  };
}
