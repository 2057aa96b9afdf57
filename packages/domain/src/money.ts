/**
 * Money is an integer number of micro-dollars (1 USD = 1_000_000 micros), never a float.
 *
 * Rounding rules (written down once, used everywhere):
 * - Parsing a decimal dollar amount keeps at most 6 decimals; more is an error, never silently rounded.
 * - A cost for a duration is computed exactly with bigint and rounded half-up to the nearest micro
 *   (`costForGpuMillis`). Splits (fees) round down for the fee and give the remainder to the payee,
 *   so a charge always equals payout + fee exactly.
 */
export type Micros = number;

export const MICROS_PER_USD = 1_000_000;
const MILLIS_PER_HOUR = 3_600_000n;

export class MoneyError extends Error {
  override name = "MoneyError";
}

/** Parses "1.89", "$1.89", "0.000001" or a number of dollars into micros. */
export function parseUsd(input: string | number): Micros {
  const text = (typeof input === "number" ? String(input) : input).trim().replace(/^(-?)\$/, "$1");
  const match = /^(-?)(\d+)(?:\.(\d{0,6}))?$/.exec(text);
  if (!match) throw new MoneyError(`not a dollar amount with at most 6 decimals: ${JSON.stringify(input)}`);
  const [, sign, whole, fraction = ""] = match;
  const micros = Number(whole) * MICROS_PER_USD + Number(fraction.padEnd(6, "0"));
  if (!Number.isSafeInteger(micros)) throw new MoneyError(`dollar amount out of range: ${text}`);
  return sign === "-" ? -micros : micros;
}

/** Formats micros as dollars: 1_890_000 → "$1.89"; keeps up to 6 decimals, at least 2. */
export function formatUsd(micros: Micros): string {
  assertMicros(micros, "amount");
  const negative = micros < 0;
  const abs = Math.abs(micros);
  const whole = Math.floor(abs / MICROS_PER_USD);
  let fraction = String(abs % MICROS_PER_USD)
    .padStart(6, "0")
    .replace(/0+$/, "");
  if (fraction.length < 2) fraction = fraction.padEnd(2, "0");
  return `${negative ? "-" : ""}$${whole}.${fraction}`;
}

export function assertMicros(value: number, what: string): void {
  if (!Number.isSafeInteger(value)) throw new MoneyError(`${what} must be an integer number of micros, got ${value}`);
}

/** Cost of `gpuMillis` GPU-milliseconds at `pricePerGpuHour` micros, rounded half-up to the micro. */
export function costForGpuMillis(pricePerGpuHour: Micros, gpuMillis: number): Micros {
  assertMicros(pricePerGpuHour, "price");
  assertMicros(gpuMillis, "gpu milliseconds");
  const exact = BigInt(pricePerGpuHour) * BigInt(gpuMillis);
  const rounded = (exact * 2n + MILLIS_PER_HOUR) / (2n * MILLIS_PER_HOUR);
  return Number(rounded);
}

/** Cost of `gpus` GPUs for `seconds` at `pricePerGpuHour`. */
export function costForDuration(pricePerGpuHour: Micros, gpus: number, seconds: number): Micros {
  return costForGpuMillis(pricePerGpuHour, gpus * Math.round(seconds * 1000));
}

/** Splits an amount into a platform fee (basis points, rounded down) and the payee's remainder. */
export function splitFee(amount: Micros, feeBasisPoints: number): { fee: Micros; payout: Micros } {
  assertMicros(amount, "amount");
  if (!Number.isInteger(feeBasisPoints) || feeBasisPoints < 0 || feeBasisPoints > 10_000) {
    throw new MoneyError(`fee must be 0..10000 basis points, got ${feeBasisPoints}`);
  }
  const fee = Number((BigInt(amount) * BigInt(feeBasisPoints)) / 10_000n);
  return { fee, payout: amount - fee };
}
