import { randomKafkaClusterId } from "../../scripts/infra/kafka";

it("draws Kafka cluster ids StorageTool accepts (22 base64url chars, never a leading '-')", () => {
  for (let i = 0; i < 2000; i++) {
    const id = randomKafkaClusterId();
    expect(id).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
  }
});
