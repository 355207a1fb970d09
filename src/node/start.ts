/**
 * Builds and starts one Tickstream node: a broker with the configured services. `npm start`, `npm
 * run node` and the tests all come through here, so what runs in a test is what runs in production.
 */
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { ServiceBroker, type BrokerOptions } from "moleculer";
import { brokerOptions } from "../../moleculer.config";
import type { Config } from "../config";
import { SERVICE_FACTORIES } from "./services";

export interface StartedNode {
  broker: ServiceBroker;
  /** REST base URL when the node runs the api service. */
  url: string | null;
  stop(): Promise<void>;
}

export async function startNode(
  config: Config,
  overrides: Partial<BrokerOptions> = {},
): Promise<StartedNode> {
  const broker = new ServiceBroker({ ...brokerOptions(config), ...overrides });
  for (const name of config.services) broker.createService(SERVICE_FACTORIES[name](config));
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
