import { parseInterval, parseLimit, parseSymbol, parseTime } from "../../src/api/params";

function problem(fn: () => unknown): { code: number; parameter: string } {
  try {
    fn();
  } catch (err: unknown) {
    const e = err as { code: number; data: { parameter: string } };
    return { code: e.code, parameter: e.data.parameter };
  }
  throw new Error("expected a rejection");
}

describe("REST query parameters", () => {
  it("accept ISO-8601 (UTC by default) and epoch milliseconds", () => {
    expect(parseTime("2011-11-24T06:30:00Z", "from")).toBe(Date.UTC(2011, 10, 24, 6, 30));
    expect(parseTime("2011-11-24T06:30:00", "from")).toBe(Date.UTC(2011, 10, 24, 6, 30));
    expect(parseTime("2011-11-24T08:30:00+02:00", "from")).toBe(Date.UTC(2011, 10, 24, 6, 30));
    expect(parseTime("1322116200000", "to")).toBe(1322116200000);
    expect(parseTime(undefined, "to")).toBeUndefined();
  });

  it("reject malformed values with 422 naming the parameter", () => {
    expect(problem(() => parseTime("yesterday", "since"))).toEqual({
      code: 422,
      parameter: "since",
    });
    expect(problem(() => parseTime("2011-13-45T99:00:00Z", "from"))).toEqual({
      code: 422,
      parameter: "from",
    });
    expect(problem(() => parseInterval("2m"))).toEqual({ code: 422, parameter: "interval" });
    expect(problem(() => parseLimit("0", 500))).toEqual({ code: 422, parameter: "limit" });
    expect(problem(() => parseLimit("10001", 500))).toEqual({ code: 422, parameter: "limit" });
    expect(problem(() => parseLimit("1e3", 500))).toEqual({ code: 422, parameter: "limit" });
    expect(problem(() => parseSymbol("A".repeat(65)))).toEqual({ code: 422, parameter: "symbol" });
  });

  it("apply defaults", () => {
    expect(parseInterval(undefined)).toBe("1m");
    expect(parseLimit(undefined, 500)).toBe(500);
    expect(parseLimit("10000", 500)).toBe(10000);
  });
});
