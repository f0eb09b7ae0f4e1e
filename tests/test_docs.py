"""The documentation site: built by MkDocs from docs/ and mkdocs.yml, then opened in a real
headless Chromium as a reader would — the home page and a deep page render with the navigation
and a working search box. The site is built once into a temporary directory
(``mkdocs build --strict``, so a broken link or a docstring warning fails here too), or taken
from ``$MMBENCH_DOCS_SITE`` when a build is at hand. Chromium comes from the system, as in
tests/test_browser.py.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_browser import CHROMIUM_ARGS, TIMEOUT_MS, Page, chromium_path

REPO = Path(__file__).resolve().parent.parent


def test_the_benchmarks_page_links_every_result_file() -> None:
    """Result files are published beside the site's pages but kept out of its nav; the
    benchmarks page is how a reader reaches each one."""
    page = (REPO / "docs" / "benchmarks" / "index.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(results/([^)#]+\.md)\)", page))
    files = {p.name for p in (REPO / "benchmarks" / "results").glob("*.md")}
    assert files - linked == set(), "link these from docs/benchmarks/index.md"
    assert linked - files == set(), "linked but missing"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built site: ``$MMBENCH_DOCS_SITE``, else ``mkdocs build --strict`` into a temp dir."""
    if os.environ.get("MMBENCH_DOCS_SITE"):
        return Path(os.environ["MMBENCH_DOCS_SITE"])
    pytest.importorskip("mkdocs", reason='pip install -e ".[docs]"')
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(REPO)},
        timeout=240,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    return out


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    """The site over HTTP on localhost (search loads its index with fetch, which file:// refuses)."""
    handler = functools.partial(QuietHandler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # no request log on stderr
        pass


@pytest.fixture(scope="module")
def docs_browser() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium on PATH (apt-get install chromium, or set MMBENCH_CHROMIUM)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        yield context
        browser.close()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    import tempfile

    path = Path(os.environ.get("MMBENCH_SCREENSHOTS") or tempfile.mkdtemp(prefix="mmbench-shots-"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def nav_titles(page: Any) -> list[str]:
    links = page.locator("nav.md-nav--primary .md-nav__link")
    return [t.strip() for t in links.all_inner_texts() if t.strip()]


@pytest.mark.browser
def test_home_page_renders_with_nav_and_a_search_that_finds_a_page(
    docs_browser: Any, served: str, screenshots: Path
) -> None:
    with Page(docs_browser) as tab:
        page = tab.page
        page.goto(f"{served}/")
        assert page.locator("article h1").inner_text().rstrip("¶ \n") == "mmbench"
        titles = nav_titles(page)
        for title in ("Getting started", "The search", "The regression gate", "API reference"):
            assert title in titles, titles
        search = page.locator("input.md-search__input")
        assert search.count() == 1
        search.click()
        search.press_sequentially("regression gate", delay=20)  # the search reacts to keys
        hit = page.locator(".md-search-result__item a[href*='/regression-gate/']:visible").first
        hit.wait_for()
        page.screenshot(path=str(screenshots / "docs-search.png"))
        hit.click()  # the hit leads to the page
        page.wait_for_url("**/regression-gate/**")
        assert page.locator("article h1").inner_text().rstrip("¶ \n") == "The regression gate"
        assert tab.errors == []


@pytest.mark.browser
def test_a_deep_page_renders_its_content_nav_and_search_box(
    docs_browser: Any, served: str, screenshots: Path
) -> None:
    with Page(docs_browser) as tab:
        page = tab.page
        page.goto(f"{served}/regression-gate/")
        assert page.locator("article h1").inner_text().rstrip("¶ \n") == "The regression gate"
        assert page.locator("article table").count() >= 1
        active = page.locator("nav.md-nav--primary .md-nav__link--active").first
        assert active.inner_text().strip() == "The regression gate"
        assert "Getting started" in nav_titles(page)
        assert page.locator("input.md-search__input").count() == 1
        page.screenshot(path=str(screenshots / "docs-regression-gate.png"), full_page=True)
        assert tab.errors == []
