/**
 * The output topics: compacted, so a consumer that reads one from the beginning ends with the
 * latest version of every key and no more. An existing topic is checked, never altered: a bars
 * topic that deletes by age would lose bars a consumer relies on.
 */
import type { Kafka } from "kafkajs";
import { withAdmin } from "../ingest/sources/kafka/client";

export async function ensureCompactedTopics(
  kafka: Kafka,
  topics: readonly string[],
  partitions: number,
): Promise<void> {
  await withAdmin(kafka, async (admin) => {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t));
    if (missing.length > 0)
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((topic) => ({
          topic,
          numPartitions: partitions,
          configEntries: [{ name: "cleanup.policy", value: "compact" }],
        })),
      });
    const present = topics.filter((t) => existing.has(t));
    if (present.length === 0) return;
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: present.map((name) => ({
        type: 2 /* TOPIC */,
        name,
        configNames: ["cleanup.policy"],
      })),
    });
    for (const r of described.resources) {
      const policy = r.configEntries.find((e) => e.configName === "cleanup.policy")?.configValue;
      if (!policy?.split(",").includes("compact"))
        throw new Error(
          `topic ${r.resourceName} has cleanup.policy=${policy ?? "?"}; an output topic must be compacted`,
        );
    }
  });
}
