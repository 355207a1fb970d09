/** Starting real Tickstream nodes in tests: the same `startNode` as production, on free ports. */
import { loadConfig, type Config } from "../../src/config";
import { startNode, type StartedNode } from "../../app/start";

/** A configuration from environment-style overrides, with REST on a free port and quiet logs. */
export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    NODEID: `test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    PORT: "0",
    METRICS: "false",
    LOG_LEVEL: "warn",
    // A shared default history file would leak bars between tests; history tests choose their own.
    HISTORY_URL: "off",
    ...env,
  });
}

export async function startTestNode(
  env: Record<string, string> = {},
): Promise<StartedNode & { url: string }> {
  const node = await startNode(testConfig(env), { logger: false });
  if (node.url === null) throw new Error("test node has no REST gateway");
  return node as StartedNode & { url: string };
}

/** Polls `check` until it returns a value other than undefined, or fails after the deadline. */
export async function eventually<T>(
  check: () => Promise<T | undefined> | T | undefined,
  what: string,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err: unknown) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ""}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function getJson(
  url: string,
  headers: Record<string, string> = {},
  timeoutMs?: number,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, {
    headers,
    ...(timeoutMs === undefined ? {} : { signal: AbortSignal.timeout(timeoutMs) }),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body };
}

/** Waits until the node at `url` answers `/api/ready` with 200 (its replay has caught up). */
export async function untilReady(url: string, timeoutMs = 120_000): Promise<void> {
  await eventually(
    async () => ((await getJson(`${url}/api/ready`)).status === 200 ? true : undefined),
    "the replay to finish",
    timeoutMs,
  );
}
