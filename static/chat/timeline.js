// Which messages the page holds, and which ids between them are still missing.

/**
 * A message as the server sends it (`message` frames, `hello.history`, the history API).
 * @typedef {object} Message
 * @property {number} id
 * @property {string} nick
 * @property {string} body
 * @property {string} sent_at ISO 8601 UTC
 * @property {string | null} [client_id]
 * @property {string} [session]
 * @property {boolean} [account] true when a signed-in account sent it
 * @property {string} [type]
 */

export class Timeline {
  constructor() {
    /** @type {Map<number, Message>} */
    this.byId = new Map();
    // Ids a moderator deleted: never shown again, and never "missing" either.
    /** @type {Set<number>} */
    this.retracted = new Set();
    // Every id up to `contiguous` is held (or was accepted as a hole in the sequence).
    this.contiguous = 0;
    this.maxId = 0;
  }

  /** How many messages are held. */
  get size() {
    return this.byId.size;
  }

  /** @param {number} id */
  has(id) {
    return this.byId.has(id);
  }

  /** @param {number} id */
  get(id) {
    return this.byId.get(id);
  }

  /**
   * Add a message; false if its id is already held or was retracted.
   * @param {Message} message
   */
  add(message) {
    if (!Number.isInteger(message.id) || this.byId.has(message.id) || this.retracted.has(message.id)) {
      return false;
    }
    this.byId.set(message.id, message);
    if (message.id > this.maxId) this.maxId = message.id;
    this.advance();
    return true;
  }

  /**
   * Forget message `id` for good: a later copy (live, history, gap repair) is refused, and
   * its id counts as a hole, so no gap repair waits for it. True if it was held.
   * @param {number} id
   */
  retract(id) {
    if (!Number.isInteger(id) || id <= 0) return false;
    this.retracted.add(id);
    const held = this.byId.delete(id);
    // maxId stays: it is where a resume (`after=`) starts, and that must not move back.
    this.advance();
    return held;
  }

  /**
   * Accept everything up to `id` as seen (recent history starts here).
   * @param {number} id
   */
  acceptUpTo(id) {
    if (id > this.contiguous) this.contiguous = id;
    this.advance();
  }

  /** Move the contiguous run over every id that is held or retracted. */
  advance() {
    while (
      this.contiguous < this.maxId &&
      (this.byId.has(this.contiguous + 1) || this.retracted.has(this.contiguous + 1))
    ) {
      this.contiguous += 1;
    }
  }

  /** True when some id between the contiguous run and the newest held id is missing. */
  hasGap() {
    return this.contiguous < this.maxId;
  }

  /** Give up on the ids right after the contiguous run: they are holes, not losses. */
  skipHole() {
    let next = Infinity;
    for (const id of this.byId.keys()) {
      if (id > this.contiguous && id < next) next = id;
    }
    // Nothing held past the run (the newest were retracted): everything up to maxId is seen.
    this.contiguous = next === Infinity ? this.maxId : next;
    this.advance();
  }
}
