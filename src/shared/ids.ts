import { randomBytes } from "node:crypto";

const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"; // Crockford base32, lower case

let lastMs = -1;
let lastRandom = 0n;
const RANDOM_SPACE = 1n << 50n;

/**
 * A 20-character id that sorts by creation time: 10 characters of millisecond timestamp, then 10
 * of randomness (50 bits). Within one millisecond the random part counts up, so ids made by one
 * process sort in the order they were made (`vqd list` shows FIFO order). Short enough to type.
 */
export function newVideoId(now = Date.now()): string {
  let random: bigint;
  if (now === lastMs) {
    random = (lastRandom + 1n) % RANDOM_SPACE;
  } else {
    const b = randomBytes(8);
    // Start in the lower half so a burst within one millisecond never wraps.
    random = b.readBigUInt64BE() % (RANDOM_SPACE >> 1n);
  }
  lastMs = now;
  lastRandom = random;
  return encode(BigInt(now), 10) + encode(random, 10);
}

function encode(value: bigint, length: number): string {
  let out = "";
  let v = value;
  for (let i = 0; i < length; i++) {
    out = ALPHABET[Number(v & 31n)] + out;
    v >>= 5n;
  }
  return out;
}

export const VIDEO_ID_PATTERN = /^[0-9a-hjkmnp-tv-z]{20}$/;
