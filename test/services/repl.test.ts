/** The REPL's custom commands against a running node (their output is what an operator reads). */
import type { StartedNode } from "../../app/start";
import { REPL_COMMANDS, type Rows } from "../../src/repl/commands";
import { eventually, getJson, startTestNode } from "../support/node";

describe("REPL commands", () => {
  let node: StartedNode & { url: string };
  beforeAll(async () => {
    node = await startTestNode({
      FEED_RATE: "3000",
      FEED_SYMBOLS: "3",
      FEED_JUMP_PROBABILITY: "0.02",
    });
    await eventually(
      async () =>
        ((await getJson(`${node.url}/api/anomalies`)).body as { anomalies: unknown[] }).anomalies
          .length > 0 || undefined,
      "an anomaly",
    );
  });
  afterAll(() => node?.stop());

  async function run(name: string, args: Record<string, unknown>): Promise<Rows> {
    const cmd = REPL_COMMANDS.find((c) => c.command.split(" ")[0] === name);
    if (!cmd) throw new Error(`no command ${name}`);
    let printed: Rows = [];
    const log = jest.spyOn(console, "log").mockImplementation(() => undefined);
    const error = jest.spyOn(console, "error").mockImplementation((m: string) => {
      throw new Error(m);
    });
    try {
      await cmd.action(
        node.broker,
        { options: {}, ...args },
        { table: (rows: Rows) => ((printed = rows), "") },
      );
    } finally {
      log.mockRestore();
      error.mockRestore();
    }
    return printed;
  }

  it("lists symbols, bars, anomalies and stats as tables", async () => {
    const symbols = await run("symbols", {});
    expect(symbols[0]).toEqual(["Symbol", "Trades", "Last price", "Last trade (UTC)"]);
    expect(symbols.slice(1).map((r) => r[0])).toEqual(["AAPL", "MSFT", "NVDA"]);

    const bars = await run("bars", { symbol: "AAPL", interval: "1m", options: { limit: "2" } });
    expect(bars[0]?.[0]).toBe("Start (UTC)");
    expect(bars.length).toBeGreaterThanOrEqual(2);
    expect(bars.length).toBeLessThanOrEqual(3);

    const rolled = await run("bars", {
      symbol: "AAPL",
      interval: "15m",
      options: { limit: "1", tz: "America/New_York", fill: "prev" },
    });
    expect(rolled).toHaveLength(2);
    expect(rolled[1]?.[8]).toBe("forming");

    const anomalies = await run("anomalies", {});
    expect(anomalies.length).toBeGreaterThan(1);

    const stats = await run("stats", {});
    expect(stats[1]?.[0]).toBe(node.broker.nodeID);

    const owner = await run("owner", { symbol: "AAPL" });
    expect(owner.slice(1).map((r) => [r[0], r[1], r[2]])).toEqual([
      ["aggregator", node.broker.nodeID, "yes"],
      ["anomaly", node.broker.nodeID, "yes"],
    ]);
    expect((await run("handoffs", {}))[0]?.[0]).toBe("Time (UTC)");
  });

  it("prints the problem for a bad argument instead of failing the REPL", async () => {
    await expect(run("bars", { symbol: "AAPL", interval: "30s" })).rejects.toThrow(/interval/);
    await expect(
      run("bars", { symbol: "AAPL", interval: "1d", options: { tz: "Mars/Olympus" } }),
    ).rejects.toThrow(/tz/);
  });
});
