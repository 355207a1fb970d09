/**
 * A node killed and restarted under the same ID before its heartbeats time out is never reported
 * disconnected, so requests in flight to the dead process would wait for the whole request
 * timeout. With `restartedNodesMiddleware` they are rejected (retryably) as soon as the new
 * process announces itself; without it (the control) they time out. Real nats-server; the first
 * process of node "b" dies the way SIGKILL leaves it: its connection closes, nothing is said.
 */
import { Errors, ServiceBroker, type Middleware } from "moleculer";
import { TickstreamNatsTransporter } from "../../src/cluster/nats-transporter";
import { restartedNodesMiddleware } from "../../src/cluster/restarted-nodes";
import { startNats, type NatsHandle } from "../../scripts/infra/nats";

const TIMEOUT_MS = 8_000;

interface Killable {
  transit: { tx: { client: { close(): Promise<void> } } };
  registry: { discoverer: { stopHeartbeatTimers(): void } };
}

describe("a node restarted under the same ID", () => {
  let nats: NatsHandle;
  const brokers: ServiceBroker[] = [];

  beforeAll(async () => {
    nats = await startNats();
  }, 60_000);
  afterAll(async () => {
    await Promise.all(brokers.map((b) => b.stop().catch(() => undefined)));
    await nats?.stop();
  });

  const broker = (namespace: string, nodeID: string, middlewares: Middleware[]) => {
    const b = new ServiceBroker({
      namespace,
      nodeID,
      transporter: new TickstreamNatsTransporter({ url: nats.url }),
      requestTimeout: TIMEOUT_MS,
      heartbeatInterval: 5,
      heartbeatTimeout: 30,
      logger: false,
      middlewares,
    });
    brokers.push(b);
    return b;
  };

  /** Node "a" calls an action of "b" that never answers; "b" dies and comes back; what does "a" see? */
  const run = async (namespace: string, middlewares: () => Middleware[]) => {
    const a = broker(namespace, "a", middlewares());
    const b1 = broker(namespace, "b", middlewares());
    let received = 0;
    const service = {
      name: "slow",
      actions: {
        hang: () => {
          received += 1;
          return new Promise(() => undefined);
        },
        ping: () => "pong",
      },
    };
    b1.createService(service);
    await Promise.all([a.start(), b1.start()]);
    await a.waitForServices("slow", 10_000);
    const started = Date.now();
    const pending = a.call("slow.hang", {}, { retries: 0 }).then(
      () => {
        throw new Error("answered");
      },
      (err: Errors.MoleculerError) => ({ err, ms: Date.now() - started }),
    );
    while (received === 0) await new Promise((r) => setTimeout(r, 10));

    // SIGKILL, as the rest of the cluster sees it: the connection drops, no DISCONNECT is sent.
    const killed = b1 as unknown as Killable;
    killed.registry.discoverer.stopHeartbeatTimers();
    await killed.transit.tx.client.close();

    const b2 = broker(namespace, "b", middlewares());
    b2.createService(service);
    await b2.start();
    const outcome = await pending;
    // The new process answers (it is reachable under the same ID).
    expect(await a.call("slow.ping", {}, { nodeID: "b" })).toBe("pong");
    return outcome;
  };

  it("fails calls in flight to the dead process at once, retryably", async () => {
    const { err, ms } = await run(`restart-mw-${process.pid}`, () => [restartedNodesMiddleware()]);
    expect(err).toBeInstanceOf(Errors.RequestRejectedError);
    expect(err.retryable).toBe(true);
    expect(ms).toBeLessThan(TIMEOUT_MS - 2_000);
  }, 30_000);

  it("control: without the middleware they wait for the request timeout", async () => {
    const { err, ms } = await run(`restart-ctl-${process.pid}`, () => []);
    expect(err).toBeInstanceOf(Errors.RequestTimeoutError);
    expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
  }, 30_000);
});
