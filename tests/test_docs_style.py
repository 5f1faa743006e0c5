"""
The rendered documentation is readable: the pages are built, opened in a
headless Chromium at a desktop and a phone width, and measured there (what
the browser computes, not what the style sheet says).
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("cli.html", "guides/operators.html", "guides/lookups.html", "guides/ping.html")
WIDTHS = (1280, 420)

CHECK = (Path(__file__).parent / "_docs_check.js").read_text()
"""The script run in each page once it is laid out (see its header)."""


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@cache
def built() -> Path:
    """The documentation built once, into a temporary directory."""
    out = Path(tempfile.mkdtemp(prefix="netproto-docs-"))
    atexit.register(shutil.rmtree, out, True)
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(ROOT / "docs"), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"sphinx-build failed:\n{result.stderr[-3000:]}")
    return out


def measure(page: str, width: int) -> dict[str, Any]:
    """What the browser finds in *page* at *width* CSS pixels."""
    browser = _chromium()
    assert browser is not None
    source = built() / page
    checked = source.with_name(f"{source.stem}-check.html")
    checked.write_text(source.read_text().replace("</body>", f"<script>{CHECK}</script></body>"))
    result = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={width},2000",
            "--virtual-time-budget=3000",
            "--dump-dom",
            checked.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    match = re.search(r'<pre id="netproto-check">(.*?)</pre>', result.stdout, re.S)
    assert match is not None, f"no measurement from {browser}: {result.stderr[-2000:]}"
    text = match.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
    found: dict[str, Any] = json.loads(text.replace("&amp;", "&"))
    return found


class RenderedTests(SynchronousTestCase):
    """The command reference and the guides, as a browser shows them."""

    skip = (
        None
        if _chromium() and importlib.util.find_spec("sphinx") is not None
        else "chromium or sphinx is not installed (pip install -e '.[docs]')"
    )

    def test_readable(self) -> None:
        """
        At 1280 and 420 pixels: no code block scrolls sideways (JSON and log
        lines wrap), console transcripts carry no token colours (no red
        numbers in a command line) and every text in them has a WCAG AA
        contrast (4.5:1) with its background, no command name in a table is
        broken across lines or its row split, no developer's path is shown.
        """
        for page in PAGES:
            for width in WIDTHS:
                with self.subTest(page=page, width=width):
                    found = measure(page, width)
                    self.assertEqual(
                        found,
                        {
                            "overflowing": [],
                            "coloured": [],
                            "faint": [],
                            "split_names": [],
                            "split_rows": [],
                            "paths": [],
                        },
                    )
