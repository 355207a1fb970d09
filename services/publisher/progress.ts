/**
 * Reading the progress topic to its end. The end of a transactional topic is not its high
 * watermark (control records sit there, open transactions hide what follows), so the new
 * publisher first commits a record of its own (`SYNC_KEY` = a token no one else writes) and reads
 * until it sees it: everything committed before its transaction has been read by then.
 */
import type { Kafka } from "kafkajs";
import { withAdmin } from "../ingest/sources/kafka/client";

export const SYNC_KEY = "__sync";

/** Every key's latest value up to the `token` record, read committed. */
export async function readProgress(
  kafka: Kafka,
  topic: string,
  token: string,
  timeoutMs = 60_000,
): Promise<Map<string, string>> {
  const groupId = `${topic}.restore.${token}`;
  const consumer = kafka.consumer({ groupId, readUncommitted: false });
  const latest = new Map<string, string>();
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`progress topic ${topic} not read to its end in ${timeoutMs} ms`)),
        timeoutMs,
      );
      consumer
        .run({
          autoCommit: false,
          eachMessage: ({ message }) => {
            const key = message.key?.toString() ?? "";
            const value = message.value?.toString() ?? "";
            if (key === SYNC_KEY) {
              if (value === token) {
                clearTimeout(timer);
                resolve();
              }
            } else latest.set(key, value);
            return Promise.resolve();
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
    await withAdmin(kafka, (admin) => admin.deleteGroups([groupId])).catch(() => undefined);
  }
  return latest;
}
