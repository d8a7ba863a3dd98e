// The status pill in the header: connecting, online, reconnecting with a countdown, offline.

/**
 * @typedef {import("./store.js").Status} Status
 */

/**
 * @param {object} deps
 * @param {import("./dom.js").Ui} deps.ui
 * @param {import("./store.js").Store} deps.store
 * @param {import("./i18n.js").Translate} deps.t
 * @param {(status: Status) => void} deps.onChange after the pill shows a new state
 */
export function createStatus({ ui, store, t, onChange }) {
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let countdown;

  /**
   * @param {Status} name
   * @param {{until?: number}} [detail] until: when a reconnect is due (Date.now() time)
   */
  function show(name, { until } = {}) {
    clearInterval(countdown);
    countdown = undefined;
    store.setStatus(name);
    ui.status.dataset.state = name;
    const label = {
      connecting: t("connecting"),
      online: t("online"),
      reconnecting: t("reconnecting"),
      offline: t("offline"),
    }[name];
    // The screen-reader text changes once per state; the visible countdown ticks silently.
    ui.statusSr.textContent = label;
    ui.statusText.textContent = label;
    ui.reconnectNow.hidden = name !== "reconnecting" && name !== "offline";
    // Without a connection the online list is stale: say so quietly.
    ui.onlineToggle.classList.toggle("opacity-60", name !== "online");
    if (name === "reconnecting" && until) {
      const tick = () => {
        const seconds = Math.max(1, Math.ceil((until - Date.now()) / 1000));
        ui.statusText.textContent = t("reconnectingIn", { seconds });
      };
      tick();
      countdown = setInterval(tick, 250);
    }
    onChange(name);
  }

  return { show };
}
