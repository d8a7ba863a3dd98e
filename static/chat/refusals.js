// What the page does with an `error` frame: the decision alone, pure, from the protocol's
// codes as the server handed them over (chat_config.protocol.errors).

/**
 * @typedef {import("./config.js").ErrorCodes} ErrorCodes
 * @typedef {object} ErrorFrame
 * @property {string} code
 * @property {string} [detail]
 * @property {string} [client_id]
 * @property {unknown} [retry_after]
 * @typedef {{do: "fail", muted: boolean}
 *   | {do: "postpone", retryAfter?: unknown}
 *   | {do: "notice", muted: boolean}
 *   | {do: "revertNick"}} Refusal
 *   fail: the outbox item failed (with the muted reason, or the code's); postpone: it stays
 *   pending and goes again later; notice: a line under the composer; revertNick: the rename
 *   was refused.
 */

/**
 * @param {ErrorFrame} frame
 * @param {boolean} hasItem whether the frame names a message still in the outbox
 * @param {ErrorCodes} codes
 * @returns {Refusal}
 */
export function refusal(frame, hasItem, codes) {
  if (frame.code === codes.muted) {
    // Refused until the mute ends: shown as failed with a Retry button, never retried alone.
    return hasItem ? { do: "fail", muted: true } : { do: "notice", muted: true };
  }
  if (frame.code === codes.forbidden && !hasItem) return { do: "notice", muted: false };
  if (hasItem) {
    // Not refused for what it says: keep it pending and send it again later.
    if (frame.code === codes.rateLimited) return { do: "postpone", retryAfter: frame.retry_after };
    if (frame.code === codes.unavailable) return { do: "postpone" };
    return { do: "fail", muted: false };
  }
  if (frame.code === codes.invalidNick) return { do: "revertNick" };
  return { do: "notice", muted: false };
}
