/**
 * A real Prometheus (Debian's `prometheus` binary) scrapes a node fed by the synthetic market, and
 * its HTTP API shows Tickstream's series and shows them moving: what a dashboard or an alert sees.
 *
 * Moleculer's Prometheus reporter exports counters without a `_total` suffix
 * (`tickstream_messages_received`, plus a `*_rate` sample it computes itself) and a histogram with
 * quantiles as both `_bucket{le}` / `_sum` / `_count` and `{quantile}` series.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { freePort } from "../../scripts/infra/processes";
import type { StartedNode } from "../../app/start";
import { eventually, getJson, startTestNode } from "../support/node";

type Sample = [number, string];
interface Series {
  metric: Record<string, string>;
  value?: Sample;
  values?: Sample[];
}

const PROMETHEUS = "/usr/bin/prometheus";

describe("Prometheus scrapes a node", () => {
  let node: StartedNode & { url: string };
  let prom: ChildProcess | undefined;
  let promExited: Promise<void> = Promise.resolve();
  let promOut = "";
  let promUrl = "";
  let dir = "";

  /** Runs a PromQL query and returns its result vector (instant or range-vector selector). */
  async function query(q: string): Promise<Series[]> {
    const res = await getJson(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`);
    const body = res.body as { status: string; data?: { result: Series[] }; error?: string };
    if (res.status !== 200 || body.status !== "success")
      throw new Error(`query ${q}: ${res.status} ${body.error ?? ""}`);
    return body.data!.result;
  }

  /** Waits until the series of `selector` hold samples whose later value exceeds an earlier one. */
  function moving(selector: string): Promise<Series[]> {
    return eventually(
      async () => {
        const result = await query(`${selector}[1m]`);
        const grew = result.filter((s) => {
          const v = (s.values ?? []).map(([, x]) => Number(x));
          return v.length >= 2 && v[v.length - 1]! > v[0]!;
        });
        return grew.length > 0 ? grew : undefined;
      },
      `${selector} to move in Prometheus${prom?.exitCode != null ? `; prometheus exited: ${promOut}` : ""}`,
      30_000,
    );
  }

  beforeAll(async () => {
    if (!fs.existsSync(PROMETHEUS))
      throw new Error(
        `${PROMETHEUS} is missing: bash scripts/infra/install-system-deps.sh prometheus`,
      );
    const metricsPort = await freePort();
    node = await startTestNode({
      METRICS: "true",
      METRICS_PORT: String(metricsPort),
      FEED_RATE: "2000",
      FEED_MALFORMED_RATIO: "0.05",
    });

    dir = fs.mkdtempSync(path.join(os.tmpdir(), "tickstream-prom-"));
    const config = path.join(dir, "prometheus.yml");
    fs.writeFileSync(
      config,
      [
        "global:",
        "  scrape_interval: 1s",
        "  evaluation_interval: 1s",
        "scrape_configs:",
        "  - job_name: tickstream",
        "    static_configs:",
        `      - targets: ["127.0.0.1:${metricsPort}"]`,
        "",
      ].join("\n"),
    );
    const promPort = await freePort();
    promUrl = `http://127.0.0.1:${promPort}`;
    const args = [
      `--config.file=${config}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      `--storage.tsdb.path=${path.join(dir, "data")}`,
    ];
    // setpriv: the kernel kills Prometheus if Jest dies before afterAll runs.
    const setpriv = fs.existsSync("/usr/bin/setpriv");
    const child = setpriv
      ? spawn("/usr/bin/setpriv", ["--pdeathsig", "SIGKILL", "--", PROMETHEUS, ...args], {
          stdio: ["ignore", "pipe", "pipe"],
        })
      : spawn(PROMETHEUS, args, { stdio: ["ignore", "pipe", "pipe"] });
    prom = child;
    promExited = new Promise((resolve) => child.once("exit", () => resolve()));
    const keep = (d: Buffer) => {
      promOut = (promOut + d.toString()).slice(-4000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);

    await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited: ${promOut}`);
        return (await fetch(`${promUrl}/-/ready`)).status === 200 ? true : undefined;
      },
      "prometheus to be ready",
      30_000,
    );
  });

  afterAll(async () => {
    if (prom && prom.exitCode === null && prom.signalCode === null) prom.kill("SIGTERM");
    await promExited;
    await node?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("scrapes the node's target as up", async () => {
    const up = await eventually(async () => {
      const r = await query('up{job="tickstream"}');
      return r.length === 1 && r[0]!.value![1] === "1" ? r : undefined;
    }, "the tickstream target to be up");
    expect(up[0]!.metric.instance).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it("shows received and applied counters growing", async () => {
    const received = await moving("tickstream_messages_received");
    expect(received.map((s) => s.metric.source)).toEqual(["synthetic"]);
    await moving("tickstream_trades_applied");
  });

  it("shows rejects by reason growing", async () => {
    const rejected = await moving("tickstream_messages_rejected");
    for (const s of rejected) expect(s.metric.reason).toMatch(/^[A-Z_]+$/);
    // With 5% malformed messages several reasons appear; each is its own series.
    const reasons = new Set(
      (await query("tickstream_messages_rejected")).map((s) => s.metric.reason),
    );
    expect(reasons.size).toBeGreaterThan(1);
  });

  it("shows the end-to-end latency histogram and its quantiles", async () => {
    await moving("tickstream_e2e_latency_count");
    await moving('tickstream_e2e_latency_bucket{le="+Inf"}');
    const quantiles = await eventually(async () => {
      const r = await query("tickstream_e2e_latency");
      return r.length === 3 ? r : undefined;
    }, "three latency quantile series");
    expect(quantiles.map((s) => s.metric.quantile).sort()).toEqual(["0.5", "0.95", "0.99"]);
    for (const s of quantiles) expect(Number.isFinite(Number(s.value![1]))).toBe(true);
    // PromQL over the buckets (what the Grafana dashboard plots) gives a number too.
    const p99 = await eventually(async () => {
      const r = await query(
        "histogram_quantile(0.99, sum(rate(tickstream_e2e_latency_bucket[5s])) by (le))",
      );
      const v = Number(r[0]?.value?.[1]);
      return Number.isFinite(v) ? v : undefined;
    }, "a bucket-derived p99");
    expect(p99).toBeGreaterThanOrEqual(0);
  });
});
