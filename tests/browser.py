"""A page opened in a real headless browser (Debian's Chromium): its console and a screenshot."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Chromium prints each console message (log, warning, error, uncaught exception) as a
# `:CONSOLE` line on stderr with --enable-logging=stderr, whatever its level.
CONSOLE = re.compile(r"^.*(?::CONSOLE|Uncaught).*$", re.MULTILINE)


@dataclass(frozen=True)
class Opened:
    returncode: int
    console: list[str]  # every console line: a page without scripts has none
    screenshot: Path


def chromium() -> str | None:
    return shutil.which("chromium")


def open_page(page: Path, screenshot: Path, *, size: str = "1200,2400") -> Opened:
    """Load `page` (file://) with the network closed to everything but the page, and write a
    PNG of it. A fresh profile each time."""
    binary = chromium()
    assert binary is not None
    with tempfile.TemporaryDirectory(prefix="cnss-edi-chromium-") as profile:
        done = subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",  # as root, Chromium refuses its sandbox
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
                "--disable-quic",
                "--host-resolver-rules=MAP * ~NOTFOUND",  # any remote fetch would fail
                f"--user-data-dir={profile}",
                "--enable-logging=stderr",
                "--v=0",
                f"--screenshot={screenshot}",
                f"--window-size={size}",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    return Opened(done.returncode, CONSOLE.findall(done.stderr), screenshot)
