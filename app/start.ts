/**
 * Builds and starts one Tickstream node: a broker with the configured services. `npm start`, `npm
 * run node` and the tests all come through here, so what runs in a test is what runs in production.
 */
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { ServiceBroker, type BrokerOptions } from "moleculer";
import { brokerOptions } from "../moleculer.config";
import type { Config } from "../src/config";
import { countLostNodes } from "../src/metrics";
import { firstFreePort, portFree, PortInUse } from "../src/node/ports";
import { publisherService } from "../services/publisher/publisher.service";
import { SERVICE_FACTORIES } from "./services";

export interface StartedNode {
  broker: ServiceBroker;
  /** REST base URL when the node runs the api service. */
  url: string | null;
  stop(): Promise<void>;
}

/**
 * Starts a node. Throws `PortInUse` when the gateway's port is taken; a taken metrics port is
 * replaced by the next free one (logged).
 */
export async function startNode(
  given: Config,
  overrides: Partial<BrokerOptions> = {},
): Promise<StartedNode> {
  const config = await withFreePorts(given);
  const broker = new ServiceBroker({ ...brokerOptions(config), ...overrides });
  if (config.metrics.port !== given.metrics.port)
    broker.logger.warn(
      { wanted: given.metrics.port, port: config.metrics.port },
      `METRICS_PORT ${given.metrics.port} is in use; metrics are served on ${config.metrics.port}`,
    );
  for (const name of config.services) broker.createService(SERVICE_FACTORIES[name](config));
  // With BARS_TOPIC or ANOMALIES_TOPIC, every actor node can be the publisher.
  if (config.publish !== null && config.services.some((s) => s === "aggregator" || s === "anomaly"))
    broker.createService(publisherService(config));
  countLostNodes(broker);
  await broker.start();
  let url: string | null = null;
  const api = config.services.includes("api")
    ? (broker.getLocalService("api") as unknown as { server?: Server })
    : null;
  const address = api?.server?.address() as AddressInfo | null | undefined;
  if (address) {
    url = `http://127.0.0.1:${address.port}`;
    broker.logger.info(
      { url: `${url}/api`, services: config.services },
      `Tickstream REST on ${url}/api`,
    );
  }
  return { broker, url, stop: () => broker.stop() };
}

async function withFreePorts(config: Config): Promise<Config> {
  if (
    config.services.includes("api") &&
    config.http.port !== 0 &&
    !(await portFree(config.http.port))
  )
    throw new PortInUse("PORT", config.http.port);
  if (!config.metrics.enabled) return config;
  const port = await firstFreePort("METRICS_PORT", config.metrics.port);
  return port === config.metrics.port
    ? config
    : { ...config, metrics: { ...config.metrics, port } };
}
