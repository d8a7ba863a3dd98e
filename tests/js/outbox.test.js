import assert from "node:assert/strict";
import { test } from "node:test";

import { newClientId, Outbox } from "../../static/chat/outbox.js";
import { MemoryStorage } from "./helpers.js";

function outboxWithIds(storage = new MemoryStorage()) {
  let n = 0;
  return new Outbox(storage, { newId: () => `id-${++n}`, now: () => 1000 });
}

test("newClientId is a UUID", () => {
  assert.match(newClientId(), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

test("add keeps a pending item", () => {
  const outbox = outboxWithIds();
  const item = outbox.add("hello");
  assert.deepEqual(
    { ...item },
    { client_id: "id-1", body: "hello", created: 1000, state: "pending", reason: null, inflight: false, retryAt: 0, attempts: 0 },
  );
  assert.equal(outbox.size, 1);
});

test("items survive a reload without their runtime fields", () => {
  const storage = new MemoryStorage();
  const outbox = outboxWithIds(storage);
  outbox.add("one");
  outbox.markInflight("id-1");
  outbox.postpone("id-1", 5000);
  const reloaded = new Outbox(storage);
  const [item] = reloaded.items;
  assert.equal(item.body, "one");
  assert.equal(item.inflight, false);
  assert.equal(item.retryAt, 0);
  assert.equal(item.attempts, 0);
});

test("a reload drops malformed saved items", () => {
  const storage = new MemoryStorage();
  storage.setItem("chat.outbox", JSON.stringify([{ client_id: "a", body: "ok" }, { body: "no id" }, null, 7]));
  assert.deepEqual(
    new Outbox(storage).items.map((i) => i.client_id),
    ["a"],
  );
});

test("a reload of unreadable storage starts empty", () => {
  const storage = new MemoryStorage();
  storage.setItem("chat.outbox", "{not json");
  assert.equal(new Outbox(storage).size, 0);
});

test("a broken storage still keeps items for the page's lifetime", () => {
  const outbox = outboxWithIds(new MemoryStorage({ broken: true }));
  outbox.add("kept in memory");
  assert.equal(outbox.size, 1);
});

test("items and get hand out frozen copies", () => {
  const outbox = outboxWithIds();
  outbox.add("hello");
  const copy = outbox.get("id-1");
  assert.ok(copy && Object.isFrozen(copy));
  assert.throws(() => {
    Object.assign(copy, { state: "failed" });
  }, TypeError);
  assert.equal(outbox.items[0].state, "pending");
});

test("remove says whether the item was there", () => {
  const outbox = outboxWithIds();
  outbox.add("hello");
  assert.equal(outbox.remove("id-1"), true);
  assert.equal(outbox.remove("id-1"), false);
  assert.equal(outbox.size, 0);
});

test("fail marks an item failed with its reason", () => {
  const outbox = outboxWithIds();
  outbox.add("hello");
  outbox.markInflight("id-1");
  outbox.fail("id-1", "too long");
  const item = outbox.get("id-1");
  assert.equal(item?.state, "failed");
  assert.equal(item?.reason, "too long");
  assert.equal(item?.inflight, false);
});

test("retry makes a failed item pending again from scratch", () => {
  const outbox = outboxWithIds();
  outbox.add("hello");
  outbox.postpone("id-1", 9000);
  outbox.fail("id-1", "no");
  outbox.retry("id-1");
  const item = outbox.get("id-1");
  assert.equal(item?.state, "pending");
  assert.equal(item?.reason, null);
  assert.equal(item?.attempts, 0);
  assert.equal(item?.retryAt, 0);
});

test("postpone counts the attempt and sets when to retry", () => {
  const outbox = outboxWithIds();
  outbox.add("hello");
  outbox.markInflight("id-1");
  outbox.postpone("id-1", 4000);
  outbox.postpone("id-1", 6000);
  const item = outbox.get("id-1");
  assert.equal(item?.attempts, 2);
  assert.equal(item?.retryAt, 6000);
  assert.equal(item?.inflight, false);
});

test("due lists pending items not in flight, in order", () => {
  const outbox = outboxWithIds();
  outbox.add("one");
  outbox.add("two");
  outbox.add("three");
  outbox.markInflight("id-1");
  outbox.fail("id-2", "no");
  assert.deepEqual(
    outbox.due(1000).ready.map((i) => i.body),
    ["three"],
  );
});

test("due stops at an item that must wait, keeping the order", () => {
  const outbox = outboxWithIds();
  outbox.add("one");
  outbox.add("two");
  outbox.add("three");
  outbox.postpone("id-2", 1500);
  const { ready, wait } = outbox.due(1000);
  assert.deepEqual(
    ready.map((i) => i.body),
    ["one"],
  );
  assert.equal(wait, 500);
});

test("resetInflight sends everything unacknowledged again", () => {
  const outbox = outboxWithIds();
  outbox.add("one");
  outbox.markInflight("id-1");
  assert.equal(outbox.due(1000).ready.length, 0);
  outbox.resetInflight();
  assert.equal(outbox.due(1000).ready.length, 1);
});
