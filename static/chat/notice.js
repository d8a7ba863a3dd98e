// A short line under the composer: a problem (red), or plain news.

const SHOWN = 8000;

/** @param {import("./dom.js").Ui} ui */
export function createNotice(ui) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;

  /**
   * @param {string} text
   * @param {{tone?: "error" | "info"}} [options]
   */
  function set(text, { tone = "error" } = {}) {
    clearTimeout(timer);
    ui.notice.dataset.tone = tone;
    ui.notice.textContent = text;
    timer = setTimeout(() => {
      ui.notice.textContent = "";
    }, SHOWN);
  }

  return { set };
}
