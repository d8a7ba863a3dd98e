// Which messages the page holds, and which ids between them are still missing.

export class Timeline {
  constructor() {
    /** @type {Map<number, object>} */
    this.byId = new Map();
    // Every id up to `contiguous` is held (or was accepted as a hole in the sequence).
    this.contiguous = 0;
    this.maxId = 0;
  }

  has(id) {
    return this.byId.has(id);
  }

  /** Add a message; false if its id is already held. */
  add(message) {
    if (!Number.isInteger(message.id) || this.byId.has(message.id)) return false;
    this.byId.set(message.id, message);
    if (message.id > this.maxId) this.maxId = message.id;
    this.advance();
    return true;
  }

  /** Accept everything up to `id` as seen (recent history starts here). */
  acceptUpTo(id) {
    if (id > this.contiguous) this.contiguous = id;
    this.advance();
  }

  advance() {
    while (this.contiguous < this.maxId && this.byId.has(this.contiguous + 1)) {
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
    if (next !== Infinity) this.contiguous = next;
    this.advance();
  }
}
