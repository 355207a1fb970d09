/**
 * Heartbeats under saturation: three nodes over NATS, every service on each, each node's built-in
 * feed offering far more trades than the two cores can apply, for a minute (`--quick`) or five.
 * A node must not be taken for dead because it is busy: every node counts the nodes it declared
 * lost (`$node.disconnected`, unexpected), and the goal is 0. Beside it, what the cluster applied
 * and how late each node's event loop ran (a 5 ms timer in the node probe).
 */
import { setTimeout as delay } from "node:timers/promises";
import { freePort, waitFor } from "../scripts/infra/processes";
import { exitSignal, spawnChild, type Child } from "./children";
import type { Section, Table } from "./harness";
import { rate } from "./harness";
import { sharedNats, uniqueName } from "./infra";
import type { ProbeReport } from "./node-probe";

const NODES = 3;
/** Trades per second each node's feed offers: together several times what 2 cores apply. */
const OFFERED_PER_NODE = 100_000;

export const saturationSection: Section = {
  key: "saturation",
  title: "Three nodes saturated over NATS: nodes declared lost",
  async run(options) {
    const nats = await sharedNats(options);
    const namespace = uniqueName("bench-saturation");
    const windowMs = options.quick ? 60_000 : 300_000;
    const envs = await Promise.all(
      Array.from({ length: NODES }, async (_, i) => ({
        NODEID: `${namespace}-n${i + 1}`,
        PORT: String(await freePort()),
        METRICS: "false",
        LOG_LEVEL: "warn",
        DASHBOARD: "false",
        HISTORY_URL: "off",
        TRANSPORTER: nats.url,
        NAMESPACE: namespace,
        FEED_RATE: String(OFFERED_PER_NODE),
        FEED_SYMBOLS: "1000",
        FEED_SEED: String(i + 1),
      })),
    );
    const spawned = await Promise.allSettled(
      envs.map((env) => spawnChild<ProbeReport>(options.root, env.NODEID, "node-probe", [], env)),
    );
    const children: Child<ProbeReport>[] = spawned.flatMap((s) =>
      s.status === "fulfilled" ? [s.value] : [],
    );
    try {
      const failed = spawned.find((s) => s.status === "rejected");
      if (failed) throw failed.reason;
      await waitFor(
        async () => {
          const res = await fetch(`${children[0]!.url!}/api/stats`);
          const body = (await res.json()) as { nodes?: unknown[] };
          return (body.nodes?.length ?? 0) >= NODES ? true : null;
        },
        {
          timeoutMs: 60_000,
          intervalMs: 200,
          what: "every node in the cluster",
          signal: exitSignal(children),
        },
      );
      await Promise.all(children.map((c) => c.report(10_000, "reset")));
      options.log(`saturation: ${NODES} nodes, ${windowMs / 1000} s…`);
      await delay(windowMs); // the load window itself
      const reports = await Promise.all(children.map((c) => c.report(30_000)));
      return result(reports, windowMs);
    } finally {
      await Promise.all(children.map((c) => c.stop()));
    }
  },
};

function result(reports: readonly ProbeReport[], windowMs: number) {
  const seconds = windowMs / 1000;
  const perNode = reports.map((r) => {
    const w = r.window;
    const cpuSec = w
      ? (w.cpuLast.user - w.cpuFirst.user + w.cpuLast.system - w.cpuFirst.system) / 1e6
      : 0;
    return {
      node: r.nodeID,
      recordsPerSec: (w?.records ?? 0) / seconds,
      nodesLost: r.nodesLost,
      eventLoopP99Ms: r.eventLoopDelay?.p99Ms ?? null,
      eventLoopMaxMs: r.eventLoopDelay?.maxMs ?? null,
      cpuPct: (100 * cpuSec) / seconds,
    };
  });
  const lost = perNode.reduce((n, p) => n + p.nodesLost, 0);
  const total = perNode.reduce((n, p) => n + p.recordsPerSec, 0);
  const ms = (x: number | null) => (x === null ? "–" : `${x.toFixed(1)} ms`);
  const table: Table = {
    title: `${NODES} nodes over NATS for ${seconds} s, each feed offering ${rate(OFFERED_PER_NODE)} trades/s`,
    header: [
      "node",
      "records/s ingested",
      "CPU",
      "loop delay p99",
      "loop delay max",
      "nodes declared lost",
    ],
    rows: [
      ...perNode.map((p) => [
        p.node,
        rate(p.recordsPerSec),
        `${Math.round(p.cpuPct)} %`,
        ms(p.eventLoopP99Ms),
        ms(p.eventLoopMaxMs),
        String(p.nodesLost),
      ]),
      ["all", rate(total), "", "", "", `${lost} (goal 0: ${lost === 0 ? "met" : "NOT met"})`],
    ],
  };
  return {
    json: {
      nodes: perNode,
      recordsPerSec: total,
      offeredPerSec: NODES * OFFERED_PER_NODE,
      nodesLost: lost,
      goalNodesLost: 0,
      goalMet: lost === 0,
    },
    tables: [table],
    ratios: [],
    notes: [
      "records/s: what each node's ingest handed over and saw applied by the owners (every trade crosses NATS to its owner unless the node owns it)",
      "nodes declared lost: `$node.disconnected` with `unexpected` on that node, summed; the production heartbeat settings (HEARTBEAT_INTERVAL_S 2, HEARTBEAT_TIMEOUT_S 6)",
    ],
  };
}
