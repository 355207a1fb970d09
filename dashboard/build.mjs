// `npm run build:dashboard`: bundles the dashboard (TypeScript + lightweight-charts, no CDN) into
// dist/dashboard, which the gateway serves at `/`.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "dist", "dashboard");

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(here, "src", "main.ts")],
  outfile: join(out, "app.js"),
  bundle: true,
  format: "iife",
  minify: true,
  sourcemap: true,
  target: ["chrome111", "firefox115", "safari16.4"],
  // lightweight-charts is Apache-2.0: its licence comments go to app.js.LEGAL.txt beside the bundle.
  legalComments: "linked",
  logLevel: "warning",
});
for (const file of ["index.html", "style.css", "favicon.svg"])
  copyFileSync(join(here, file), join(out, file));
console.log(`dashboard built into ${out}`);
