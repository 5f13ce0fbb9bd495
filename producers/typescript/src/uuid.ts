import { randomFillSync } from "node:crypto";

/**
 * uuidv7 returns a version 7 UUID (RFC 9562): 48 bits of Unix milliseconds,
 * then random bits, so ids sort by creation time as the Go producer's
 * (google/uuid NewV7) do.
 */
export function uuidv7(now: number = Date.now()): string {
  if (!Number.isSafeInteger(now) || now < 0 || now >= 2 ** 48) {
    throw new RangeError(`uuidv7: time ${now} is not a 48-bit count of milliseconds`);
  }
  const b = randomFillSync(new Uint8Array(16));
  let ms = now;
  for (let i = 5; i >= 0; i--) {
    b[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  b[6] = 0x70 | (b[6]! & 0x0f); // version 7
  b[8] = 0x80 | (b[8]! & 0x3f); // variant 10
  const h = Buffer.from(b).toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
