import assert from "node:assert/strict";
import { test } from "node:test";

import { counterState, frameBytes } from "../../static/chat/composer.js";
import { nickProblem } from "../../static/chat/nick.js";
import { typingText } from "../../static/chat/typing.js";
import { t } from "./helpers.js";

test("the counter hides below 80 % of the limit", () => {
  assert.deepEqual(counterState(1599, 2000), { kind: "hidden" });
});

test("the counter shows what is left near the limit", () => {
  assert.deepEqual(counterState(1990, 2000), { kind: "left", count: 10 });
});

test("the counter shows what is over the limit", () => {
  assert.deepEqual(counterState(2003, 2000), { kind: "over", count: 3 });
});

test("no limit, no counter", () => {
  assert.deepEqual(counterState(1_000_000, 0), { kind: "hidden" });
});

test("frameBytes counts UTF-8 bytes of the whole frame", () => {
  assert.equal(frameBytes("é") - frameBytes("e"), 1);
});

test("nickProblem accepts a normal name", () => {
  assert.equal(nickProblem("Ana", 32, t), "");
});

test("nickProblem refuses an empty name", () => {
  assert.equal(nickProblem("", 32, t), "Enter a nickname.");
});

test("nickProblem counts code points against the limit", () => {
  assert.equal(nickProblem("😀".repeat(32), 32, t), "");
  assert.equal(nickProblem("a".repeat(33), 32, t), "At most 32 characters.");
});

test("nickProblem refuses control characters", () => {
  assert.equal(nickProblem("a\u200bb", 32, t), "Control characters are not allowed.");
});

test("typingText names one or two people, then sums up", () => {
  assert.equal(typingText([], t), "");
  assert.equal(typingText(["Bia"], t), "Bia is typing…");
  assert.equal(typingText(["Bia", "Caio"], t), "Bia and Caio are typing…");
  assert.equal(typingText(["A", "B", "C"], t), "Several people are typing…");
});
