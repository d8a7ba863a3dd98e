// Shared pieces of the page's unit tests: a Storage in memory and a translator.

import { translator } from "../../static/chat/i18n.js";

/** A Storage (getItem, setItem) in memory; `broken` makes every call throw, as a full or
 * disabled storage does. */
export class MemoryStorage {
  constructor({ broken = false } = {}) {
    /** @type {Map<string, string>} */
    this.map = new Map();
    this.broken = broken;
  }

  /** @param {string} key */
  getItem(key) {
    if (this.broken) throw new Error("storage disabled");
    return this.map.get(key) ?? null;
  }

  /**
   * @param {string} key
   * @param {string} value
   */
  setItem(key, value) {
    if (this.broken) throw new Error("storage disabled");
    this.map.set(key, String(value));
  }
}

/** A translator over English strings shaped like the server's. */
export const t = translator(
  {
    joined: "%(nick)s joined",
    left: "%(nick)s left",
    renamed: "%(old)s is now %(new)s",
    manyJoined: { one: "%(count)s person joined", other: "%(count)s people joined" },
    manyLeft: { one: "%(count)s person left", other: "%(count)s people left" },
    typingOne: "%(nick)s is typing…",
    typingTwo: "%(first)s and %(second)s are typing…",
    typingMany: "Several people are typing…",
    nickEmpty: "Enter a nickname.",
    nickTooLong: "At most %(max)s characters.",
    nickControl: "Control characters are not allowed.",
  },
  "en",
);
