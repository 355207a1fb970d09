/**
 * Exact decimal sums for roll-ups: bars cross from the engine and the history store as decimal
 * text, which is read here into BigInt mantissas at a fixed scale, summed, and turned into a
 * number only for the JSON answer. Never a float sum.
 */

/** Mantissa of decimal `text` at 10^-`scale` (text as `String(n)` or the core writes it, exponents too). */
export function scaled(text: string, scale: number): bigint {
  const m = /^(-?)(\d*)(?:\.(\d*))?(?:[eE]([-+]?\d+))?$/.exec(text);
  if (!m || (m[2] === "" && (m[3] ?? "") === "")) throw new RangeError(`not a decimal: ${text}`);
  const digits = (m[2] ?? "") + (m[3] ?? "");
  // The value is digits × 10^(exp − fraction digits); shift it to the wanted scale.
  const shift = scale + Number(m[4] ?? "0") - (m[3] ?? "").length;
  let v = BigInt(digits === "" ? "0" : digits);
  if (shift >= 0) v *= 10n ** BigInt(shift);
  else {
    // Finer than the scale: round half away from zero (the core's inputs never have more digits).
    const div = 10n ** BigInt(-shift);
    v = (v * 2n + div) / (2n * div);
  }
  return m[1] === "-" ? -v : v;
}

/** Decimal text of `mantissa` × 10^-`scale`, without trailing zeros. */
export function decimalText(mantissa: bigint, scale: number): string {
  const neg = mantissa < 0n;
  const digits = (neg ? -mantissa : mantissa).toString().padStart(scale + 1, "0");
  const int = digits.slice(0, digits.length - scale);
  const frac = digits.slice(digits.length - scale).replace(/0+$/, "");
  return `${neg ? "-" : ""}${int}${frac === "" ? "" : `.${frac}`}`;
}

/** The number nearest to `mantissa` × 10^-`scale` (one rounding, from the exact text). */
export const toNumber = (mantissa: bigint, scale: number): number =>
  Number(decimalText(mantissa, scale));

/**
 * The number nearest to `num / den` (both non-negative, `den` > 0): 25 significant digits of the
 * exact quotient, then one rounding to a double.
 */
export function ratio(num: bigint, den: bigint): number {
  if (den <= 0n) throw new RangeError("ratio with a non-positive denominator");
  const neg = num < 0n;
  const a = neg ? -num : num;
  const int = a / den;
  let rem = a % den;
  let frac = "";
  let significant = int === 0n ? 0 : int.toString().length;
  while (rem !== 0n && significant < 25 && frac.length < 60) {
    rem *= 10n;
    const d = rem / den;
    rem %= den;
    frac += d.toString();
    if (significant > 0 || d !== 0n) significant += 1;
  }
  return Number(`${neg ? "-" : ""}${int}${frac === "" ? "" : `.${frac}`}`);
}
