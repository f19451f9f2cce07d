"""Small fixes to the HTML the book's theme stack emits.

sphinx-thebe registers its inline configuration script once per read phase, and Jupyter Book runs
that phase twice, so every page declared ``const THEBE_JS_URL`` twice: a JavaScript ``SyntaxError``
on every page. This extension drops exact duplicates from each page's script list.
"""

from __future__ import annotations

from typing import Any


def _drop_duplicate_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, str]] = set()
    unique = []
    for script in scripts:
        # the same inline script arrives once with filename None and once with "": treat them alike
        filename = str(getattr(script, "filename", script) or "")
        key = (filename, repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", _drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
