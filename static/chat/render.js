// DOM builders. User text only ever goes through textContent: never innerHTML.

/** createElement with classes, text and properties (no HTML parsing anywhere). */
export function el(tag, { cls = "", text = null, attrs = {}, props = {} } = {}, children = []) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== null) node.textContent = text;
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  Object.assign(node, props);
  for (const child of children) if (child) node.append(child);
  return node;
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

function hash(text) {
  let h = 0;
  for (const ch of text) h = (Math.imul(h, 31) + ch.codePointAt(0)) | 0;
  return Math.abs(h);
}

export function avatarColor(nick) {
  return AVATAR_COLORS[hash(nick) % AVATAR_COLORS.length];
}

export function initial(nick) {
  const first = [...nick.trim()][0] ?? "?";
  return first.toLocaleUpperCase();
}

export function avatar(nick, size = "size-8 text-sm") {
  return el("span", {
    cls: `grid ${size} shrink-0 place-items-center rounded-full font-semibold text-white select-none ${avatarColor(nick)}`,
    text: initial(nick),
    attrs: { "aria-hidden": "true" },
  });
}

export class Clock {
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

  /** A <time> with the ISO instant as datetime and the local time as text. */
  element(iso, cls) {
    const date = new Date(iso);
    const valid = !Number.isNaN(date.getTime());
    const today = valid && date.toDateString() === new Date().toDateString();
    const text = !valid ? "" : today ? this.time.format(date) : this.dayTime.format(date);
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
 */
export function messageItem({ message, own, youLabel, clock }) {
  const author = own ? youLabel : message.nick;
  const li = el("li", {
    cls: `group mt-3 flex gap-2.5 data-[grouped]:mt-0.5 ${own ? "flex-row-reverse" : ""}`,
  });
  li.dataset.author = own ? "\u0000self" : `n:${message.nick}`;
  if (message.id != null) li.dataset.id = String(message.id);
  if (message.client_id) li.dataset.clientId = message.client_id;
  li.dataset.own = own ? "true" : "false";
  li.dataset.time = String(Date.parse(message.sent_at) || Date.now());

  const face = own ? el("span", { cls: "hidden" }) : avatar(message.nick);
  if (!own) face.classList.add("mt-5", "group-data-[grouped]:invisible", "group-data-[grouped]:h-0", "group-data-[grouped]:mt-0");

  const header = el(
    "p",
    {
      cls: `mb-0.5 flex items-baseline gap-2 px-1 text-xs group-data-[grouped]:sr-only ${own ? "justify-end" : ""}`,
    },
    [
      el("span", {
        cls: `nick font-semibold ${own ? "text-slate-700 dark:text-slate-200" : NAME_COLORS[hash(message.nick) % NAME_COLORS.length]}`,
        text: author,
      }),
      message.sent_at ? clock.element(message.sent_at, "text-slate-500 dark:text-slate-400") : null,
    ],
  );
  const body = el("p", { cls: `body ${BODY}`, text: message.body });
  const bubble = el("div", { cls: own ? BUBBLE_OWN : BUBBLE_OTHER }, [body]);
  const meta = el("p", {
    cls: `state mt-0.5 px-1 text-xs text-slate-500 empty:hidden dark:text-slate-400 ${own ? "text-right" : ""}`,
  });
  const column = el("div", { cls: `flex max-w-[85%] min-w-0 flex-col sm:max-w-[70%] ${own ? "items-end" : "items-start"}` }, [
    header,
    bubble,
    meta,
  ]);
  li.append(face, column);
  return li;
}

/** A discreet line in the log: joins, leaves, renames. */
export function noticeItem(text) {
  return el("li", {
    cls: "notice my-2 text-center text-xs text-slate-500 dark:text-slate-400",
    text,
  });
}

/** Group a message with the one before when the same author wrote it within 5 minutes. */
export function regroup(li) {
  if (!li || li.dataset.author === undefined) return;
  const prev = li.previousElementSibling;
  const close =
    prev &&
    prev.dataset.author === li.dataset.author &&
    Math.abs(Number(li.dataset.time) - Number(prev.dataset.time)) < 5 * 60_000;
  if (close) li.dataset.grouped = "";
  else delete li.dataset.grouped;
}
