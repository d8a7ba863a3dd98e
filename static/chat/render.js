// DOM builders. User text only ever goes through textContent: never innerHTML.

/**
 * @typedef {object} ElOptions
 * @property {string} [cls] class names
 * @property {string | null} [text] set as textContent
 * @property {Record<string, string>} [attrs] attributes
 * @property {Record<string, unknown>} [props] properties (e.g. title, onclick)
 */

/**
 * createElement with classes, text and properties (no HTML parsing anywhere).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {ElOptions} [options]
 * @param {(Node | null)[]} [children] null ones are left out
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, { cls = "", text = null, attrs = {}, props = {} } = {}, children = []) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== null) node.textContent = text;
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  Object.assign(node, props);
  for (const child of children) if (child) node.append(child);
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * A decorative line icon (24-unit grid, stroked with the text colour), hidden from AT.
 * @param {string[]} paths
 * @param {string} [cls]
 */
export function icon(paths, cls = "size-3.5") {
  const svg = document.createElementNS(SVG_NS, "svg");
  for (const [name, value] of Object.entries({
    class: cls,
    viewBox: "0 0 24 24",
    fill: "none",
    stroke: "currentColor",
    "stroke-width": "2",
    "stroke-linecap": "round",
    "stroke-linejoin": "round",
    "aria-hidden": "true",
    focusable: "false",
  })) {
    svg.setAttribute(name, value);
  }
  for (const d of paths) {
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

const BADGE_CHECK = [
  "M3.85 8.62a4 4 0 0 1 4.78-4.77 4 4 0 0 1 6.74 0 4 4 0 0 1 4.78 4.78 4 4 0 0 1 0 6.74 4 4 0 0 1-4.77 4.78 4 4 0 0 1-6.75 0 4 4 0 0 1-4.78-4.77 4 4 0 0 1 0-6.76Z",
  "m9 12 2 2 4-4",
];

/**
 * The mark beside the name of a signed-in account. It is built only from the message's
 * `account` field, never from the nickname, so a guest cannot put it on their name.
 */
/** @param {string} label */
export function accountMark(label) {
  return el("span", { cls: "account-mark inline-flex shrink-0 self-center text-indigo-600 dark:text-indigo-300", props: { title: label } }, [
    icon(BADGE_CHECK, "size-3.5"),
    el("span", { cls: "sr-only", text: label }),
  ]);
}

// Literal class names so that Tailwind's scanner finds them.
const AVATAR_COLORS = [
  "bg-rose-500",
  "bg-orange-500",
  "bg-amber-600",
  "bg-lime-600",
  "bg-emerald-600",
  "bg-teal-600",
  "bg-cyan-600",
  "bg-sky-600",
  "bg-blue-600",
  "bg-violet-600",
  "bg-purple-600",
  "bg-fuchsia-600",
  "bg-pink-600",
];
const NAME_COLORS = [
  "text-rose-700 dark:text-rose-300",
  "text-orange-700 dark:text-orange-300",
  "text-amber-700 dark:text-amber-300",
  "text-lime-700 dark:text-lime-300",
  "text-emerald-700 dark:text-emerald-300",
  "text-teal-700 dark:text-teal-300",
  "text-cyan-700 dark:text-cyan-300",
  "text-sky-700 dark:text-sky-300",
  "text-blue-700 dark:text-blue-300",
  "text-violet-700 dark:text-violet-300",
  "text-purple-700 dark:text-purple-300",
  "text-fuchsia-700 dark:text-fuchsia-300",
  "text-pink-700 dark:text-pink-300",
];

/** @param {string} text */
function hash(text) {
  let h = 0;
  for (const ch of text) h = (Math.imul(h, 31) + (ch.codePointAt(0) ?? 0)) | 0;
  return Math.abs(h);
}

/**
 * The avatar's colour class for a nickname (the same name, the same colour everywhere).
 * @param {string} nick
 */
export function avatarColor(nick) {
  return AVATAR_COLORS[hash(nick) % AVATAR_COLORS.length];
}

/** @param {string} nick */
export function initial(nick) {
  const first = [...nick.trim()][0] ?? "?";
  return first.toLocaleUpperCase();
}

/**
 * @param {string} nick
 * @param {string} [size] size and text classes
 */
export function avatar(nick, size = "size-8 text-sm") {
  return el("span", {
    cls: `grid ${size} shrink-0 place-items-center rounded-full font-semibold text-white select-none ${avatarColor(nick)}`,
    text: initial(nick),
    attrs: { "aria-hidden": "true" },
  });
}

export class Clock {
  /** @param {string} lang */
  constructor(lang) {
    this.time = new Intl.DateTimeFormat(lang, { hour: "numeric", minute: "2-digit" });
    this.dayTime = new Intl.DateTimeFormat(lang, {
      day: "numeric",
      month: "short",
      hour: "numeric",
      minute: "2-digit",
    });
    this.full = new Intl.DateTimeFormat(lang, { dateStyle: "full", timeStyle: "medium" });
  }

  /**
   * The local time of an ISO instant as shown on the page ("14:02", or "3 Jan, 14:02").
   * @param {string} iso
   */
  text(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return "";
    const today = date.toDateString() === new Date().toDateString();
    return today ? this.time.format(date) : this.dayTime.format(date);
  }

  /**
   * A <time> with the ISO instant as datetime and the local time as text.
   * @param {string} iso
   * @param {string} cls
   */
  element(iso, cls) {
    const date = new Date(iso);
    const valid = !Number.isNaN(date.getTime());
    const text = this.text(iso);
    return el("time", {
      cls,
      text,
      attrs: { datetime: valid ? date.toISOString() : String(iso) },
      props: { title: valid ? this.full.format(date) : "" },
    });
  }
}

const BUBBLE_OWN =
  "max-w-full rounded-2xl rounded-br-md bg-indigo-600 px-3.5 py-2 text-white shadow-sm group-data-[grouped]:rounded-br-2xl";
const BUBBLE_OTHER =
  "max-w-full rounded-2xl rounded-bl-md bg-white px-3.5 py-2 text-slate-900 shadow-sm ring-1 ring-slate-900/5 group-data-[grouped]:rounded-bl-2xl dark:bg-slate-800 dark:text-slate-100 dark:ring-white/5";
const BODY = "text-[0.95rem] leading-6 whitespace-pre-wrap wrap-anywhere";

/**
 * One message as a list item. `own` marks it "You"; `state` is null (from the log),
 * "pending", "sent" or "failed"; pending and failed ones live in the outbox list.
 * A message with `account: true` (sent by a signed-in account) gets `accountMark`, labelled
 * `accountLabel`. The author's name is ellipsised when it does not fit; the whole name
 * stays in its title and its text (the accessible name).
 * @param {object} options
 * @param {{nick: string, body: string, sent_at: string | null, id?: number, client_id?: string | null, account?: boolean}} options.message
 * @param {boolean} options.own
 * @param {string} options.youLabel
 * @param {Clock} options.clock
 * @param {string} [options.accountLabel]
 */
export function messageItem({ message, own, youLabel, clock, accountLabel = "" }) {
  const author = own ? youLabel : message.nick;
  const account = message.account === true;
  const li = el("li", {
    cls: `group mt-3 flex gap-2.5 data-[grouped]:mt-0.5 ${own ? "flex-row-reverse" : ""}`,
  });
  // An account and a guest with the same nickname are different authors: a guest's message
  // must never join (and hide behind) the header of an account's group.
  li.dataset.author = own ? "\u0000self" : `${account ? "a" : "n"}:${message.nick}`;
  if (message.id != null) li.dataset.id = String(message.id);
  if (message.client_id) li.dataset.clientId = message.client_id;
  li.dataset.own = own ? "true" : "false";
  li.dataset.time = String((message.sent_at && Date.parse(message.sent_at)) || Date.now());

  const face = own ? el("span", { cls: "hidden" }) : avatar(message.nick);
  if (!own) face.classList.add("mt-5", "group-data-[grouped]:invisible", "group-data-[grouped]:h-0", "group-data-[grouped]:mt-0");

  const header = el(
    "p",
    {
      cls: `mb-0.5 flex max-w-full min-w-0 items-baseline gap-2 px-1 text-xs group-data-[grouped]:sr-only ${own ? "justify-end" : ""}`,
    },
    [
      el("span", {
        cls: `nick min-w-0 truncate font-semibold ${own ? "text-slate-700 dark:text-slate-200" : NAME_COLORS[hash(message.nick) % NAME_COLORS.length]}`,
        text: author,
        props: { title: author },
      }),
      account ? accountMark(accountLabel) : null,
      message.sent_at ? clock.element(message.sent_at, "shrink-0 text-slate-500 dark:text-slate-400") : null,
    ],
  );
  const body = el("p", { cls: `body ${BODY}`, text: message.body });
  const bubble = el("div", { cls: own ? BUBBLE_OWN : BUBBLE_OTHER }, [body]);
  const meta = el("p", {
    cls: `state mt-0.5 px-1 text-xs text-slate-500 empty:hidden dark:text-slate-400 ${own ? "text-right" : ""}`,
  });
  const column = el("div", { cls: `column flex max-w-[85%] min-w-0 flex-col sm:max-w-[70%] ${own ? "items-end" : "items-start"}` }, [
    header,
    bubble,
    meta,
  ]);
  li.append(face, column);
  return li;
}

/**
 * A moderator's buttons under one message: Delete, and for someone else's message also
 * Mute and Ban. Real buttons, always visible (touch screens have no hover), each named
 * after the message or person it acts on; `data-action` says what a click asks for.
 * `labels` holds the visible texts and the accessible names, already translated.
 * @param {object} options
 * @param {boolean} options.own
 * @param {{delete: string, deleteName: string, mute: string, muteName: string, ban: string, banName: string}} options.labels
 */
export function moderationControls({ own, labels }) {
  const cls =
    "mod-button inline-flex min-h-6 items-center rounded-md px-1.5 py-0.5 font-medium text-slate-600 hover:bg-slate-200 hover:text-slate-900 focus-visible:outline-2 focus-visible:outline-offset-1 focus-visible:outline-indigo-500 disabled:opacity-50 dark:text-slate-300 dark:hover:bg-slate-700 dark:hover:text-white";
  /**
   * @param {string} action
   * @param {string} text
   * @param {string} name
   */
  const button = (action, text, name) =>
    el("button", { cls: `${cls} mod-${action}`, text, attrs: { type: "button", "aria-label": name, "data-action": action } });
  const buttons = [button("delete", labels.delete, labels.deleteName)];
  if (!own) buttons.push(button("mute", labels.mute, labels.muteName), button("ban", labels.ban, labels.banName));
  return el("div", { cls: `mod mt-0.5 flex flex-wrap gap-1 px-0.5 text-xs ${own ? "justify-end" : ""}` }, buttons);
}

/**
 * A discreet line in the log: joins, leaves, renames.
 * @param {string} text
 */
export function noticeItem(text) {
  return el("li", {
    cls: "notice my-2 text-center text-xs text-slate-500 wrap-anywhere dark:text-slate-400",
    text,
  });
}

/**
 * Group a message with the one before when the same author wrote it within 5 minutes.
 * @param {Element | null} li
 */
export function regroup(li) {
  if (!(li instanceof HTMLElement) || li.dataset.author === undefined) return;
  const prev = li.previousElementSibling;
  const close =
    prev instanceof HTMLElement &&
    prev.dataset.author === li.dataset.author &&
    Math.abs(Number(li.dataset.time) - Number(prev.dataset.time)) < 5 * 60_000;
  if (close) li.dataset.grouped = "";
  else delete li.dataset.grouped;
}
