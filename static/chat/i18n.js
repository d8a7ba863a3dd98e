// UI strings come from the server (Django's gettext) through the json_script config.

/** Replace Python-style `%(name)s` placeholders with values. */
export function format(template, params = {}) {
  return template.replace(/%\((\w+)\)s/g, (match, key) =>
    Object.hasOwn(params, key) ? String(params[key]) : match,
  );
}

/**
 * A translator over `strings`: t("key", {count}) picks the plural form of an
 * {one, other} entry with Intl.PluralRules for the page's language.
 */
export function translator(strings, lang) {
  const rules = new Intl.PluralRules(lang);
  return function t(key, params = {}) {
    let entry = strings;
    for (const part of key.split(".")) entry = entry?.[part];
    if (entry == null) return key;
    if (typeof entry === "object") {
      const form = rules.select(Number(params.count ?? 0));
      entry = entry[form] ?? entry.other;
    }
    return format(entry, params);
  };
}
