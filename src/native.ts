/**
 * Loads the Rust core (napi-rs addon built from `native/`).
 *
 * The typings come from the generated, committed `native/index.d.ts`; the path is resolved from
 * the repository root so that the same code runs from `src/` (tests) and `dist/src/` (built).
 */
import fs from "node:fs";
import path from "node:path";
import type * as Binding from "../native/index";

function findRoot(start: string): string {
  let dir = start;
  for (;;) {
    if (fs.existsSync(path.join(dir, "native", "index.js"))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir)
      throw new Error(`cannot find native/index.js above ${start}; run npm run build`);
    dir = parent;
  }
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const native = require(
  path.join(findRoot(__dirname), "native", "index.js"),
) as typeof Binding;

export type { Binding };
