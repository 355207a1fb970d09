/**
 * The parser: runs the Rust decoder on a batch of raw records and returns one packed trade batch
 * (trades and orders), plus the rejects with their reasons. Stateless, so every ingest node runs
 * one beside it and the call stays local.
 */
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { Config } from "../src/config";
import type { ParseParams, ParseResult } from "../src/contracts/parse";
import type { ParserStats } from "../src/contracts/stats";
import { nativeFailure } from "../src/errors";
import { M, registerMetrics, timed } from "../src/metrics";
import { native, type Binding } from "../src/native";

interface Vars {
  decoder: Binding.FixDecoder;
  counts: ParserStats;
}

interface Methods {
  count(decoded: Binding.DecodedBatch): void;
}

type This = Service & Vars & Methods;

export function parserService(config: Config): ServiceSchema {
  const schema: ServiceSchema<ServiceSettingSchema, Methods, Vars> = {
    name: "parser",

    actions: {
      parse: {
        params: {
          source: { type: "string", max: 256 },
          payload: { type: "class", instanceOf: Buffer },
          offsets: { type: "class", instanceOf: Uint32Array },
          seqs: { type: "class", instanceOf: Float64Array },
        },
        handler(this: This, ctx: Context<ParseParams>): ParseResult {
          const { source, payload, offsets, seqs } = ctx.params;
          let decoded: Binding.DecodedBatch;
          try {
            decoded = timed(this.broker, "decoder.decodeBatch", () =>
              this.decoder.decodeBatch(payload, offsets, seqs, source),
            );
          } catch (err: unknown) {
            throw nativeFailure(err);
          }
          this.count(decoded);
          return {
            batch: decoded.batch,
            symbols: decoded.symbols,
            records: decoded.records,
            messages: decoded.messages,
            valid: decoded.valid,
            trades: decoded.trades,
            orders: decoded.orders,
            corrections: decoded.corrections,
            rejects: decoded.rejects,
          };
        },
      },

      stats: {
        handler(this: This): ParserStats {
          return this.counts;
        },
      },
    },

    methods: {
      count(this: This, d: Binding.DecodedBatch) {
        const c = this.counts;
        c.records += d.records;
        c.messages += d.messages;
        c.valid += d.valid;
        c.trades += d.trades;
        c.orders += d.orders;
        c.corrections += d.corrections;
        c.unreferenced += d.unreferenced;
        const metrics = this.broker.isMetricsEnabled() ? this.broker.metrics : null;
        metrics?.increment(M.messagesValid, undefined, d.valid);
        for (const r of d.rejects) {
          c.rejected[r.reason] = (c.rejected[r.reason] ?? 0) + 1;
          metrics?.increment(M.messagesRejected, { reason: r.reason });
        }
        for (const { msgType, count } of d.ignored) {
          c.ignored[msgType] = (c.ignored[msgType] ?? 0) + count;
          metrics?.increment(M.messagesIgnored, { msgType }, count);
        }
        if (d.cancels > 0) metrics?.increment(M.corrections, { kind: "cancel" }, d.cancels);
        if (d.corrects > 0) metrics?.increment(M.corrections, { kind: "correct" }, d.corrects);
        if (d.unreferenced > 0)
          metrics?.increment(M.correctionsSkipped, { reason: "unreferenced" }, d.unreferenced);
      },
    },

    created(this: This) {
      registerMetrics(this.broker);
      this.decoder = new native.FixDecoder({ mdEntryTypes: config.decoder.mdEntryTypes });
      this.counts = {
        records: 0,
        messages: 0,
        valid: 0,
        trades: 0,
        orders: 0,
        corrections: 0,
        unreferenced: 0,
        rejected: {},
        ignored: {},
      };
    },
  };
  return schema as unknown as ServiceSchema;
}
