// When to send: the server's rate limit and the backoff after a refusal. Pure.

/**
 * How long to wait before the next send so that at most `rate` messages go out per
 * `period` seconds (0 for either: no limit), and the send times still in the window.
 * @param {number[]} sendTimes Date.now() of earlier sends, oldest first
 * @param {{rate: number, period: number, now: number}} limit
 * @returns {{wait: number, recent: number[]}}
 */
export function rateWindowWait(sendTimes, { rate, period, now }) {
  if (!rate || !period) return { wait: 0, recent: sendTimes };
  const recent = sendTimes.filter((at) => now - at < period * 1000);
  if (recent.length < rate) return { wait: 0, recent };
  return { wait: recent[0] + period * 1000 - now + 50, recent };
}

/**
 * How long a message refused for now waits before it goes out again: the server's
 * `retry_after` (seconds) when it gave one, else exponential backoff with jitter.
 * @param {{retryAfter?: unknown, attempts: number, random?: () => number}} refusal
 */
export function retryDelay({ retryAfter, attempts, random = Math.random }) {
  if (typeof retryAfter === "number" && Number.isFinite(retryAfter)) return retryAfter * 1000 + 100;
  return Math.min(30_000, 1000 * 2 ** Math.min(attempts, 5)) * (0.5 + random() / 2);
}

/**
 * Characters as the server counts them (code points).
 * @param {string} text
 */
export function codePoints(text) {
  return [...text].length;
}
