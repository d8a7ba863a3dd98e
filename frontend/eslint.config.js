// ESLint for the page's modules (static/chat/, browser globals) and their unit tests
// (tests/js/, Node globals): `npm run eslint` in frontend/ (`make lint` runs it).
import js from "@eslint/js";
import globals from "globals";

export default [
  // Run from the repository's root (see package.json): the patterns are relative to it.
  js.configs.recommended,
  {
    files: ["static/chat/*.js"],
    languageOptions: { ecmaVersion: 2024, sourceType: "module", globals: globals.browser },
  },
  {
    files: ["tests/js/**/*.js", "frontend/*.js"],
    languageOptions: { ecmaVersion: 2024, sourceType: "module", globals: globals.node },
  },
];
