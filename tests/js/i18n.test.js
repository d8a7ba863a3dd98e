import assert from "node:assert/strict";
import { test } from "node:test";

import { format, translator } from "../../static/chat/i18n.js";

test("format fills named placeholders", () => {
  assert.equal(format("%(a)s and %(b)s", { a: 1, b: "two" }), "1 and two");
});

test("format leaves unknown placeholders as they are", () => {
  assert.equal(format("%(a)s %(missing)s", { a: "x" }), "x %(missing)s");
});

test("format does not read inherited properties", () => {
  assert.equal(format("%(toString)s", {}), "%(toString)s");
});

test("translator finds nested keys", () => {
  const t = translator({ errors: { muted: "you are muted." } }, "en");
  assert.equal(t("errors.muted"), "you are muted.");
});

test("translator returns an unknown key as itself", () => {
  const t = translator({ errors: { muted: "x" } }, "en");
  assert.equal(t("errors.nope"), "errors.nope");
  assert.equal(t("nothing.at.all"), "nothing.at.all");
  assert.equal(t("errors.muted.deeper"), "errors.muted.deeper");
});

test("translator picks the English plural form", () => {
  const t = translator({ n: { one: "%(count)s message", other: "%(count)s messages" } }, "en");
  assert.equal(t("n", { count: 1 }), "1 message");
  assert.equal(t("n", { count: 2 }), "2 messages");
  assert.equal(t("n", { count: 0 }), "0 messages");
});

test("translator picks the Portuguese plural form for zero", () => {
  // In pt, 0 takes the singular ("one"), unlike English.
  const t = translator({ n: { one: "%(count)s mensagem", other: "%(count)s mensagens" } }, "pt-BR");
  assert.equal(t("n", { count: 0 }), "0 mensagem");
  assert.equal(t("n", { count: 5 }), "5 mensagens");
});

test("translator falls back to the other form", () => {
  const t = translator({ n: { other: "%(count)s online" } }, "en");
  assert.equal(t("n", { count: 1 }), "1 online");
});
