#!/usr/bin/env node
// `npm test`: every check a change must pass, in one command, ending with "N passed, N failed".
//
// Static checks (format, lint, types, the committed napi typings) count as one test each; then
// the Rust tests (`cargo test`) and the Jest suites, whose individual results are summed.
// `npm test -- --quick` skips the static checks (handy while iterating on a test).
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const quick = process.argv.includes("--quick");
const jestArgs = process.argv.slice(2).filter((a) => a !== "--quick");
let passed = 0;
let failed = 0;
const failures = [];

function run(cmd, args, opts = {}) {
  const started = Date.now();
  const res = spawnSync(cmd, args, {
    cwd: root,
    stdio: opts.capture ? "pipe" : "inherit",
    encoding: "utf8",
    env: { ...process.env, ...opts.env },
  });
  return { ...res, seconds: ((Date.now() - started) / 1000).toFixed(1) };
}

function check(name, cmd, args, opts) {
  process.stdout.write(`\n── ${name}: ${cmd} ${args.join(" ")}\n`);
  const res = run(cmd, args, opts);
  if (res.status === 0) {
    passed += 1;
    console.log(`✓ ${name} (${res.seconds}s)`);
  } else {
    failed += 1;
    failures.push(name);
    console.log(`✗ ${name} (exit ${res.status ?? res.signal}, ${res.seconds}s)`);
  }
  return res.status === 0;
}

const bin = (name) => join(root, "node_modules", ".bin", name);
const cargoManifest = ["--manifest-path", join(root, "native", "Cargo.toml")];

if (!quick) {
  check("prettier", bin("prettier"), ["--check", "."]);
  check("eslint", bin("eslint"), ["--max-warnings=0", "."]);
  check("tsc", bin("tsc"), ["-p", "tsconfig.json", "--noEmit"]);
  // The dashboard is a browser program with its own compiler options (DOM, bundler resolution).
  check("tsc dashboard", bin("tsc"), ["-p", "dashboard/tsconfig.json", "--noEmit"]);
  check("cargo fmt", "cargo", ["fmt", ...cargoManifest, "--all", "--check"]);
  check("cargo clippy", "cargo", [
    "clippy",
    ...cargoManifest,
    "--workspace",
    "--all-targets",
    "--",
    "-D",
    "warnings",
  ]);
  // Docker is not available everywhere; the compose file is still validated (Debian's docker-compose
  // parses it without an engine; the Compose plugin works too when it is there).
  const composeArgs = ["-f", "docker-compose.yml", "config", "-q"];
  const hasPlugin = spawnSync("docker", ["compose", "version"], { stdio: "ignore" }).status === 0;
  if (hasPlugin) check("docker compose config", "docker", ["compose", ...composeArgs]);
  else check("docker compose config", "docker-compose", composeArgs);
  // The generated typings are committed: a rebuild that changes them means the committed API
  // description no longer matches the Rust code.
  if (check("native build", "npm", ["run", "--silent", "build:native"])) {
    check("napi typings drift", "git", [
      "diff",
      "--exit-code",
      "--",
      "native/index.d.ts",
      "native/index.js",
    ]);
  }
}

// Tests that start nodes as separate processes run the built dist/; build it from the sources.
check("build:ts", "npm", ["run", "--silent", "build:ts"]);

// Rust tests: count the per-binary "test result" lines.
process.stdout.write(`\n── cargo test\n`);
const cargo = run("cargo", ["test", ...cargoManifest, "--workspace", "--color", "never"], {
  capture: true,
});
process.stdout.write(cargo.stdout ?? "");
process.stderr.write(cargo.stderr ?? "");
let cargoPassed = 0;
let cargoFailed = 0;
for (const m of (cargo.stdout ?? "").matchAll(/test result: \w+\. (\d+) passed; (\d+) failed/g)) {
  cargoPassed += Number(m[1]);
  cargoFailed += Number(m[2]);
}
if (cargo.status !== 0 && cargoFailed === 0) {
  cargoFailed = 1; // a build failure has no "test result" line but must not pass silently
  failures.push("cargo test (build)");
} else if (cargoFailed > 0) failures.push("cargo test");
passed += cargoPassed;
failed += cargoFailed;
console.log(`cargo test: ${cargoPassed} passed, ${cargoFailed} failed (${cargo.seconds}s)`);

// Jest: read its JSON report rather than its human summary.
const outDir = mkdtempSync(join(tmpdir(), "tickstream-jest-"));
const report = join(outDir, "report.json");
process.stdout.write(`\n── jest\n`);
const jest = run(bin("jest"), ["--json", `--outputFile=${report}`, ...jestArgs]);
let jestPassed = 0;
let jestFailed = 0;
try {
  const r = JSON.parse(readFileSync(report, "utf8"));
  jestPassed = r.numPassedTests;
  jestFailed = r.numFailedTests + (r.numRuntimeErrorTestSuites ?? 0);
} catch {
  jestFailed = 1;
}
rmSync(outDir, { recursive: true, force: true });
if (jest.status !== 0 && jestFailed === 0) jestFailed = 1;
if (jestFailed > 0) failures.push("jest");
passed += jestPassed;
failed += jestFailed;
console.log(`jest: ${jestPassed} passed, ${jestFailed} failed (${jest.seconds}s)`);

if (failures.length > 0) console.log(`\nFailed: ${failures.join(", ")}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
