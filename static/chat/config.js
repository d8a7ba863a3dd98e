// What the server hands the page through json_script (#chat-config): paths, limits, the
// protocol's close and error codes (chat/protocol.py) and the UI strings.

/**
 * @typedef {import("./connection.js").CloseCodes} CloseCodes
 * @typedef {{invalidNick: string, rateLimited: string, unavailable: string, forbidden: string, muted: string, tooLong: string, [name: string]: string}} ErrorCodes
 * @typedef {object} Config
 * @property {string} wsPath
 * @property {string} apiPath
 * @property {number} maxBody
 * @property {number} maxNick
 * @property {number} typingInterval
 * @property {{close: CloseCodes, errors: ErrorCodes}} protocol
 * @property {import("./i18n.js").Strings} strings
 */

/**
 * The configuration from the page.
 * @param {Document} doc
 * @returns {Config}
 */
export function readConfig(doc) {
  const script = doc.getElementById("chat-config");
  const config = JSON.parse(script?.textContent || "{}");
  if (!config.protocol?.close || !config.protocol?.errors) throw new Error("#chat-config has no protocol codes");
  return {
    wsPath: "/ws/chat/",
    apiPath: "/api/messages",
    maxBody: 2000,
    maxNick: 32,
    typingInterval: 2,
    strings: {},
    ...config,
  };
}
