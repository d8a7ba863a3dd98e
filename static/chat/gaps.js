// Gap repair: ids that skipped are fetched from the history API after a grace period, at
// most twice; what still does not come is a hole in the sequence (a rolled-back insert).
// A 429 is no try: the page waits as long as the server's Retry-After says, then asks again.

const GAP_GRACE = 1500; // wait for late messages before fetching a gap
const GAP_TRIES = 2; // then accept what is still missing as holes in the sequence
const API_MAX_PAGES = 20;
const RETRY_AFTER_MAX = 120; // seconds: a longer Retry-After is capped

/** The history API refused for now (429); `seconds` is how long to wait. */
export class RateLimited extends Error {
  /** @param {number} seconds */
  constructor(seconds) {
    super(`rate limited for ${seconds} s`);
    this.seconds = seconds;
  }
}

/**
 * Seconds to wait from a Retry-After header (delay-seconds or an HTTP-date), between 0 and
 * RETRY_AFTER_MAX; the grace period when it is missing or unreadable.
 * @param {string | null} header
 * @param {number} [now] milliseconds since the epoch
 */
export function retryAfterSeconds(header, now = Date.now()) {
  const value = (header ?? "").trim();
  let seconds = GAP_GRACE / 1000;
  if (/^\d+$/.test(value)) seconds = Number(value);
  else if (/^[A-Za-z]{3},/.test(value) && !Number.isNaN(Date.parse(value))) seconds = (Date.parse(value) - now) / 1000;
  return Math.min(Math.max(seconds, 0), RETRY_AFTER_MAX);
}

/**
 * @typedef {import("./timeline.js").Message} Message
 */

/**
 * @param {object} deps
 * @param {import("./store.js").Store} deps.store
 * @param {import("./timeline.js").Timeline} deps.timeline
 * @param {string} deps.apiPath
 * @param {(messages: Message[]) => void} deps.onMessages a batch of fetched messages
 * @param {() => void} deps.onError a fetch failed
 * @param {typeof fetch} [deps.fetchImpl] the page's `fetch` (tests pass their own)
 */
export function createGapRepair({ store, timeline, apiPath, onMessages, onError, fetchImpl = (...args) => fetch(...args) }) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;

  /**
   * @param {number} after
   * @returns {Promise<{messages?: unknown, has_more?: unknown}>}
   */
  async function fetchAfter(after) {
    const base = `${apiPath}?after=${after}`;
    /** @param {string} url */
    const get = (url) => fetchImpl(url, { headers: { Accept: "application/json" } });
    // Pages of 500; a server whose cap (CHAT_RESUME_CAP) is lower answers 400, and then the
    // page lets the server pick its default page size instead.
    const page = store.apiPage();
    let response = await get(page ? `${base}&limit=${page}` : base);
    if (response.status === 400 && page) {
      store.dropApiPage();
      response = await get(base);
    }
    if (response.status === 429) throw new RateLimited(retryAfterSeconds(response.headers.get("Retry-After")));
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.json();
  }

  /**
   * After any change: if an id is missing, fetch it once the grace period (or `delay`
   * milliseconds) is over.
   * @param {number} [delay]
   */
  function schedule(delay = GAP_GRACE) {
    if (!timeline.hasGap() || timer || store.gapBusy()) return;
    timer = setTimeout(() => {
      timer = undefined;
      repair();
    }, delay);
  }

  /**
   * Fetch what is missing after the contiguous run (`now`: without waiting for the grace).
   * @param {{now?: boolean}} [options]
   */
  async function repair({ now = false } = {}) {
    if (store.gapBusy()) return;
    if (!timeline.hasGap()) return;
    if (!now && timer) return;
    clearTimeout(timer);
    timer = undefined;
    const from = timeline.contiguous;
    if (store.gapTry(from) >= GAP_TRIES) {
      // Ids that never came back are holes in the sequence (a rolled-back insert).
      timeline.skipHole();
      schedule();
      return;
    }
    store.noteGapTry(from);
    store.setGapBusy(true);
    let delay = GAP_GRACE;
    try {
      let after = from;
      for (let page = 0; page < API_MAX_PAGES; page += 1) {
        const data = await fetchAfter(after);
        const rows = /** @type {Message[]} */ (Array.isArray(data.messages) ? data.messages : []);
        onMessages(rows);
        if (!data.has_more || !rows.length) break;
        after = rows[rows.length - 1].id;
        if (after >= timeline.maxId) break;
      }
    } catch (error) {
      if (error instanceof RateLimited) {
        // Not a try: the ids may well be there. Ask again when the server says.
        store.forgetGapTry(from);
        delay = error.seconds * 1000;
      } else {
        onError();
      }
    } finally {
      store.setGapBusy(false);
    }
    schedule(delay);
  }

  return { schedule, repair };
}
