"""The built book, as a reader's browser sees it (run after `make book`: `make browser`).

* every local link and image in every page points to a file that exists;
* headless Chromium (Debian's package) opens every page over HTTP on the loopback interface, and
  no page of ours raises a JavaScript error, logs a console error from our own origin, or shows a
  broken image; a screenshot of each page is saved under ``_build/screenshots``.

Resources from other origins (a CDN the offline CI machine cannot reach) are not our pages' errors
and are ignored.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("BOOK_HTML", ROOT / "_build" / "html"))
SCREENSHOTS = Path(os.environ.get("BOOK_SCREENSHOTS", ROOT / "_build" / "screenshots"))


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


@pytest.mark.parametrize("page", book_pages(), ids=lambda page: str(page.relative_to(HTML)))
def test_page_renders_without_javascript_errors_or_broken_images(page, server, browser):
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
    tab.goto(url, wait_until="load")
    tab.wait_for_timeout(300)
    broken = tab.evaluate(
        """origin => Array.from(document.images)
            .filter(img => img.currentSrc.startsWith(origin) && (!img.complete || img.naturalWidth === 0))
            .map(img => img.currentSrc)""",
        server,
    )
    problems.extend(f"broken image: {src}" for src in broken)
    shot = SCREENSHOTS / relative.replace("/", "__").replace(".html", ".png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(shot), full_page=True)
    tab.close()
    assert not problems, f"{relative}: {problems}"
