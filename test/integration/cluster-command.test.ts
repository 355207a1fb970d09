/**
 * `npm run cluster`: one command starts Kafka, nats-server, the synthetic feed and N nodes on this
 * machine; the nodes share the symbols between them; Ctrl-C (SIGINT) stops everything it started.
 * Runs the built script as a user would (fixed local ports 9092 and 4222, as `infra:up` uses).
 */
import { spawn, spawnSync } from "node:child_process";
import path from "node:path";
import { freePort } from "../../scripts/infra/processes";
import { eventually, getJson } from "../support/node";

const ROOT = path.join(__dirname, "..", "..");
const NODE = path.join(ROOT, "node_modules", ".bin", "node");

describe("npm run cluster", () => {
  it("starts a 2-node cluster with a feed, shares the symbols, and stops it all on Ctrl-C", async () => {
    const infraWasUp =
      spawnSync(NODE, ["dist/scripts/infra.js", "status"], { cwd: ROOT, stdio: "ignore" })
        .status === 0;
    const port = await freePort();
    const child = spawn(NODE, ["dist/scripts/cluster.js", "--nodes", "2", "--symbols", "20"], {
      cwd: ROOT,
      env: { ...process.env, PORT: String(port), LOG_LEVEL: "warn" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    try {
      const url = await eventually(
        () => /dashboard: (http:\/\/\S+)\//.exec(out)?.[1],
        "the dashboard URL",
        180_000,
      ).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}; output: ${out.slice(-2000)}`);
      });
      expect(url).toBe(`http://127.0.0.1:${port}`);
      // Both nodes hold symbols of the feed, as the gateway sees them.
      const owners = await eventually(
        async () => {
          const res = await getJson(`${url}/api/symbols`, {}, 5000);
          const rows = (res.body as { symbols?: { node: string }[] }).symbols ?? [];
          const nodes = new Set(rows.map((r) => r.node));
          return nodes.size === 2 ? nodes : undefined;
        },
        "symbols held by both nodes",
        120_000,
      );
      expect([...owners].sort()).toEqual(["node-1", "node-2"]);
    } finally {
      child.kill("SIGINT");
    }
    expect(await exited).toBe(0);
    const infraUp =
      spawnSync(NODE, ["dist/scripts/infra.js", "status"], { cwd: ROOT, stdio: "ignore" })
        .status === 0;
    expect(infraUp).toBe(infraWasUp); // stopped again only if the command had started it
  }, 300_000);
});
