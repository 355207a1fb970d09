/**
 * The candlestick chart with volume beneath and anomaly markers (TradingView lightweight-charts,
 * Apache-2.0, bundled). Keeps the bars it shows, keyed by interval start, so a stream update
 * either moves the forming candle, appends one, or (rarely, a revised bar) rewrites history.
 */
import {
  CandlestickSeries,
  ColorType,
  createChart,
  createSeriesMarkers,
  HistogramSeries,
  type CandlestickData,
  type HistogramData,
  type IChartApi,
  type ISeriesApi,
  type ISeriesMarkersPluginApi,
  type SeriesMarker,
  type Time,
  type UTCTimestamp,
} from "lightweight-charts";
import { INTERVAL_MS, type Anomaly, type Bar, type Interval } from "./types";
import { offsetAt } from "../../src/windowing/offset";

const UP = "#26a69a";
const DOWN = "#ef5350";
const ANOMALY = "#f5b83d";
const MIN_SLOTS = 30;
const MAX_SHOWN = 120;

/** A bar with prices (one that holds only orders has none and is not drawn). */
type PricedBar = Bar & { open: number; high: number; low: number; close: number };

const priced = (b: Bar): b is PricedBar =>
  b.open !== null && b.high !== null && b.low !== null && b.close !== null;

/** The chart library draws times as UTC: each instant is shifted to read as the zone's local time. */
let zone = "UTC";
const time = (ms: number) => Math.floor((ms + offsetAt(zone, ms)) / 1000) as UTCTimestamp;

export class BarChart {
  private readonly chart: IChartApi;
  private readonly candles: ISeriesApi<"Candlestick">;
  private readonly volume: ISeriesApi<"Histogram">;
  private readonly markers: ISeriesMarkersPluginApi<Time>;
  private bars = new Map<number, PricedBar>();
  private lastStart = -Infinity;
  private markerCount = 0;

  constructor(container: HTMLElement) {
    this.chart = createChart(container, {
      autoSize: true,
      layout: {
        background: { type: ColorType.Solid, color: "transparent" },
        textColor: "#9aa7b4",
        fontFamily: "Inter, system-ui, sans-serif",
        attributionLogo: true,
      },
      grid: { vertLines: { color: "#1c2530" }, horzLines: { color: "#1c2530" } },
      rightPriceScale: { borderColor: "#2a3542" },
      timeScale: {
        borderColor: "#2a3542",
        timeVisible: true,
        secondsVisible: false,
        barSpacing: 9,
        rightOffset: 3,
      },
      crosshair: { mode: 0 },
    });
    this.candles = this.chart.addSeries(CandlestickSeries, {
      upColor: UP,
      downColor: DOWN,
      borderVisible: false,
      wickUpColor: UP,
      wickDownColor: DOWN,
    });
    this.candles.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.28 } });
    this.volume = this.chart.addSeries(HistogramSeries, {
      priceFormat: { type: "volume" },
      priceScaleId: "",
      lastValueVisible: false,
      priceLineVisible: false,
    });
    this.volume.priceScale().applyOptions({ scaleMargins: { top: 0.78, bottom: 0 } });
    this.markers = createSeriesMarkers(this.candles, []);
  }

  /** The zone whose local time the axis shows (set before `setBars`). */
  setZone(name: string): void {
    zone = name;
  }

  /** Replaces everything shown (a new symbol or interval, or a reload). */
  setBars(bars: readonly Bar[]): void {
    this.bars = new Map();
    for (const b of bars) if (priced(b)) this.bars.set(b.startMs, b);
    this.redraw();
    // The latest bars, at most MAX_SHOWN of them and room for at least MIN_SLOTS.
    const n = this.bars.size;
    if (n > 0) {
      const span = Math.min(Math.max(n, MIN_SLOTS), MAX_SHOWN);
      this.chart.timeScale().setVisibleLogicalRange({ from: n - span - 1, to: n + 1.5 });
    }
  }

  /** Applies one bar from the stream, unless an equal or later version is shown. */
  update(b: Bar): void {
    const held = this.bars.get(b.startMs);
    if (
      held &&
      (held.generation > b.generation ||
        (held.generation === b.generation && held.revision > b.revision))
    )
      return;
    if (!priced(b)) {
      // Every trade of the bar was cancelled.
      if (held && this.bars.delete(b.startMs)) this.redraw();
      return;
    }
    const known = held !== undefined;
    this.bars.set(b.startMs, b);
    if (b.startMs >= this.lastStart) {
      this.lastStart = b.startMs;
      this.candles.update(candle(b));
      this.volume.update(volumeBar(b));
    } else if (known) {
      this.candles.update(candle(b), true);
      this.volume.update(volumeBar(b), true);
    } else {
      this.redraw();
    }
  }

  setAnomalies(anomalies: readonly Anomaly[], interval: Interval): void {
    const width = INTERVAL_MS[interval];
    const starts = [...this.bars.keys()].sort((a, b) => a - b);
    // On the bar that holds it (local days and hours are not a fixed grid); else on the UTC grid.
    const barOf = (t: number) => {
      const start = starts.findLast((s) => s <= t);
      return start !== undefined && t - start < width * 1.1 ? start : Math.floor(t / width) * width;
    };
    const markers: SeriesMarker<Time>[] = [...anomalies]
      .sort((a, b) => a.timeMs - b.timeMs)
      .map((a) => ({
        time: time(barOf(a.timeMs)),
        position: a.ret >= 0 ? "aboveBar" : "belowBar",
        shape: a.ret >= 0 ? "arrowDown" : "arrowUp",
        color: ANOMALY,
        text: `z ${a.zscore.toFixed(1)}`,
      }));
    this.markerCount = markers.length;
    this.markers.setMarkers(markers);
  }

  get candleCount(): number {
    return this.bars.size;
  }

  get markersShown(): number {
    return this.markerCount;
  }

  get last(): PricedBar | null {
    return this.bars.get(this.lastStart) ?? null;
  }

  private redraw(): void {
    const sorted = [...this.bars.values()].sort((a, b) => a.startMs - b.startMs);
    this.lastStart = sorted.at(-1)?.startMs ?? -Infinity;
    this.candles.setData(sorted.map(candle));
    this.volume.setData(sorted.map(volumeBar));
  }
}

function candle(b: PricedBar): CandlestickData<Time> {
  return { time: time(b.startMs), open: b.open, high: b.high, low: b.low, close: b.close };
}

function volumeBar(b: PricedBar): HistogramData<Time> {
  return {
    time: time(b.startMs),
    value: b.volume,
    color: b.close >= b.open ? "rgba(38,166,154,0.45)" : "rgba(239,83,80,0.45)",
  };
}
