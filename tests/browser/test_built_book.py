"""The built book, as a reader's browser sees it (run after `make book`: `make browser`).

* every local link and image in every page points to a file that exists;
* the site serves its own MathJax (``_static/mathjax``, the release the Makefile pins): every page with
  a formula loads it, and no page names a MathJax CDN;
* headless Chromium opens every page over HTTP on the loopback interface, and no page of ours raises
  a JavaScript error, logs a console error from our own origin, requests a file the site lacks, or
  shows a broken image; MathJax typesets every formula (no raw TeX delimiter in the visible text, no
  formula left untypeset, no TeX error, no undefined macro); a screenshot of each page is saved under
  ``_build/screenshots``;
* the formula check itself fails on a page with raw TeX, a TeX error and an undefined macro.

Resources from other origins (a CDN the offline CI machine cannot reach) are not our pages' errors
and are ignored.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("BOOK_HTML", ROOT / "_build" / "html"))
SCREENSHOTS = Path(os.environ.get("BOOK_SCREENSHOTS", ROOT / "_build" / "screenshots"))
MATHJAX = HTML / "_static" / "mathjax"
MATHJAX_VERSION = re.search(r"^MATHJAX_VERSION\s*:=\s*(\S+)", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M).group(1)

# Run in the page once it has loaded: waits for MathJax's first typesetting, then lists what a reader
# would see as untypeset math. Code (pre, code) may show TeX on purpose and is not looked at.
MATH_PROBLEMS_JS = r"""
async () => {
  if (document.readyState !== "complete") await new Promise(loaded => addEventListener("load", loaded, {once: true}));
  const problems = [];
  const formulas = Array.from(document.querySelectorAll(".math"));
  const startup = window.MathJax && window.MathJax.startup;
  if (startup && startup.promise) {
    const late = new Promise((_, fail) => setTimeout(() => fail(new Error("timed out")), 60000));
    try { await Promise.race([startup.promise, late]); } catch (error) { problems.push(`MathJax: ${error}`); }
  } else if (formulas.length) {
    return [`${formulas.length} formulas, and MathJax did not load`];
  }
  const snippet = text => text.replace(/\s+/g, " ").trim().slice(0, 80);
  for (const item of (startup && startup.document ? Array.from(startup.document.math) : [])) {
    const mml = startup.toMML(item.root);
    if (/<merror/.test(mml)) problems.push(`TeX error in ${snippet(item.math)}`);
    const undefinedMacro = mml.match(/<mtext[^>]*mathcolor="red"[^>]*>(\\[A-Za-z]+)/);
    if (undefinedMacro) problems.push(`undefined macro ${undefinedMacro[1]} in ${snippet(item.math)}`);
  }
  for (const formula of formulas) {
    if (!formula.querySelector("mjx-container")) problems.push(`formula not typeset: ${snippet(formula.textContent)}`);
  }
  const tex = /\\\(|\\\)|\\\[|\\\]|\$\$|\\begin\{|\$[^$\n]*\\[A-Za-z]+[^$\n]*\$/;
  const walker = document.createTreeWalker(document.body || document.documentElement, NodeFilter.SHOW_TEXT, {acceptNode(node) {
    const parent = node.parentElement;
    if (!parent || parent.closest("pre, code, script, style, textarea, mjx-container, .highlight")) {
      return NodeFilter.FILTER_REJECT;
    }
    return parent.checkVisibility() ? NodeFilter.FILTER_ACCEPT : NodeFilter.FILTER_REJECT;
  }});
  while (walker.nextNode()) {
    if (tex.test(walker.currentNode.nodeValue)) problems.push(`raw TeX in the text: ${snippet(walker.currentNode.nodeValue)}`);
  }
  return problems;
}
"""


def book_pages() -> list[Path]:
    """The book's own pages: every HTML file outside Sphinx's static folders and the JupyterLite app."""
    skipped = {"_static", "_sources", "lite", "_images"}
    return sorted(
        page for page in HTML.rglob("*.html")
        if not skipped & set(page.relative_to(HTML).parts) and page.name not in {"genindex.html", "search.html"}
    )


def local_targets(page: Path) -> list[tuple[str, str]]:
    """(attribute value, tag) for every link, image or script in the page that points to a local file."""
    soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
    found = []
    for tag, attribute in (("a", "href"), ("img", "src"), ("script", "src"), ("link", "href"), ("iframe", "src")):
        for element in soup.find_all(tag):
            value = element.get(attribute)
            if not value:
                continue
            parsed = urlparse(value)
            if parsed.scheme or parsed.netloc or value.startswith(("#", "mailto:", "data:", "javascript:")):
                continue
            found.append((value, tag))
    return found


def math_problems(tab) -> list[str]:
    """What the open page shows as untypeset math, after MathJax has done its first typesetting.

    A page that sends the browser on (the site's index.html) is checked where it lands.
    """
    playwright_sync = pytest.importorskip("playwright.sync_api")
    for attempt in range(3):
        try:
            return tab.evaluate(MATH_PROBLEMS_JS)
        except playwright_sync.Error as error:
            if "context was destroyed" not in str(error) or attempt == 2:
                raise
            tab.wait_for_load_state("load")
    raise AssertionError("unreachable")


def test_the_book_was_built():
    assert (HTML / "index.html").exists(), f"no built book at {HTML}: run `make book` first"
    assert len(book_pages()) >= 3


@pytest.mark.parametrize("page", book_pages(), ids=lambda page: str(page.relative_to(HTML)))
def test_local_links_and_images_point_to_existing_files(page):
    missing = []
    for value, tag in local_targets(page):
        target = (page.parent / unquote(urlparse(value).path)).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            missing.append(f"<{tag}> {value}")
    assert not missing, f"{page.relative_to(HTML)} links to missing files: {missing}"


def test_the_site_serves_the_pinned_mathjax_with_its_fonts():
    assert (MATHJAX / "tex-mml-chtml.js").is_file(), f"no MathJax at {MATHJAX}: `make mathjax` (run by `make book`)"
    assert json.loads((MATHJAX / "package.json").read_text(encoding="utf-8"))["version"] == MATHJAX_VERSION
    assert (MATHJAX / "output" / "chtml" / "fonts" / "woff-v2" / "MathJax_Main-Regular.woff").is_file()
    assert (MATHJAX / "input" / "tex" / "extensions" / "ams.js").is_file() and (MATHJAX / "LICENSE").is_file()


@pytest.mark.parametrize("page", book_pages(), ids=lambda page: str(page.relative_to(HTML)))
def test_pages_with_formulas_load_the_sites_own_mathjax_and_none_names_a_mathjax_cdn(page):
    text = page.read_text(encoding="utf-8")
    relative = page.relative_to(HTML)
    remote = sorted(set(re.findall(r"(?:https?:)?//[^\s\"'<>]*mathjax[^\s\"'<>]*", text, re.I)))
    assert not remote, f"{relative} names a MathJax on another site: {remote}"
    soup = BeautifulSoup(text, "html.parser")
    if soup.select(".math"):
        local = [script["src"] for script in soup.find_all("script", src=True)
                 if urlparse(script["src"]).path.endswith("_static/mathjax/tex-mml-chtml.js")]
        assert local, f"{relative} has formulas but does not load the site's MathJax"
        assert all((page.parent / unquote(urlparse(src).path)).resolve() == (MATHJAX / "tex-mml-chtml.js").resolve()
                   for src in local)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


def test_the_formula_check_fails_on_raw_tex_a_tex_error_and_an_undefined_macro(browser, tmp_path):
    """The check used on every page, run on pages made to fail it (and one made to pass)."""
    assert (MATHJAX / "tex-mml-chtml.js").is_file(), f"no MathJax at {MATHJAX}: run `make book` first"
    (tmp_path / "_static").symlink_to(HTML / "_static", target_is_directory=True)
    head = ('<script>window.MathJax = {"options": {"processHtmlClass": "tex2jax_process|mathjax_process|math"}}'
            '</script><script defer src="_static/mathjax/tex-mml-chtml.js"></script>')
    good = r'<p>fine: <span class="math notranslate nohighlight">\(\eta > 2/\lambda\)</span></p>'
    pages = {
        "good.html": head + f'<body class="tex2jax_ignore mathjax_ignore">{good}'
                            r'<pre>code may show \( and $$ as they are</pre></body>',
        "broken.html": head + f'<body class="tex2jax_ignore mathjax_ignore">{good}'
                              r'<p>an error: <span class="math notranslate nohighlight">\(x^1^2\)</span></p>'
                              r'<p>undefined: <span class="math notranslate nohighlight">\(\etaa x\)</span></p>'
                              r'<p>raw: \(\eta > 2/\lambda\) and $\alpha$</p></body>',
        "no_mathjax.html": f"<body>{good}</body>",
    }
    for name, html in pages.items():
        (tmp_path / name).write_text(f"<!DOCTYPE html><html><head>{html}</html>", encoding="utf-8")
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    found = {}
    try:
        for name in pages:
            tab = browser.new_page()
            tab.goto(f"http://127.0.0.1:{httpd.server_address[1]}/{name}", wait_until="load")
            found[name] = math_problems(tab)
            tab.close()
    finally:
        httpd.shutdown()
    assert found["good.html"] == []
    broken = "\n".join(found["broken.html"])
    assert "TeX error in x^1^2" in broken
    assert "undefined macro \\etaa in \\etaa x" in broken
    assert "raw TeX in the text: raw: \\(\\eta > 2/\\lambda\\) and $\\alpha$" in broken
    assert len(found["broken.html"]) == 3, found["broken.html"]
    assert found["no_mathjax.html"] == ["1 formulas, and MathJax did not load"]


@pytest.mark.parametrize("page", book_pages(), ids=lambda page: str(page.relative_to(HTML)))
def test_page_renders_without_javascript_errors_or_broken_images(page, server, browser, missing_paths):
    relative = page.relative_to(HTML).as_posix()
    url = f"{server}/{relative}"
    problems: list[str] = []
    tab = browser.new_page(viewport={"width": 1280, "height": 900})
    tab.on("pageerror", lambda error: problems.append(f"JavaScript error: {error}"))

    def on_console(message):
        source = (message.location or {}).get("url", "")
        if message.type == "error" and source.startswith(server):
            problems.append(f"console error: {message.text} ({source})")

    tab.on("console", on_console)
    missing_before = len(missing_paths)
    tab.goto(url, wait_until="load")
    problems.extend(math_problems(tab))
    tab.wait_for_timeout(300)
    broken = tab.evaluate(
        """origin => Array.from(document.images)
            .filter(img => img.currentSrc.startsWith(origin) && (!img.complete || img.naturalWidth === 0))
            .map(img => img.currentSrc)""",
        server,
    )
    problems.extend(f"broken image: {src}" for src in broken)
    problems.extend(f"request for a file the site lacks: {path}" for path in missing_paths[missing_before:])
    shot = SCREENSHOTS / relative.replace("/", "__").replace(".html", ".png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(shot), full_page=True)
    landed = tab.url
    tab.close()
    where = relative if landed == url else f"{relative} (which sends the browser on to {landed[len(server) + 1:]})"
    assert not problems, f"{where}: {problems}"
