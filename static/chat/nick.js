// The header's two popovers, and the nickname editor in one of them: the name shown in the
// header, checked as the server would before it is sent.

import { avatarColor, initial } from "./render.js";
import { codePoints } from "./pacing.js";

/**
 * What is wrong with a nickname, or "" when the server will take it.
 * @param {string} nick trimmed
 * @param {number} max
 * @param {import("./i18n.js").Translate} t
 */
export function nickProblem(nick, max, t) {
  if (!nick) return t("nickEmpty");
  if (codePoints(nick) > max) return t("nickTooLong", { max });
  if (/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(nick)) return t("nickControl");
  return "";
}

/**
 * @param {object} deps
 * @param {import("./dom.js").Ui} deps.ui
 * @param {import("./store.js").Store} deps.store
 * @param {import("./i18n.js").Translate} deps.t
 * @param {number} deps.maxNick
 * @param {(nick: string) => void} deps.rename ask the server for the new name
 */
export function createNickEditor({ ui, store, t, maxNick, rename }) {
  /** @type {Record<import("./store.js").Panel, [HTMLElement, HTMLElement]>} toggle, panel */
  const panels = {
    online: [ui.onlineToggle, ui.onlinePanel],
    nick: [ui.nickToggle, ui.nickForm],
  };

  /**
   * Open one popover (closing the other), or close them all (null).
   * @param {import("./store.js").Panel | null} open
   */
  function setOpen(open) {
    store.setOpenPanel(open);
    for (const [name, [toggle, panel]] of Object.entries(panels)) {
      panel.hidden = name !== open;
      toggle.setAttribute("aria-expanded", String(name === open));
    }
  }

  /** The name in the header: ellipsised when long, whole in its title and accessible name. */
  function show() {
    const nick = store.nick();
    ui.nickCurrent.textContent = nick || "…";
    ui.nickCurrent.title = nick;
    ui.nickToggle.title = nick;
    ui.nickAvatar.textContent = nick ? initial(nick) : "?";
    ui.nickAvatar.className = ui.nickAvatar.className.replace(/\bbg-\w+-\d+\b/g, "").trim();
    ui.nickAvatar.classList.add(nick ? avatarColor(nick) : "bg-indigo-600");
  }

  function openForm() {
    setOpen("nick");
    ui.nickInput.value = store.nick();
    ui.nickError.textContent = "";
    ui.nickInput.removeAttribute("aria-invalid");
    ui.nickInput.focus();
    ui.nickInput.select();
  }

  function closeForm() {
    setOpen(null);
    ui.nickToggle.focus();
  }

  ui.nickToggle.addEventListener("click", () => {
    if (store.openPanel() === "nick") setOpen(null);
    else openForm();
  });
  ui.nickCancel.addEventListener("click", closeForm);
  ui.nickForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const nick = ui.nickInput.value.trim();
    const problem = nickProblem(nick, maxNick, t);
    if (problem) {
      ui.nickError.textContent = problem;
      ui.nickInput.setAttribute("aria-invalid", "true");
      ui.nickInput.focus();
      return;
    }
    if (nick !== store.nick()) {
      store.setNick(nick);
      show();
      // Offline, the new name goes out as ?nick= on the next connect.
      rename(nick);
    }
    closeForm();
  });

  ui.onlineToggle.addEventListener("click", () => setOpen(store.openPanel() === "online" ? null : "online"));

  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    const open = store.openPanel();
    if (open === "nick") {
      closeForm();
    } else if (open === "online") {
      setOpen(null);
      ui.onlineToggle.focus();
    }
  });

  document.addEventListener("click", (event) => {
    const open = store.openPanel();
    if (!open) return;
    const [toggle, panel] = panels[open];
    const target = event.target instanceof Node ? event.target : null;
    if (!panel.contains(target) && !toggle.contains(target)) setOpen(null);
  });

  return { show };
}
