// SPEC section 3 written from the page alone: each payload is the SCALE encoding of a tuple
// that starts with a raw ASCII tag; u64 and u128 are little-endian fixed width; hashes and
// accounts are 32 raw bytes.

import { bnToU8a, stringToU8a, u8aConcat } from '@polkadot/util';

const u64 = (n) => bnToU8a(BigInt(n), { bitLength: 64, isLe: true });
const u128 = (n) => bnToU8a(BigInt(n), { bitLength: 128, isLe: true });

export function sheetPayload(genesis, channel, nonce, balances, waiver) {
  return u8aConcat(stringToU8a('vbank/sheet'), genesis, u64(channel), u64(nonce),
    u128(balances[0]), u128(balances[1]), waiver);
}

export function waiverPayload(genesis, channel, nonce) {
  return u8aConcat(stringToU8a('vbank/waiver'), genesis, u64(channel), u64(nonce));
}

export function closePayload(genesis, channel, nonce, balances) {
  return u8aConcat(stringToU8a('vbank/close'), genesis, u64(channel), u64(nonce),
    u128(balances[0]), u128(balances[1]));
}
