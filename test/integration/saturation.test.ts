/**
 * Heartbeats under saturation: three nodes over a real nats-server, each offering far more trades
 * than the machine can apply, with the production heartbeat settings. Busy is not dead: no node
 * may declare another lost (`$node.disconnected` with `unexpected`), counted on every node by
 * `tickstream_cluster_nodes_lost`.
 */
import { startNats, type NatsHandle } from "../../scripts/infra/nats";
import { freePort } from "../../scripts/infra/processes";
import { eventually } from "../support/node";
import { spawnNode, type NodeProcess } from "../support/processes";

/** How long the cluster runs saturated (the bench runs it for minutes). */
const SATURATED_MS = Number(process.env.SATURATION_TEST_MS ?? 40_000);

/** A counter's value summed over the series matching `labels` in a Prometheus text page. */
function counter(page: string, name: string, labels = ""): number {
  return page
    .split("\n")
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .filter((l) => labels === "" || l.includes(labels))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
}

describe("heartbeats under saturation", () => {
  let nats: NatsHandle;
  const run = `${process.pid}-${Date.now().toString(36)}`;
  const nodes: { proc: NodeProcess; metrics: string }[] = [];

  beforeAll(async () => {
    nats = await startNats({ jetstream: true });
  }, 60_000);
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.proc.kill()));
    await nats?.stop();
  });

  it("declares no node lost while every node is busy", async () => {
    for (const name of ["a", "b", "c"]) {
      const metricsPort = await freePort();
      const proc = await spawnNode(`${name}-${run}`, {
        TRANSPORTER: nats.url,
        NAMESPACE: `saturation-${run}`,
        FEED_RATE: "100000",
        FEED_SYMBOLS: "1000",
        FEED_SEED: String(name.charCodeAt(0)),
        METRICS: "true",
        METRICS_PORT: String(metricsPort),
      });
      nodes.push({ proc, metrics: `http://127.0.0.1:${metricsPort}/metrics` });
    }
    await Promise.all(nodes.map((n) => n.proc.ready()));
    const scrape = () => Promise.all(nodes.map(async (n) => (await fetch(n.metrics)).text()));
    // Every node sees the other two before the window starts.
    await eventually(
      async () =>
        (await scrape()).every((p) => counter(p, "moleculer_registry_nodes_online_total") >= 3)
          ? true
          : undefined,
      "every node to see the three",
      60_000,
    );
    const applied = async () =>
      (await scrape()).reduce((sum, p) => sum + counter(p, "tickstream_trades_applied"), 0);
    const before = await applied();
    const started = Date.now();
    await new Promise((resolve) => setTimeout(resolve, SATURATED_MS)); // the load window itself
    const pages = await scrape();
    const rate = ((await applied()) - before) / ((Date.now() - started) / 1000);
    const lost = pages.map((p) => counter(p, "tickstream_cluster_nodes_lost", 'unexpected="true"'));
    const offered = 3 * 100_000;
    console.log(
      `saturation: ${Math.round(rate)} trades/s applied of ${offered} offered over ${SATURATED_MS / 1000} s; nodes declared lost: ${lost.join(", ")}`,
    );
    expect(rate).toBeLessThan(offered * 0.9); // saturated: the machine could not keep up
    expect(rate).toBeGreaterThan(5_000); // and yet it worked
    expect(lost).toEqual([0, 0, 0]);
    for (const n of nodes) expect(n.proc.output()).not.toContain("declared lost");

    // The counter counts: a node that really dies is declared lost by the other two.
    await nodes[2]!.proc.kill();
    await eventually(
      async () => {
        const survivors = await Promise.all(
          nodes.slice(0, 2).map(async (n) => (await fetch(n.metrics)).text()),
        );
        return survivors.every(
          (p) => counter(p, "tickstream_cluster_nodes_lost", 'unexpected="true"') === 1,
        )
          ? true
          : undefined;
      },
      "the two survivors to count the killed node lost",
      30_000,
    );
  }, 180_000);
});
