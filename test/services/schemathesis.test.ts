/**
 * Fuzzes the REST API from its own OpenAPI document with schemathesis (PyPI): no 5xx, and every
 * answer conforms to the documented status codes, content types and schemas.
 *
 * Operations marked `x-streaming` (the Server-Sent Events stream) are left out: a 200 never ends,
 * and a request-response fuzzer would wait on it forever. test/services/stream.test.ts checks that
 * route instead: its parameter errors, and its events against the document's `x-events` schemas.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import type { StartedNode } from "../../app/start";
import { getJson, startTestNode } from "../support/node";

const ST = path.join(__dirname, "..", "..", ".venv", "bin", "st");

describe("schemathesis against /api/openapi.json", () => {
  let node: StartedNode & { url: string };

  beforeAll(async () => {
    node = await startTestNode({
      FEED_RATE: "500",
      FEED_SYMBOLS: "3",
      RATE_LIMIT_PER_MIN: "1000000",
    });
  });
  afterAll(() => node?.stop());

  it("finds no server error and no answer that breaks the schema", async () => {
    expect(existsSync(ST)).toBe(true); // installed by scripts/infra/install-python-deps.sh (CI does it)
    const doc = (await getJson(`${node.url}/api/openapi.json`)).body as {
      paths: Record<string, Record<string, { "x-streaming"?: boolean }>>;
    };
    const streaming = Object.entries(doc.paths)
      .filter(([, ops]) => Object.values(ops).some((op) => op["x-streaming"] === true))
      .map(([p]) => p);
    expect(streaming).toEqual(["/api/stream", "/api/ws"]);
    const args = [
      "run",
      `${node.url}/api/openapi.json`,
      "--checks",
      "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
      "--max-examples",
      "60",
      "--seed",
      "20261125",
      "--workers",
      "1",
      "--no-color",
      ...streaming.flatMap((p) => ["--exclude-path", p]),
    ];
    const { code, output } = await new Promise<{ code: number | null; output: string }>(
      (resolve) => {
        const child = spawn(ST, args, { env: { ...process.env, SCHEMATHESIS_TELEMETRY: "false" } });
        let output = "";
        child.stdout.on("data", (d: Buffer) => (output += d.toString()));
        child.stderr.on("data", (d: Buffer) => (output += d.toString()));
        child.on("close", (c) => resolve({ code: c, output }));
      },
    );
    if (code !== 0) console.log(output);
    expect(code).toBe(0);
  }, 240_000);
});
