// Amounts and addresses as a person reads them. VBK has 12 decimals (1 VBK = 10^12 planck);
// the node takes and gives planck as decimal strings, which these turn to and from VBK with
// BigInt, so that no amount is ever rounded.

export const DECIMALS = 12n;
const UNIT = 10n ** DECIMALS;

/** Planck (a decimal string or a bigint) as VBK without trailing zeros: `80.5 VBK`. */
export function vbk(planck) {
  const value = BigInt(planck);
  const whole = value / UNIT;
  const fraction = (value % UNIT).toString().padStart(Number(DECIMALS), '0').replace(/0+$/, '');
  return fraction ? `${whole}.${fraction} VBK` : `${whole} VBK`;
}

/**
 * An amount as the command line takes it: VBK with up to 12 decimals (`20`, `0.5`,
 * `0.5 VBK`), or planck with the suffix `planck` (`500planck`). Returns the planck as a
 * bigint, or throws an Error saying what an amount looks like.
 */
export function planck(text) {
  const input = String(text).trim();
  const bad = () => new Error(
    `"${input}" is not an amount: VBK with up to 12 decimals (20, 0.5) or planck with the suffix planck (500planck)`,
  );
  const inPlanck = input.match(/^(\d+)\s*planck$/);
  if (inPlanck) {
    const value = BigInt(inPlanck[1]);
    if (value >= 2n ** 128n) throw bad();
    return value;
  }
  const inVbk = input.match(/^(\d*)(?:\.(\d{1,12}))?\s*(?:VBK)?$/);
  if (!inVbk || (!inVbk[1] && !inVbk[2])) throw bad();
  const whole = BigInt(inVbk[1] || '0');
  const fraction = BigInt((inVbk[2] || '').padEnd(Number(DECIMALS), '0'));
  const value = whole * UNIT + fraction;
  if (value >= 2n ** 128n) throw bad();
  return value;
}

/** An address shortened for reading: `5GrwvaEF…oHGKutQY`. */
export function short(address) {
  return address.length <= 16 ? address : `${address.slice(0, 8)}…${address.slice(-8)}`;
}

/**
 * An invoice as text, for a QR code or to paste: `vbank:<payee>?amount=<planck>&hashlock=0x…`.
 */
export function invoiceText({ payee, amount, hashlock }) {
  return `vbank:${payee}?amount=${amount}&hashlock=${hashlock}`;
}

/** The payee, amount (planck, bigint) and hashlock of an invoice's text, or null. */
export function parseInvoice(text) {
  const match = String(text).trim().match(/^vbank:([1-9A-HJ-NP-Za-km-z]+|0x[0-9a-fA-F]{64})\?amount=(\d+)&hashlock=(0x[0-9a-fA-F]{64})$/);
  return match ? { payee: match[1], amount: BigInt(match[2]), hashlock: match[3] } : null;
}
