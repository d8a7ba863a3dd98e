import assert from "node:assert/strict";
import { test } from "node:test";

import { Store } from "../../static/chat/store.js";
import { MemoryStorage } from "./helpers.js";

function newStore({ local = new MemoryStorage(), session = new MemoryStorage() } = {}) {
  return new Store({ local, session, limits: { max_body: 2000, typing_interval: 2 } });
}

const hello = { session: "s1", nick: "Ana", limits: { rate: 10, rate_period: 10 }, user: null };

test("the nickname comes from local storage", () => {
  const local = new MemoryStorage();
  local.setItem("chat.nick", "Bia");
  assert.equal(newStore({ local }).nick(), "Bia");
});

test("a broken storage gives an empty nickname, not an error", () => {
  const broken = new MemoryStorage({ broken: true });
  const store = newStore({ local: broken, session: broken });
  assert.equal(store.nick(), "");
  store.setNick("Ana");
  assert.equal(store.nick(), "Ana");
});

test("greet takes the session, limits and the server's name", () => {
  const store = newStore();
  assert.equal(store.isFirstHello(), true);
  store.greet(hello);
  assert.equal(store.isFirstHello(), false);
  assert.equal(store.session(), "s1");
  assert.equal(store.nick(), "Ana");
  assert.equal(store.confirmedNick(), "Ana");
  assert.equal(store.limits().rate, 10);
  assert.equal(store.limits().max_body, 2000);
});

test("greet keeps a name the page asked for that the server has not confirmed", () => {
  const store = newStore();
  store.setNick("Ana Clara");
  store.greet(hello);
  assert.equal(store.nick(), "Ana Clara");
  store.revertNick();
  assert.equal(store.nick(), "Ana");
});

test("greet reports a change of the moderator role", () => {
  const store = newStore();
  assert.equal(store.greet(hello), false);
  assert.equal(store.greet({ ...hello, user: { name: "Mo", moderator: true } }), true);
  assert.equal(store.isModerator(), true);
  assert.equal(store.greet({ ...hello, user: { name: "Mo", moderator: true } }), false);
});

test("a malformed user is a guest", () => {
  const store = newStore();
  store.greet({ ...hello, user: { moderator: true } });
  assert.equal(store.user(), null);
  assert.equal(store.isModerator(), false);
});

test("own sessions survive a reload of the tab", () => {
  const session = new MemoryStorage();
  newStore({ session }).greet(hello);
  const reloaded = newStore({ session });
  assert.equal(reloaded.isOwn({ session: "s1" }), true);
  assert.equal(reloaded.isOwn({ session: "s2" }), false);
});

test("a message with one of this tab's client ids is own", () => {
  const session = new MemoryStorage();
  newStore({ session }).addOwnClientId("c1");
  assert.equal(newStore({ session }).isOwn({ session: "elsewhere", client_id: "c1" }), true);
});

test("own for moderation includes the same account elsewhere", () => {
  const store = newStore();
  store.greet({ ...hello, user: { name: "Mo", moderator: true } });
  assert.equal(store.isOwnForModeration({ session: "x", nick: "Mo", account: true }), true);
  assert.equal(store.isOwnForModeration({ session: "x", nick: "Mo", account: false }), false);
});

test("updatePresence without a list keeps the list and changes the count", () => {
  const store = newStore();
  store.greet(hello);
  store.updatePresence({ online: [{ session: "s1", nick: "Ana" }], count: 1 });
  const update = store.updatePresence({ count: 300 });
  assert.equal(update?.listChanged, false);
  assert.equal(store.presence().count, 300);
  assert.equal(store.presence().list?.size, 1);
});

test("updatePresence confirms the name in this socket's own entry", () => {
  const store = newStore();
  store.greet(hello);
  store.setNick("Ana 2");
  store.updatePresence({ online: [{ session: "s1", nick: "Ana 2" }], count: 1 });
  assert.equal(store.confirmedNick(), "Ana 2");
});

test("updatePresence says whether both lists were complete", () => {
  const store = newStore();
  store.updatePresence({ online: [{ session: "a", nick: "A" }], count: 1 });
  assert.equal(store.updatePresence({ online: [{ session: "b", nick: "B" }], count: 1 })?.complete, true);
  assert.equal(store.updatePresence({ online: [{ session: "b", nick: "B" }], count: 5 })?.complete, false);
});

test("typing notices go out at most once per interval", () => {
  const store = newStore();
  assert.equal(store.typingNoticeDue(10_000), true);
  store.typingNoticeSent(10_000);
  assert.equal(store.typingNoticeDue(11_999), false);
  assert.equal(store.typingNoticeDue(12_000), true);
});

test("who is typing, in order", () => {
  const store = newStore();
  store.startTyping("a", "Ana");
  store.startTyping("b", "Bia");
  assert.deepEqual(store.typingNicks(), ["Ana", "Bia"]);
  assert.equal(store.stopTyping("a"), true);
  assert.equal(store.stopTyping("a"), false);
  assert.deepEqual(store.clearTyping(), ["b"]);
  assert.deepEqual(store.typingNicks(), []);
});

test("scrolling back to the bottom clears the unseen count", () => {
  const store = newStore();
  store.setAtBottom(false);
  store.addUnseen();
  store.addUnseen();
  assert.equal(store.unseen(), 2);
  store.setAtBottom(true);
  assert.equal(store.unseen(), 0);
});

test("at most one header panel is open", () => {
  const store = newStore();
  store.setOpenPanel("online");
  store.setOpenPanel("nick");
  assert.equal(store.openPanel(), "nick");
});

test("gap repair counts fetches per contiguous id", () => {
  const store = newStore();
  assert.equal(store.gapTry(4), 0);
  store.noteGapTry(4);
  store.noteGapTry(4);
  assert.equal(store.gapTry(4), 2);
  assert.equal(store.gapTry(5), 0);
});

test("a refused page size falls back to the server's default", () => {
  const store = newStore();
  assert.equal(store.apiPage(), 500);
  store.dropApiPage();
  assert.equal(store.apiPage(), null);
});
