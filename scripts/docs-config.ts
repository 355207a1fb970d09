/** `npm run docs:config`: rewrites the README's configuration table from src/config.ts. */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { withConfigTable } from "../src/docs/config-table";

const readme = path.join(__dirname, "..", "..", "README.md");
writeFileSync(readme, withConfigTable(readFileSync(readme, "utf8")));
