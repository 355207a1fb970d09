/** The service factories by name: what `--services` / `SERVICES` choose from. */
import type { ServiceSchema } from "moleculer";
import { aggregatorService } from "../services/aggregator/aggregator.service";
import { anomalyService } from "../services/anomaly/anomaly.service";
import { apiService } from "../services/api/api.service";
import { ingestService } from "../services/ingest/ingest.service";
import { parserService } from "../services/parser.service";
import type { Config, ServiceName } from "../src/config";

export const SERVICE_FACTORIES: Record<ServiceName, (config: Config) => ServiceSchema> = {
  ingest: (c) => ingestService(c),
  parser: (c) => parserService(c),
  aggregator: (c) => aggregatorService(c),
  anomaly: (c) => anomalyService(c),
  api: (c) => apiService(c),
};
