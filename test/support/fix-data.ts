/** Where the FIX corpora live: the shared data folder beside the repository (see README). */
import { existsSync } from "node:fs";
import path from "node:path";

const CANDIDATES = [
  process.env.TICKSTREAM_FIX_DATA,
  path.join(__dirname, "..", "data", "fix"),
  path.join(__dirname, "..", "..", "..", "shared", "data", "fix"),
].filter((p): p is string => p !== undefined);

export const FIX_DATA =
  CANDIDATES.find((p) => existsSync(path.join(p, "hffix-fix.5.0.set.1.fix"))) ??
  CANDIDATES[CANDIDATES.length - 1]!;

export const fixFile = (name: string): string => path.join(FIX_DATA, name);
