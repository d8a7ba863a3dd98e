import assert from "node:assert/strict";
import { test } from "node:test";

import { Timeline } from "../../static/chat/timeline.js";

/** @param {number} id */
const message = (id) => ({ id, nick: "Ana", body: "hi", sent_at: "2026-11-29T14:02:00Z" });

test("add holds a message once", () => {
  const timeline = new Timeline();
  assert.equal(timeline.add(message(1)), true);
  assert.equal(timeline.add(message(1)), false);
  assert.equal(timeline.size, 1);
  assert.equal(timeline.get(1)?.body, "hi");
});

test("add refuses a message without an integer id", () => {
  const timeline = new Timeline();
  assert.equal(timeline.add({ ...message(1), id: 1.5 }), false);
  assert.equal(timeline.size, 0);
});

test("a skipped id is a gap", () => {
  const timeline = new Timeline();
  timeline.add(message(1));
  timeline.add(message(3));
  assert.equal(timeline.hasGap(), true);
  assert.equal(timeline.contiguous, 1);
  assert.equal(timeline.maxId, 3);
});

test("the missing message closes the gap", () => {
  const timeline = new Timeline();
  timeline.add(message(1));
  timeline.add(message(3));
  timeline.add(message(2));
  assert.equal(timeline.hasGap(), false);
  assert.equal(timeline.contiguous, 3);
});

test("acceptUpTo starts the run at the first history message", () => {
  const timeline = new Timeline();
  timeline.add(message(40));
  timeline.add(message(41));
  assert.equal(timeline.hasGap(), true);
  timeline.acceptUpTo(41);
  assert.equal(timeline.hasGap(), false);
});

test("a retracted id counts as a hole and is refused later", () => {
  const timeline = new Timeline();
  timeline.add(message(1));
  timeline.add(message(3));
  assert.equal(timeline.retract(2), false);
  assert.equal(timeline.hasGap(), false);
  assert.equal(timeline.add(message(2)), false);
});

test("retracting a held message forgets it but keeps maxId", () => {
  const timeline = new Timeline();
  timeline.add(message(1));
  timeline.add(message(2));
  assert.equal(timeline.retract(2), true);
  assert.equal(timeline.has(2), false);
  assert.equal(timeline.maxId, 2);
});

test("retract ignores ids that cannot be messages", () => {
  const timeline = new Timeline();
  assert.equal(timeline.retract(0), false);
  assert.equal(timeline.retract(-3), false);
  assert.equal(timeline.retracted.size, 0);
});

test("skipHole gives up on the ids before the next held one", () => {
  const timeline = new Timeline();
  timeline.add(message(1));
  timeline.add(message(4));
  timeline.add(message(6));
  timeline.skipHole();
  assert.equal(timeline.contiguous, 4);
  assert.equal(timeline.hasGap(), true);
  timeline.skipHole();
  assert.equal(timeline.hasGap(), false);
});

test("skipHole with nothing held past the run accepts everything", () => {
  const timeline = new Timeline();
  timeline.add(message(1));
  timeline.add(message(3));
  timeline.retract(3);
  timeline.skipHole();
  assert.equal(timeline.contiguous, 3);
  assert.equal(timeline.hasGap(), false);
});
