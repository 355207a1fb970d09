/**
 * The dead-letter topic: each rejected record, unchanged, with why and where it came from. A
 * batch's dead letters must be in the topic before its offsets are committed: `write` resolves
 * once every replica has them (acks -1, a producer that keeps retrying).
 */
import type { Kafka, KafkaMessage, Producer } from "kafkajs";
import { reliableProducer } from "./client";
import type { Reject } from "./pack";

export class DeadLetters {
  private producer: Producer | null = null;

  constructor(
    private readonly kafka: Kafka,
    private readonly topic: string,
    /** Called once per dead-lettered record with its first reason. */
    private readonly onDeadLetter: (reason: string) => void,
  ) {}

  async connect(): Promise<void> {
    this.producer = reliableProducer(this.kafka);
    await this.producer.connect();
  }

  async disconnect(): Promise<void> {
    await this.producer?.disconnect();
    this.producer = null;
  }

  /** Writes the rejected records of a chunk of `topic/partition`; returns how many it wrote. */
  async write(
    topic: string,
    partition: number,
    messages: KafkaMessage[],
    rejects: Reject[],
  ): Promise<number> {
    if (!this.producer) throw new Error("the dead-letter producer is not connected");
    const byRecord = new Map<number, string[]>();
    for (const r of rejects) byRecord.set(r.record, [...(byRecord.get(r.record) ?? []), r.reason]);
    const records = [...byRecord.entries()].map(([i, reasons]) => {
      const m = messages[i]!;
      return {
        key: m.key,
        value: m.value,
        headers: {
          ...(m.headers ?? {}),
          reason: reasons[0]!,
          reasons: reasons.join(","),
          "source.topic": topic,
          "source.partition": String(partition),
          "source.offset": m.offset,
          "source.timestamp": m.timestamp,
        },
      };
    });
    await this.producer.send({ topic: this.topic, messages: records, acks: -1 });
    for (const reasons of byRecord.values()) this.onDeadLetter(reasons[0]!);
    return records.length;
  }
}
