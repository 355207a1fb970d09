import { readFileSync } from "node:fs";
import path from "node:path";
import { ConfigError, loadConfig, parseDurationMs, SETTINGS } from "../../src/config";
import { configTable, CONFIG_TABLE_BEGIN, CONFIG_TABLE_END } from "../../src/docs/config-table";

describe("configuration", () => {
  it("has a default for every setting that loads without any environment", () => {
    const config = loadConfig({ NODEID: "n1" });
    expect(config.transporter).toBeNull();
    expect(config.http.port).toBe(3000);
    expect(config.metrics.port).toBe(3030);
    expect(config.services).toEqual(["ingest", "parser", "aggregator", "anomaly", "api"]);
    expect(config.bars.retentionMs["1m"]).toBe(2 * 3600e3);
    expect(config.detector).toMatchObject({
      kind: "zscore",
      window: 100,
      minSamples: 30,
      threshold: 4,
    });
    expect(config.requestTimeoutMs).toBeGreaterThan(0);
  });

  it("names the variable of a bad value", () => {
    expect(() => loadConfig({ PORT: "http" })).toThrow(/PORT/);
    expect(() => loadConfig({ DETECTOR: "lstm" })).toThrow(ConfigError);
    expect(() => loadConfig({ SERVICES: "ingest,router" })).toThrow(/router/);
    expect(() => loadConfig({ DETECTOR_OVERRIDES: '{"AAPL":{"treshold":5}}' })).toThrow(/treshold/);
    expect(() => loadConfig({ FIX_MD_ENTRY_TYPES: "2;3" })).toThrow(/FIX_MD_ENTRY_TYPES/);
  });

  it("replays a file as fast as it can unless a rate is given", () => {
    expect(loadConfig({ FEED_FILE: "x.fix" }).feed.rate).toBe(0);
    expect(loadConfig({ FEED_FILE: "x.fix", FEED_RATE: "500" }).feed.rate).toBe(500);
    expect(loadConfig({}).feed.rate).toBe(2000);
  });

  it("custody in JetStream with NATS, in memory without; checkpoint rounds where a cluster reads Kafka", () => {
    expect(loadConfig({ NODEID: "n1" }).custody).toEqual({
      natsUrl: null,
      bucket: "tickstream-checkpoints-tickstream",
    });
    expect(loadConfig({ NODEID: "n1", KAFKA_BROKERS: "k:9092" }).checkpoints).toBeNull();
    const nats = { TRANSPORTER: "nats://h:4222", NAMESPACE: "prod/eu" };
    expect(loadConfig(nats).custody).toEqual({
      natsUrl: "nats://h:4222",
      bucket: "tickstream-checkpoints-prod_eu",
    });
    expect(loadConfig(nats).checkpoints).toBeNull();
    expect(loadConfig({ ...nats, KAFKA_BROKERS: "k:9092" }).checkpoints).toEqual({
      intervalMs: 10_000,
    });
    expect(() =>
      loadConfig({ ...nats, KAFKA_BROKERS: "k:9092", CHECKPOINT_INTERVAL_MS: "0" }),
    ).toThrow(/CHECKPOINT_INTERVAL_MS/);
    expect(loadConfig({ CHECKPOINT_NATS_URL: "nats://js:4222" }).custody.natsUrl).toBe(
      "nats://js:4222",
    );
    expect(() => loadConfig({ TRANSPORTER: "nats://h:4222", CHECKPOINT_BUCKET: "a.b" })).toThrow(
      /CHECKPOINT_BUCKET/,
    );
  });

  it("parses durations", () => {
    expect(parseDurationMs("90s")).toBe(90_000);
    expect(parseDurationMs("7d")).toBe(7 * 86_400_000);
    expect(parseDurationMs("250")).toBe(250);
    expect(parseDurationMs("1w")).toBeUndefined();
  });

  it("keeps the correction window within the 1m retention", () => {
    expect(loadConfig({}).bars.correctionWindowMs).toBe(loadConfig({}).bars.retentionMs["1m"]);
    expect(loadConfig({ CORRECTION_WINDOW: "30m" }).bars.correctionWindowMs).toBe(1_800_000);
    expect(loadConfig({ CORRECTION_WINDOW: "0" }).bars.correctionWindowMs).toBe(0);
    expect(() => loadConfig({ RETENTION_1M: "1h", CORRECTION_WINDOW: "2h" })).toThrow(
      /CORRECTION_WINDOW.*RETENTION_1M/,
    );
    expect(() => loadConfig({ CORRECTION_WINDOW: "soon" })).toThrow(/CORRECTION_WINDOW/);
  });

  it("reads the live bar intervals as a subset of the core's, finest first", () => {
    expect(loadConfig({}).bars.intervals).toEqual(["1m", "5m", "1h"]);
    expect(loadConfig({ BAR_INTERVALS: "1h, 5m" }).bars.intervals).toEqual(["5m", "1h"]);
    expect(loadConfig({ BAR_INTERVALS: "1m,100t,50v" }).bars).toMatchObject({
      intervals: ["1m"],
      activity: ["100t", "50v"],
    });
    for (const bad of ["15m", "1m,1m", "1m,,5m", "100t"])
      expect(() => loadConfig({ BAR_INTERVALS: bad })).toThrow(/BAR_INTERVALS.*Rust core/);
  });

  it("is documented in the README table exactly as declared", () => {
    const readme = readFileSync(path.join(__dirname, "..", "..", "README.md"), "utf8");
    const begin = readme.indexOf(CONFIG_TABLE_BEGIN);
    const end = readme.indexOf(CONFIG_TABLE_END);
    expect(begin).toBeGreaterThan(0);
    expect(readme.slice(begin + CONFIG_TABLE_BEGIN.length, end).trim()).toBe(configTable());
    for (const s of SETTINGS) expect(readme).toContain(`\`${s.env}\``);
  });
});
