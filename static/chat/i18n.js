// UI strings come from the server (Django's gettext) through the json_script config.

/**
 * A string, or its plural forms for Intl.PluralRules ("one", "other"), or a group of them.
 * @typedef {{[key: string]: string | Strings}} Strings
 * @typedef {{[name: string]: string | number}} Params
 * @typedef {(key: string, params?: Params) => string} Translate
 */

/**
 * Replace Python-style `%(name)s` placeholders with values.
 * @param {string} template
 * @param {Params} [params]
 */
export function format(template, params = {}) {
  return template.replace(/%\((\w+)\)s/g, (match, key) =>
    Object.hasOwn(params, key) ? String(params[key]) : match,
  );
}

/**
 * A translator over `strings`: t("key", {count}) picks the plural form of an
 * {one, other} entry with Intl.PluralRules for the page's language. An unknown key comes
 * back as itself.
 * @param {Strings} strings
 * @param {string} lang
 * @returns {Translate}
 */
export function translator(strings, lang) {
  const rules = new Intl.PluralRules(lang);
  return function t(key, params = {}) {
    /** @type {string | Strings | undefined} */
    let entry = strings;
    for (const part of key.split(".")) entry = typeof entry === "object" ? entry[part] : undefined;
    if (entry == null) return key;
    if (typeof entry === "object") {
      const form = rules.select(Number(params.count ?? 0));
      entry = entry[form] ?? entry.other;
    }
    return typeof entry === "string" ? format(entry, params) : key;
  };
}
