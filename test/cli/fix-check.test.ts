/** `npm run fix -- check FILE` as a user runs it: the built CLI, its stdout, stderr and exit code. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fixFile } from "../support/fix-data";

const ROOT = path.join(__dirname, "..", "..");
const NODE = path.join(ROOT, "node_modules", ".bin", "node");

function fix(args: string[], env: Record<string, string> = {}) {
  const res = spawnSync(NODE, [path.join(ROOT, "dist", "scripts", "fix.js"), ...args], {
    encoding: "utf8",
    env: { ...process.env, ...env },
  });
  const lines = res.stdout
    .split("\n")
    .filter((l) => l !== "")
    .map(
      (l) =>
        JSON.parse(l) as {
          index: number;
          ok: boolean;
          reason?: string;
          msgType?: string;
          trades?: {
            symbol: string;
            price: number;
            qty: number;
            time: string;
            timeNs: string;
            id: string | null;
          }[];
        },
    );
  return { status: res.status, lines, stderr: res.stderr };
}

describe("fix check", () => {
  it("prints one JSON line per message of a raw SOH stream, with its trades", () => {
    const { status, lines, stderr } = fix(["check", fixFile("hffix-fix.4.1.set.1.fix")]);
    expect(status).toBe(0);
    expect(lines).toHaveLength(16);
    expect(lines.map((l) => l.index)).toEqual([...Array(16).keys()]);
    const fills = lines.filter((l) => l.trades);
    expect(fills.map((l) => l.trades)).toEqual([
      [
        {
          symbol: "MSFT",
          price: 12.3,
          qty: 10000,
          time: "2012-11-05T23:24:42Z",
          timeNs: "1352157882000000000",
          id: "2",
        },
      ],
      [
        {
          symbol: "ORCL",
          price: 12.3,
          qty: 10000,
          time: "2012-11-05T23:24:55Z",
          timeNs: "1352157895000000000",
          id: "4",
        },
      ],
    ]);
    expect(JSON.parse(stderr.trim().split("\n").at(-1)!)).toMatchObject({
      messages: 16,
      ok: 16,
      trades: 2,
    });
  });

  it("reads one message per line with | delimiters and reports bad ones with their reason", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "fix-check-"));
    const file = path.join(dir, "lines.fix");
    writeFileSync(
      file,
      [
        "8=FIX.4.2|9=45|35=0|34=3|49=TW|52=20000426-12:05:06|56=ISLD|10=218|",
        "8=FIX.4.2|9=45|35=0|34=3|49=TW|52=20000426-12:05:06|56=ISLD|10=000|",
        "",
        "8=FIX.4.2|9=AB|35=0|34=3|49=TW|52=20000426-12:05:06|56=ISLD|10=218|",
      ].join("\n"),
    );
    const { status, lines } = fix(["check", file]);
    expect(status).toBe(0);
    expect(lines.map((l) => [l.index, l.ok, l.reason ?? null, l.msgType ?? null])).toEqual([
      [0, true, null, "0"],
      [1, false, "CHECKSUM", "0"],
      [2, false, "BODY_LENGTH", null],
    ]);
  });

  it("exits 2 for unusable arguments", () => {
    expect(fix([]).status).toBe(2);
    expect(fix(["verify", "x"]).status).toBe(2);
    expect(fix(["check", "/nonexistent/file.fix"]).status).toBe(2);
    expect(
      fix(["check", fixFile("hffix-fix.4.1.set.1.fix")], { FIX_MD_ENTRY_TYPES: "2;" }).status,
    ).toBe(2);
  });
});
