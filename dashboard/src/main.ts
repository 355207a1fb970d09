/**
 * The Tickstream dashboard: pick a symbol and an interval, see its candles and volume move live,
 * the anomalies of every symbol as they are found, and the pipeline's health.
 *
 * On each (re)connection of the stream the history is loaded over REST; stream events that
 * arrive meanwhile are held and applied after it, so no update falls between the two.
 *
 * Intervals the stream does not carry (15m, 4h, 1d, and 1h outside UTC) are rolled up by the
 * server: the dashboard listens to the live interval they are made of, and each of its updates
 * makes it fetch the newest rolled bars again (at most once per REFRESH_MS).
 */
import { BarChart } from "./chart";
import { HealthMeter } from "./health";
import { EventStream, type SseMessage, type StreamState } from "./sse";
import {
  INTERVAL_MS,
  INTERVALS,
  STREAMED,
  ZONES,
  type Anomaly,
  type Bar,
  type Hello,
  type Interval,
  type NodeStats,
  type StreamBar,
  type SymbolSummary,
} from "./types";

const ANOMALIES_SHOWN = 100;
const SYMBOLS_SHOWN = 500;
const POLL_MS = 2000;
const KEY_STORAGE = "tickstream.apiKey";
const REFRESH_MS = 1000;

const knownZone = (name: string | null): string | null => {
  if (name === null || name === "") return null;
  try {
    const zone = new Intl.DateTimeFormat("en-US", { timeZone: name }).resolvedOptions().timeZone;
    // Keep a link's own name (ICU answers the legacy Asia/Calcutta for Asia/Kolkata).
    return zone.toLowerCase() === name.toLowerCase() ? zone : name;
  } catch {
    return null;
  }
};

/** What the browser test reads. */
interface TestHook {
  ready(): boolean;
  symbol(): string | null;
  interval(): Interval;
  zone(): string;
  candles(): number;
  lastCandle(): Bar | null;
  anomalies(): number;
  streamedAnomalies(): number;
  markers(): number;
  streamState(): StreamState;
}

declare global {
  interface Window {
    __tickstream?: TestHook;
  }
}

function el<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} missing from index.html`);
  return found as T;
}

function make<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text = "",
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  node.textContent = text;
  return node;
}

const fmtPrice = (p: number | null) =>
  p === null
    ? "—"
    : p.toLocaleString("en-US", {
        minimumFractionDigits: 2,
        maximumFractionDigits: Math.abs(p) < 10 ? 4 : 2,
      });

const fmtCompact = (n: number) =>
  n.toLocaleString("en-US", { notation: "compact", maximumFractionDigits: 1 });

const fmtRate = (n: number | null) => (n === null ? "—" : fmtCompact(Math.round(n)));

const fmtTime = (ms: number) => new Date(ms).toISOString().slice(11, 19);

const anomalyKey = (a: Anomaly) => `${a.symbol}|${a.timeMs}|${a.detector}|${a.price}`;

class Unauthorized extends Error {}

class Dashboard {
  private readonly chart = new BarChart(el("chart"));
  private readonly meter = new HealthMeter();
  private apiKey = sessionStorage.getItem(KEY_STORAGE);
  private symbols: SymbolSummary[] = [];
  private symbol: string | null = null;
  private interval: Interval = "1m";
  private zone = "UTC";
  /** A pending fetch of the newest rolled bars (rolled intervals only). */
  private refresh: ReturnType<typeof setTimeout> | null = null;
  private anomalies: Anomaly[] = [];
  private symbolAnomalies: Anomaly[] = [];
  private stream: EventStream | null = null;
  private streamState: StreamState = "connecting";
  /** Events that arrived while the history was loading. */
  private held: SseMessage[] = [];
  private loaded = false;
  /** Bumped on every (re)selection and reconnection; stale loads check it and give up. */
  private generation = 0;
  private clockOffsetMs = 0;
  private streamedAnomalies = 0;
  private lastBar: Bar | null = null;

  start(): void {
    const params = new URLSearchParams(location.search);
    const interval = INTERVALS.find((i) => i === params.get("interval"));
    if (interval) this.interval = interval;
    this.zone = knownZone(params.get("tz")) ?? "UTC";
    this.symbol = params.get("symbol");
    this.bindControls();
    window.__tickstream = {
      ready: () => this.loaded,
      symbol: () => this.symbol,
      interval: () => this.interval,
      zone: () => this.zone,
      candles: () => this.chart.candleCount,
      lastCandle: () => this.lastBar,
      anomalies: () => this.anomalies.length,
      streamedAnomalies: () => this.streamedAnomalies,
      markers: () => this.chart.markersShown,
      streamState: () => this.streamState,
    };
    void this.poll();
    if (this.symbol) this.select(this.symbol, this.interval);
  }

  private async get<T>(path: string): Promise<T> {
    const res = await fetch(path, { headers: this.headers(), cache: "no-store" });
    if (res.status === 401) throw new Unauthorized(path);
    if (!res.ok) throw new Error(`${path} answered ${res.status}`);
    return (await res.json()) as T;
  }

  private headers(): Record<string, string> {
    return this.apiKey ? { "X-API-Key": this.apiKey } : {};
  }

  private bindControls(): void {
    const search = el<HTMLInputElement>("search");
    search.addEventListener("input", () => this.renderSymbols());
    search.addEventListener("keydown", (e) => {
      if (e.key !== "Enter") return;
      const first = this.filteredSymbols()[0];
      if (first) this.select(first.symbol, this.interval);
    });
    for (const button of el("intervals").querySelectorAll<HTMLButtonElement>("button")) {
      button.addEventListener("click", () => {
        const interval = INTERVALS.find((i) => i === button.dataset.interval);
        if (interval && this.symbol) this.select(this.symbol, interval);
      });
    }
    const zones = el<HTMLSelectElement>("tz");
    const own = knownZone(Intl.DateTimeFormat().resolvedOptions().timeZone);
    const names = [...new Set<string>([...ZONES, ...(own ? [own] : []), this.zone])];
    zones.replaceChildren(
      ...names.map((z) => {
        const option = make("option", "", z === own && z !== "UTC" ? `${z} (yours)` : z);
        option.value = z;
        return option;
      }),
    );
    zones.value = this.zone;
    zones.addEventListener("change", () => {
      this.zone = zones.value;
      if (this.symbol) this.select(this.symbol, this.interval);
    });
    el<HTMLFormElement>("key-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.apiKey = el<HTMLInputElement>("key").value.trim() || null;
      if (this.apiKey) sessionStorage.setItem(KEY_STORAGE, this.apiKey);
      el("key-form").hidden = true;
      if (this.symbol) this.select(this.symbol, this.interval);
    });
    this.renderInterval();
  }

  /** Shows a symbol at an interval: a new stream, then its history once the stream is up. */
  select(symbol: string, interval: Interval): void {
    this.symbol = symbol;
    this.interval = interval;
    this.generation += 1;
    this.loaded = false;
    this.held = [];
    this.lastBar = null;
    this.symbolAnomalies = [];
    if (this.refresh !== null) clearTimeout(this.refresh);
    this.refresh = null;
    this.chart.setZone(this.zone);
    this.chart.setBars([]);
    this.chart.setAnomalies([], interval);
    const url = new URL(location.href);
    url.searchParams.set("symbol", symbol);
    url.searchParams.set("interval", interval);
    if (this.zone === "UTC") url.searchParams.delete("tz");
    else url.searchParams.set("tz", this.zone);
    history.replaceState(null, "", url);
    el("chart-symbol").textContent = symbol;
    el("chart-interval").textContent = interval;
    el("chart-tz").textContent = this.zone;
    this.renderOhlc();
    this.renderInterval();
    this.renderSymbols();
    this.stream?.close();
    const query = new URLSearchParams({
      symbols: symbol,
      intervals: STREAMED[interval],
      anomalies: "all",
    });
    this.stream = new EventStream({
      url: `/api/stream?${query.toString()}`,
      headers: () => this.headers(),
      onMessage: (m) => this.onMessage(m),
      onState: (s) => this.setStreamState(s),
    });
  }

  private onMessage(message: SseMessage): void {
    if (message.event === "hello") {
      const hello = JSON.parse(message.data) as Hello;
      this.clockOffsetMs = hello.serverTimeMs - Date.now();
      el("h-gateway").textContent = hello.nodeID;
      void this.load();
      return;
    }
    if (!this.loaded) {
      this.held.push(message);
      return;
    }
    this.apply(message, true);
  }

  private apply(message: SseMessage, live: boolean): void {
    if (message.event === "bar" || message.event === "closed") {
      const { symbol, interval, bar } = JSON.parse(message.data) as StreamBar;
      if (symbol !== this.symbol || interval !== STREAMED[this.interval]) return;
      if (this.rolled()) return this.refreshRolled();
      this.chart.update(bar);
      if (!this.lastBar || bar.startMs >= this.lastBar.startMs) {
        this.lastBar = bar;
        this.renderLastPrice(symbol, bar.close);
      }
      this.renderOhlc();
    } else if (message.event === "anomaly") {
      const a = JSON.parse(message.data) as Anomaly;
      if (live) this.streamedAnomalies += 1;
      this.addAnomalies([a], true);
    }
  }

  /** Loads the selected symbol's history and the recent anomalies, then the held events. */
  private async load(): Promise<void> {
    const gen = ++this.generation;
    const symbol = this.symbol;
    if (symbol === null) return;
    this.loaded = false;
    try {
      const enc = encodeURIComponent(symbol);
      const [bars, mine, all] = await Promise.all([
        this.get<{ bars: Bar[] }>(`/api/bars/${enc}?${this.barsQuery(500)}`),
        this.get<{ anomalies: Anomaly[] }>(`/api/anomalies?symbol=${enc}&limit=500`),
        this.get<{ anomalies: Anomaly[] }>(`/api/anomalies?limit=${ANOMALIES_SHOWN}`),
      ]);
      if (gen !== this.generation) return;
      this.chart.setBars(bars.bars);
      this.lastBar = bars.bars.at(-1) ?? null;
      this.symbolAnomalies = mine.anomalies;
      this.chart.setAnomalies(this.symbolAnomalies, this.interval);
      this.addAnomalies(all.anomalies, false);
    } catch (err: unknown) {
      if (gen !== this.generation) return;
      if (err instanceof Unauthorized) return this.setStreamState("unauthorized");
      // 404: the symbol has not traded yet; its bars will come with the stream.
      this.chart.setBars([]);
    }
    this.loaded = true;
    const held = this.held;
    this.held = [];
    for (const m of held) this.apply(m, true);
    this.renderOhlc();
  }

  /** Whether the server rolls the shown interval up (the stream carries a finer one). */
  private rolled(): boolean {
    return (
      STREAMED[this.interval] !== this.interval ||
      (this.zone !== "UTC" && INTERVAL_MS[this.interval] >= 3_600_000)
    );
  }

  private barsQuery(limit: number): string {
    const query = new URLSearchParams({ interval: this.interval, limit: String(limit) });
    if (this.zone !== "UTC") query.set("tz", this.zone);
    return query.toString();
  }

  /** Fetches the newest rolled bars once REFRESH_MS after the first change that asks for it. */
  private refreshRolled(): void {
    if (this.refresh !== null || this.symbol === null) return;
    const gen = this.generation;
    const path = `/api/bars/${encodeURIComponent(this.symbol)}?${this.barsQuery(2)}`;
    this.refresh = setTimeout(() => {
      this.refresh = null;
      this.get<{ bars: Bar[] }>(path)
        .then(({ bars }) => {
          if (gen !== this.generation) return;
          for (const b of bars) this.chart.update(b);
          const last = bars.at(-1);
          if (last && (!this.lastBar || last.startMs >= this.lastBar.startMs)) {
            this.lastBar = last;
            if (this.symbol) this.renderLastPrice(this.symbol, last.close);
          }
          this.renderOhlc();
        })
        .catch(() => undefined); // the next update asks again
    }, REFRESH_MS);
  }

  private addAnomalies(list: readonly Anomaly[], fresh: boolean): void {
    const known = new Set(this.anomalies.map(anomalyKey));
    const added = list.filter((a) => !known.has(anomalyKey(a)));
    if (added.length === 0) return;
    this.anomalies = [...added, ...this.anomalies]
      .sort((a, b) => b.timeMs - a.timeMs)
      .slice(0, ANOMALIES_SHOWN);
    const mineAdded = fresh ? added.filter((a) => a.symbol === this.symbol) : [];
    if (mineAdded.length > 0) {
      this.symbolAnomalies = [...this.symbolAnomalies, ...mineAdded];
      this.chart.setAnomalies(this.symbolAnomalies, this.interval);
    }
    this.renderAnomalies(fresh ? new Set(added.map(anomalyKey)) : new Set());
  }

  private setStreamState(state: StreamState): void {
    this.streamState = state;
    const status = el("status");
    status.dataset.state = state;
    el("status-text").textContent = state === "unauthorized" ? "API key needed" : state;
    el("key-form").hidden = state !== "unauthorized";
  }

  /** Health and the symbol list, every POLL_MS, one round at a time. */
  private async poll(): Promise<void> {
    try {
      const [stats, symbols] = await Promise.all([
        this.get<{ nodes: NodeStats[] }>("/api/stats"),
        this.get<{ symbols: SymbolSummary[] }>("/api/symbols"),
      ]);
      this.renderHealth(stats.nodes, symbols.symbols);
      this.symbols = symbols.symbols;
      this.renderSymbols();
      const first = this.symbols[0];
      if (this.symbol === null && first) this.select(first.symbol, this.interval);
    } catch (err: unknown) {
      if (err instanceof Unauthorized) this.setStreamState("unauthorized");
    }
    setTimeout(() => void this.poll(), POLL_MS);
  }

  private renderHealth(nodes: NodeStats[], symbols: SymbolSummary[]): void {
    const h = this.meter.add(nodes, Date.now());
    el("h-msgs").textContent = fmtRate(h.messagesPerSec);
    el("h-trades").textContent = fmtRate(h.tradesPerSec);
    const rejects = el("h-rejects");
    rejects.textContent = `${fmtCompact(h.rejected)}${h.rejectsPerSec === null ? "" : ` · ${h.rejectsPerSec.toFixed(1)}/s`}`;
    rejects.classList.toggle("warn", (h.rejectsPerSec ?? 0) > 0);
    el("h-nodes").textContent = `${h.nodes} (${h.liveSources} live)`;
    // Which node holds how many symbols: moves show here when a node joins, leaves or dies.
    const owners = new Map<string, number>();
    for (const s of symbols) owners.set(s.node, (owners.get(s.node) ?? 0) + 1);
    el("h-owners").textContent =
      owners.size === 0
        ? "—"
        : [...owners]
            .sort(([a], [b]) => (a < b ? -1 : 1))
            .map(([node, n]) => `${node} ${n}`)
            .join(" · ");
    // Lag: how old the newest applied trade is, on the server's clock.
    let newest = -Infinity;
    for (const s of symbols)
      if (s.lastTradeTime !== null) newest = Math.max(newest, Date.parse(s.lastTradeTime));
    const lag = el("h-lag");
    if (Number.isFinite(newest)) {
      const ms = Math.max(0, Date.now() + this.clockOffsetMs - newest);
      lag.textContent = ms < 10_000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms / 1000)} s`;
      lag.classList.toggle("bad", ms > 10_000);
    } else lag.textContent = "—";
  }

  private filteredSymbols(): SymbolSummary[] {
    const q = el<HTMLInputElement>("search").value.trim().toUpperCase();
    return q === "" ? this.symbols : this.symbols.filter((s) => s.symbol.toUpperCase().includes(q));
  }

  private renderSymbols(): void {
    const list = el("symbol-list");
    const shown = this.filteredSymbols();
    el("symbol-count").textContent = String(this.symbols.length);
    const items = shown.slice(0, SYMBOLS_SHOWN).map((s) => {
      const li = make("li", "");
      li.dataset.symbol = s.symbol;
      li.setAttribute("aria-selected", String(s.symbol === this.symbol));
      li.append(make("span", "sym", s.symbol), make("span", "px", fmtPrice(s.lastPrice)));
      li.addEventListener("click", () => this.select(s.symbol, this.interval));
      return li;
    });
    if (items.length === 0)
      items.push(make("li", "empty", this.symbols.length ? "No match" : "Waiting for trades…"));
    list.replaceChildren(...items);
  }

  /** The selected symbol's price in the list follows the stream between two polls. */
  private renderLastPrice(symbol: string, price: number | null): void {
    if (price === null) return;
    const row = this.symbols.find((s) => s.symbol === symbol);
    if (row) row.lastPrice = price;
    const px = el("symbol-list").querySelector(`li[data-symbol="${CSS.escape(symbol)}"] .px`);
    if (px) px.textContent = fmtPrice(price);
  }

  private renderAnomalies(fresh: ReadonlySet<string>): void {
    el("anomaly-count").textContent = String(this.anomalies.length);
    const items = this.anomalies.map((a) => {
      const li = make(
        "li",
        [fresh.has(anomalyKey(a)) ? "new" : "", a.cancelled ? "cancelled" : ""].join(" ").trim(),
      );
      if (a.cancelled) li.title = "The trade that raised it was cancelled";
      li.dataset.symbol = a.symbol;
      const pct = (Math.exp(a.ret) - 1) * 100;
      li.append(
        make("span", "t", fmtTime(a.timeMs)),
        make("span", "s", a.symbol),
        make("span", `r ${pct >= 0 ? "up" : "down"}`, `${pct >= 0 ? "+" : ""}${pct.toFixed(2)}%`),
        make(
          "span",
          "d",
          `${fmtPrice(a.prevPrice)} → ${fmtPrice(a.price)} · z ${a.zscore.toFixed(1)} · ${a.detector}`,
        ),
      );
      li.addEventListener("click", () => this.select(a.symbol, this.interval));
      return li;
    });
    el("anomaly-list").replaceChildren(...items);
  }

  private renderInterval(): void {
    for (const b of el("intervals").querySelectorAll<HTMLButtonElement>("button"))
      b.setAttribute("aria-pressed", String(b.dataset.interval === this.interval));
  }

  private renderOhlc(): void {
    const b = this.lastBar;
    const box = el("chart-ohlc");
    if (!b || b.close === null) {
      box.replaceChildren();
      return;
    }
    const parts: [string, string][] = [
      ["O", fmtPrice(b.open)],
      ["H", fmtPrice(b.high)],
      ["L", fmtPrice(b.low)],
      ["C", fmtPrice(b.close)],
      ["Vol", fmtCompact(b.volume)],
      ["Trades", String(b.trades)],
    ];
    box.replaceChildren(
      ...parts.flatMap(([k, v]) => [document.createTextNode(`${k} `), make("b", "", v)]),
    );
  }
}

new Dashboard().start();
