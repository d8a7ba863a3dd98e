"""Static files in production: hashed names, compressed copies, cached for a year.

`collectstatic` copies every file into STATIC_ROOT under a name that carries a hash of its
content (`chat/chat.e51d960c9f95.js`), writes gzip and brotli copies beside each, and
records the names in a manifest; `{% static %}` then renders the hashed name, and
servestatic serves those names with `Cache-Control: max-age=315360000, public, immutable`
(a changed file gets a new name, so a browser never needs to ask again) and the compressed
copy that the browser accepts. Used when DEBUG is off; `make run` serves static/ as it is.
"""

from __future__ import annotations

from servestatic.storage import CompressedManifestStaticFilesStorage


class ChatStaticFilesStorage(CompressedManifestStaticFilesStorage):
    """servestatic's manifest storage that also rewrites ES module imports.

    The page's scripts import each other by relative path (`import ... from "./render.js"`);
    Django rewrites those to the hashed names too (`support_js_module_import_aggregation`),
    so a new release never mixes a cached old module with a new one.
    """

    support_js_module_import_aggregation = True
