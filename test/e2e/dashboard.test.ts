/**
 * The dashboard in a real browser: Debian's chromium driven by playwright-core, against a node
 * fed by the synthetic market. One symbol the feed does not trade gets 40 minutes of history and
 * then single trades from this test, so what the page must show is known exactly: its candles,
 * the forming candle after a new trade (within a second), and the anomaly a price jump causes.
 * A screenshot goes to test-output/dashboard.png.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { Pipeline } from "../../services/ingest/pipeline";
import { packRecords } from "../../services/ingest/sources/source";
import { mulberry32 } from "../../src/feed/synthetic";
import { encodeFix, fixTimestamp } from "../../src/fix/encode";
import type { StartedNode } from "../../app/start";
import { eventually, getJson, startTestNode } from "../support/node";

const ROOT = path.join(__dirname, "..", "..");
const OUT = path.join(ROOT, "test-output");
const CHROMIUM = "/usr/bin/chromium";
const SYMBOL = "TSLA"; // not among the feed's first four symbols: only this test trades it
const HISTORY_MINUTES = 40;

interface Candle {
  startMs: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  trades: number;
  closed: boolean;
}

interface Hook {
  ready(): boolean;
  symbol(): string | null;
  interval(): string;
  zone(): string;
  candles(): number;
  lastCandle(): Candle | null;
  anomalies(): number;
  streamedAnomalies(): number;
  markers(): number;
  streamState(): string;
}

// What the functions passed to page.evaluate see in the browser (this program has no DOM lib).
declare const window: { __tickstream?: Hook };
declare const document: { getElementById(id: string): { textContent: string | null } | null };

/** Writes trades of SYMBOL as FIX ExecutionReports and applies them through the real pipeline. */
class Trader {
  private seq = 0;
  private readonly pipeline: Pipeline;

  constructor(node: StartedNode) {
    this.pipeline = new Pipeline(node.broker, "e2e");
  }

  async trade(trades: { price: number; qty: number; timeMs: number }[]): Promise<void> {
    const records = trades.map((t) => {
      this.seq += 1;
      return encodeFix("FIX.4.4", "8", [
        [34, String(this.seq)],
        [49, "E2E"],
        [52, fixTimestamp(t.timeMs)],
        [56, "TICKSTREAM"],
        [6, "0"],
        [11, `E2E-C${this.seq}`],
        [14, "0"],
        [17, `E2E-${this.seq}`],
        [31, t.price.toFixed(2)],
        [32, String(t.qty)],
        [37, `E2E-O${this.seq}`],
        [39, "2"],
        [54, "1"],
        [55, SYMBOL],
        [60, fixTimestamp(t.timeMs)],
        [150, "F"],
        [151, "0"],
      ]);
    });
    const first = this.seq - records.length + 1;
    const delivery = await this.pipeline.deliver(
      packRecords(
        "e2e",
        records,
        records.map((_, i) => first + i),
        records.map(() => Date.now()),
      ),
    );
    expect(delivery?.rejects).toEqual([]);
  }
}

/** A random walk of SYMBOL over the last HISTORY_MINUTES minutes, with two jumps to mark. */
function history(nowMs: number): { price: number; qty: number; timeMs: number }[] {
  const rand = mulberry32(7);
  const start = Math.floor(nowMs / 60_000) * 60_000 - HISTORY_MINUTES * 60_000;
  const trades = [];
  let price = 242.5;
  for (let minute = 0; minute < HISTORY_MINUTES; minute++) {
    const n = 8 + Math.floor(rand() * 10);
    const drift = (rand() - 0.5) * 0.004;
    for (let i = 0; i < n; i++) {
      const timeMs = start + minute * 60_000 + Math.floor(((i + rand()) / n) * 59_000);
      if (timeMs >= nowMs - 1000) break;
      let r = drift / n + (rand() - 0.5) * 0.0025;
      if ((minute === 14 || minute === 29) && i === 3) r += minute === 14 ? 0.045 : -0.04;
      price = Math.round(price * Math.exp(r) * 100) / 100;
      trades.push({ price, qty: 100 * (1 + Math.floor(rand() * 20)), timeMs });
    }
  }
  return trades;
}

async function formingBar(node: StartedNode & { url: string }): Promise<Candle> {
  const { body } = await getJson(`${node.url}/api/bars/${SYMBOL}?interval=1m&limit=1`);
  const bar = (body as { bars: Candle[] }).bars[0];
  if (!bar) throw new Error("no bar");
  return bar;
}

const hook = (page: Page) => page.evaluate(() => window.__tickstream?.lastCandle() ?? null);

describe("dashboard in a real browser", () => {
  let node: StartedNode & { url: string };
  let trader: Trader;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    expect(existsSync(CHROMIUM)).toBe(true); // scripts/infra/install-system-deps.sh chromium (CI does it)
    const build = spawnSync(process.execPath, [path.join(ROOT, "dashboard", "build.mjs")], {
      encoding: "utf8",
    });
    expect({ status: build.status, stderr: build.stderr }).toEqual({ status: 0, stderr: "" });
    mkdirSync(OUT, { recursive: true });

    node = await startTestNode({
      FEED_RATE: "400",
      FEED_SYMBOLS: "4",
      FEED_JUMP_PROBABILITY: "0.003",
      STREAM_KEEPALIVE_MS: "1000",
    });
    trader = new Trader(node);
    await trader.trade(history(Date.now()));
    await eventually(async () => {
      const { body } = await getJson(`${node.url}/api/anomalies?symbol=${SYMBOL}`);
      return (body as { anomalies: unknown[] }).anomalies.length >= 2 ? true : undefined;
    }, "the history's two jumps to be found");

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // playwright-core gives every launch a fresh temporary --user-data-dir of its own.
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    page = await browser.newPage({ viewport: { width: 1440, height: 860 } });
    page.on("pageerror", (err) => pageErrors.push(err.message));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await node?.stop();
  });

  it("loads, picks the first symbol, and shows the pipeline's health", async () => {
    const res = await page.goto(node.url);
    expect(res?.status()).toBe(200);
    await page.waitForFunction(() => window.__tickstream?.ready() === true);
    expect(await page.evaluate(() => window.__tickstream?.symbol())).toBe("AAPL");
    await page.waitForFunction(() => window.__tickstream?.streamState() === "live");
    // Rates need two samples of /api/stats.
    await page.waitForFunction(() =>
      /\d/.test(document.getElementById("h-msgs")?.textContent ?? ""),
    );
    expect(await page.textContent("#h-nodes")).toBe("1 (1 live)");
    expect(Number(await page.textContent("#h-msgs"))).toBeGreaterThan(0);
    expect(await page.textContent("#h-lag")).toMatch(/^\d+(\.\d+)? s$/);
    // One node holds every symbol: "symbols by node" names it with a count.
    const nodeID = node.broker.nodeID.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    expect(await page.textContent("#h-owners")).toMatch(new RegExp(`^${nodeID} \\d+$`));
  });

  it("finds a symbol by search and draws its candles and anomaly markers", async () => {
    await page.fill("#search", "tsl");
    expect(await page.locator("#symbol-list li").allTextContents()).toEqual([
      expect.stringContaining(SYMBOL),
    ]);
    await page.click(`#symbol-list li[data-symbol="${SYMBOL}"]`);
    await page.waitForFunction(
      (s) => window.__tickstream?.symbol() === s && window.__tickstream.ready(),
      SYMBOL,
    );
    expect(new URL(page.url()).searchParams.get("symbol")).toBe(SYMBOL);
    const { body } = await getJson(`${node.url}/api/bars/${SYMBOL}?interval=1m&limit=500`);
    const bars = (body as { bars: Candle[] }).bars;
    expect(bars.length).toBeGreaterThanOrEqual(HISTORY_MINUTES);
    expect(await page.evaluate(() => window.__tickstream?.candles())).toBe(bars.length);
    expect(await page.evaluate(() => window.__tickstream?.markers())).toBeGreaterThanOrEqual(2);
    expect(await page.locator("#chart canvas").count()).toBeGreaterThan(0);
  });

  it("switches the interval", async () => {
    await page.click('#intervals button[data-interval="5m"]');
    await page.waitForFunction(
      () => window.__tickstream?.interval() === "5m" && window.__tickstream.ready(),
    );
    const fiveMinute = await page.evaluate(() => window.__tickstream?.candles() ?? 0);
    expect(fiveMinute).toBeGreaterThanOrEqual(HISTORY_MINUTES / 5);
    expect(fiveMinute).toBeLessThanOrEqual(HISTORY_MINUTES / 5 + 2);
    await page.click('#intervals button[data-interval="1m"]');
    await page.waitForFunction(
      () => window.__tickstream?.interval() === "1m" && window.__tickstream.ready(),
    );
    expect(await page.evaluate(() => window.__tickstream?.candles())).toBeGreaterThanOrEqual(
      HISTORY_MINUTES,
    );
  });

  it("rolls 15m and 1d bars up in a chosen time zone", async () => {
    await page.selectOption("#tz", "America/New_York");
    for (const interval of ["15m", "1d"]) {
      await page.click(`#intervals button[data-interval="${interval}"]`);
      await page.waitForFunction(
        (i) =>
          window.__tickstream?.interval() === i &&
          window.__tickstream.zone() === "America/New_York" &&
          window.__tickstream.ready(),
        interval,
      );
      const { body } = await getJson(
        `${node.url}/api/bars/${SYMBOL}?interval=${interval}&tz=America/New_York&limit=500`,
      );
      const drawn = (body as { bars: Candle[] }).bars.filter((b) => b.close !== null).length;
      expect(drawn).toBeGreaterThan(0);
      expect(await page.evaluate(() => window.__tickstream?.candles())).toBe(drawn);
      expect(new URL(page.url()).searchParams.get("tz")).toBe("America/New_York");
    }
    // The 1d bar follows a new trade: its 1h updates make the page fetch the rolled bar again.
    const price = Math.round((await formingBar(node)).close * 0.998 * 100) / 100;
    await trader.trade([{ price, qty: 333, timeMs: Date.now() }]);
    const { body } = await getJson(
      `${node.url}/api/bars/${SYMBOL}?interval=1d&tz=America/New_York&limit=1`,
    );
    const day = (body as { bars: Candle[] }).bars[0]!;
    expect(day.close).toBe(price);
    await page.waitForFunction(
      (e) => {
        const c = window.__tickstream?.lastCandle();
        return c?.startMs === e.startMs && c.close === e.close && c.trades >= e.trades;
      },
      day,
      { timeout: 3000, polling: 20 },
    );
    await page.selectOption("#tz", "UTC");
    await page.click('#intervals button[data-interval="1m"]');
    await page.waitForFunction(
      () =>
        window.__tickstream?.interval() === "1m" &&
        window.__tickstream.zone() === "UTC" &&
        window.__tickstream.ready(),
    );
  });

  it("moves the forming candle within a second of a new trade", async () => {
    const before = await formingBar(node);
    const price = Math.round(before.close * 1.002 * 100) / 100;
    const started = Date.now();
    await trader.trade([{ price, qty: 777, timeMs: Date.now() }]);
    const expected = await formingBar(node);
    expect(expected.close).toBe(price);
    await page.waitForFunction(
      (e) => {
        const c = window.__tickstream?.lastCandle();
        return (
          c?.startMs === e.startMs &&
          c.close === e.close &&
          c.volume === e.volume &&
          c.trades === e.trades
        );
      },
      expected,
      { timeout: 5000, polling: 10 },
    );
    const elapsed = Date.now() - started;
    expect(elapsed).toBeLessThan(1000);
    expect(await hook(page)).toMatchObject({ close: price, volume: expected.volume });
    expect(await page.textContent("#chart-ohlc")).toContain(`C ${price.toFixed(2)}`);
  });

  it("lists the anomaly of a price jump as it is found, and marks it on the chart", async () => {
    const markers = await page.evaluate(() => window.__tickstream?.markers() ?? 0);
    const streamed = await page.evaluate(() => window.__tickstream?.streamedAnomalies() ?? 0);
    const last = await formingBar(node);
    const price = Math.round(last.close * 1.06 * 100) / 100;
    await trader.trade([{ price, qty: 500, timeMs: Date.now() }]);
    const item = page.locator(`#anomaly-list li[data-symbol="${SYMBOL}"]`, {
      hasText: price.toFixed(2),
    });
    await item.waitFor({ timeout: 10_000 });
    expect(await item.textContent()).toContain("+6.00%");
    expect(await page.evaluate(() => window.__tickstream?.streamedAnomalies())).toBeGreaterThan(
      streamed,
    );
    expect(await page.evaluate(() => window.__tickstream?.markers())).toBe(markers + 1);
  });

  it("saves a screenshot and raised no page errors", async () => {
    // A few ordinary trades after the jump, so the forming candle looks like a market.
    const last = await formingBar(node);
    let price = last.close;
    const trades = [];
    for (let i = 0; i < 6; i++) {
      price = Math.round(price * (i % 2 === 0 ? 0.996 : 1.001) * 100) / 100;
      trades.push({ price, qty: 300 + 100 * i, timeMs: Date.now() });
    }
    await trader.trade(trades);
    await page.fill("#search", "");
    await page.waitForFunction((p) => window.__tickstream?.lastCandle()?.close === p, price);
    await page.screenshot({ path: path.join(OUT, "dashboard.png") });
    expect(existsSync(path.join(OUT, "dashboard.png"))).toBe(true);
    expect(pageErrors).toEqual([]);
  });
});
