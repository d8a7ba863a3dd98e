// Who is online, on the page: the count on the toggle, the list in its panel, and lines in
// the log for joins, leaves and renames. The logic is in presence.js; this draws it.

import { presenceChanges, presenceLines, sortedPeople } from "./presence.js";
import { avatar, el } from "./render.js";

/**
 * @param {object} deps
 * @param {import("./dom.js").Ui} deps.ui
 * @param {import("./store.js").Store} deps.store
 * @param {import("./i18n.js").Translate} deps.t
 * @param {string} deps.lang
 * @param {(lines: string[]) => void} deps.appendNotices
 */
export function createOnline({ ui, store, t, lang, appendNotices }) {
  function renderList() {
    const { list } = store.presence();
    ui.onlineList.replaceChildren(
      ...sortedPeople(list ?? new Map(), store.session(), lang).map((p) =>
        el("li", { cls: "flex items-center gap-2 rounded-lg px-1.5 py-1 text-sm" }, [
          avatar(p.nick, "size-6 text-xs"),
          el("span", { cls: "min-w-0 truncate", text: p.nick, props: { title: p.nick } }),
          p.own ? el("span", { cls: "shrink-0 text-xs text-slate-500 dark:text-slate-400", text: t("youSuffix") }) : null,
        ]),
      ),
    );
  }

  /**
   * A `presence` frame, or the presence part of `hello` (`announce`: false for the first).
   * Without `online` only the count changes; the count always comes from `count`.
   * @param {{online?: unknown, count?: unknown}} frame
   * @param {{announce?: boolean}} [options]
   */
  function onPresence(frame, { announce = true } = {}) {
    const update = store.updatePresence(frame);
    if (!update) return;
    const { list, count } = store.presence();
    ui.onlineCount.textContent = t("onlineCount", { count: count ?? 0 });
    if (!update.listChanged || !list) return;
    if (announce && update.previous.list) {
      const changes = presenceChanges(update.previous.list, list, (s) => store.isOwnSession(s));
      // A rename is one session under a new name: told whatever part of the list is held.
      // Joins and leaves are told only while the first page is the whole list: past it,
      // names move in and out of the page without anyone joining or leaving.
      appendNotices(presenceLines(update.complete ? changes : { ...changes, joined: [], left: [] }, t));
    }
    renderList();
  }

  return { onPresence };
}
