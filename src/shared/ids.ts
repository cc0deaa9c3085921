import { randomBytes } from "node:crypto";

const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"; // Crockford base32, lower case

/**
 * A 20-character id that sorts by creation time: 10 characters of millisecond timestamp, then
 * 10 of randomness (50 bits). Short enough to type in `vqd show <id>`, unique enough for a queue.
 */
export function newVideoId(now = Date.now()): string {
  let ts = "";
  let t = now;
  for (let i = 0; i < 10; i++) {
    ts = ALPHABET[t % 32] + ts;
    t = Math.floor(t / 32);
  }
  const bytes = randomBytes(10);
  let rnd = "";
  for (const b of bytes) rnd += ALPHABET[b & 31];
  return ts + rnd;
}

export const VIDEO_ID_PATTERN = /^[0-9a-hjkmnp-tv-z]{20}$/;
