// Gap repair: ids that skipped are fetched from the history API after a grace period, at
// most twice; what still does not come is a hole in the sequence (a rolled-back insert).

const GAP_GRACE = 1500; // wait for late messages before fetching a gap
const GAP_TRIES = 2; // then accept what is still missing as holes in the sequence
const API_MAX_PAGES = 20;

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
 */
export function createGapRepair({ store, timeline, apiPath, onMessages, onError }) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;

  /**
   * @param {number} after
   * @returns {Promise<{messages?: unknown, has_more?: unknown}>}
   */
  async function fetchAfter(after) {
    const base = `${apiPath}?after=${after}`;
    /** @param {string} url */
    const get = (url) => fetch(url, { headers: { Accept: "application/json" } });
    // Pages of 500; a server whose cap (CHAT_RESUME_CAP) is lower answers 400, and then the
    // page lets the server pick its default page size instead.
    const page = store.apiPage();
    let response = await get(page ? `${base}&limit=${page}` : base);
    if (response.status === 400 && page) {
      store.dropApiPage();
      response = await get(base);
    }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.json();
  }

  /** After any change: if an id is missing, fetch it once the grace period is over. */
  function schedule() {
    if (!timeline.hasGap() || timer || store.gapBusy()) return;
    timer = setTimeout(() => {
      timer = undefined;
      repair();
    }, GAP_GRACE);
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
    } catch {
      onError();
    } finally {
      store.setGapBusy(false);
    }
    schedule();
  }

  return { schedule, repair };
}
