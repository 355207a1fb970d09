/**
 * Broker options for every Tickstream node, built from the parsed configuration.
 *
 * One node or many, the options are the same; only `TRANSPORTER` decides whether nodes talk
 * over NATS or in-process. `scripts/node.ts` builds a broker from `brokerOptions(loadConfig())`;
 * the default export serves `moleculer-runner` users.
 */
import { Errors, type BrokerOptions } from "moleculer";
import { TickstreamNatsTransporter } from "./src/cluster/nats-transporter";
import { registerRendezvous } from "./src/cluster/rendezvous";
import { restartedNodesMiddleware } from "./src/cluster/restarted-nodes";
import { loadConfig, type Config } from "./src/config";
import { logContextMiddleware } from "./src/node/log-context";

export function brokerOptions(config: Config): BrokerOptions {
  // Per-symbol actions name the "Rendezvous" strategy; every node must know it.
  registerRendezvous();
  return {
    namespace: config.namespace,
    nodeID: config.nodeID,
    // NATS when configured (discovery, heartbeats and calls all ride on it); otherwise one process.
    // Moleculer's NATS transporter, plus telling the broker when its connection drops and returns
    // (src/cluster/nats-transporter.ts): a nats-server outage must not look like every other node
    // dying. The client retries forever, every second.
    transporter: config.transporter
      ? new TickstreamNatsTransporter({
          url: config.transporter,
          maxReconnectAttempts: -1,
          reconnectTimeWait: 1000,
        })
      : null,
    serializer: config.serializer,

    logger: {
      type: "Pino",
      options: {
        level: config.logLevel,
        pino: {
          options: {
            level: config.logLevel,
            base: undefined,
            timestamp: () => `,"time":"${new Date().toISOString()}"`,
            formatters: { level: (label: string) => ({ level: label }) },
          },
        },
      },
    },

    // Calls never wait forever: a lost node or a stuck actor surfaces as a retryable timeout.
    requestTimeout: config.requestTimeoutMs,
    retryPolicy: {
      enabled: true,
      retries: config.retries,
      delay: 100,
      maxDelay: 2000,
      factor: 2,
      check: (err: Error) => Boolean((err as Errors.MoleculerError).retryable),
    },

    // Fast failure detection (see README "Scaling out" for the heartbeat traffic this costs).
    heartbeatInterval: config.heartbeat.intervalS,
    heartbeatTimeout: config.heartbeat.timeoutS,

    tracking: { enabled: true, shutdownTimeout: 10_000 },

    // preferLocal would serve a sharded call on the caller's node whoever owns the symbol (the
    // strategy never runs); the one call that should stay local (raw records to the parser) names
    // its node explicitly.
    registry: { strategy: "RoundRobin", preferLocal: false },

    // Enabled at broker level: per-action breakers with metrics throw when they trip.
    circuitBreaker: {
      enabled: true,
      threshold: config.circuitBreakerThreshold,
      windowTime: 60,
      minRequestCount: 20,
      halfOpenTime: 10_000,
      // A call that failed because this node's own transporter is down says nothing about the
      // endpoint: counting it would leave every remote circuit open for halfOpenTime after a
      // NATS outage, delaying recovery.
      check: (err: Error) =>
        ((err as Errors.MoleculerError).code ?? 0) >= 500 &&
        !(err instanceof Errors.BrokerDisconnectedError),
    },

    // Bounded queues per action: the backpressure that keeps memory flat under a fast producer.
    bulkhead: {
      enabled: true,
      concurrency: config.bulkhead.concurrency,
      maxQueueSize: config.bulkhead.maxQueueSize,
    },

    metrics: {
      enabled: config.metrics.enabled,
      // Quantiles over a sliding minute, so p99 reflects now rather than since start.
      defaultMaxAgeSeconds: 60,
      defaultAgeBuckets: 10,
      reporter: [
        {
          type: "Prometheus",
          options: { port: config.metrics.port, path: "/metrics", defaultLabels: () => ({}) },
        },
      ],
    },

    tracing: {
      enabled: config.tracing.enabled,
      exporter:
        config.tracing.exporter === "Zipkin"
          ? [{ type: "Zipkin", options: { baseURL: config.tracing.zipkinUrl } }]
          : [{ type: "Console", options: { width: 100 } }],
    },

    validator: true,
    middlewares: [logContextMiddleware(), restartedNodesMiddleware()],
  };
}

export default brokerOptions(loadConfig());
