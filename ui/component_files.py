"""The app's own components served as one file: index.html with its stylesheets and scripts inline.

A component's frame is created late in a new visitor's page load, while the browser still fetches the page's own
JavaScript over its six connections; each stylesheet or script the frame then asks for waits in that queue (about
60 ms here). ``served_dir`` writes, once per process, a copy of the component's index.html whose
``<link rel="stylesheet" href>`` and ``<script src>`` carry the files' text, into a folder named by the content's
hash, and returns it for ``components.declare_component(path=...)``. The sources stay separate files, as they are
edited and reviewed; where the copy cannot be written (a read-only temp dir), the source folder is served as it is.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

_STYLESHEET = re.compile(r'<link rel="stylesheet" href="([\w.-]+)">')
_SCRIPT = re.compile(r'<script src="([\w.-]+)"></script>')


class InlineError(ValueError):
    """A file cannot be inlined as it is (its text would end the element it goes into)."""


def _file_text(folder: Path, name: str, closing: str) -> str:
    text = (folder / name).read_text(encoding="utf-8")
    if closing in text.lower():
        raise InlineError(f"{folder.name}/{name} contains {closing!r}: serve it as a file")
    return text


def inline_html(folder: Path) -> str:
    """The folder's index.html with each local stylesheet and script it links written into it."""
    page = (folder / "index.html").read_text(encoding="utf-8")
    page = _STYLESHEET.sub(lambda match: f"<style>\n{_file_text(folder, match[1], '</style')}\n</style>", page)
    return _SCRIPT.sub(lambda match: f"<script>\n{_file_text(folder, match[1], '</script')}\n</script>", page)


def served_dir(folder: Path) -> Path:
    """A folder holding the inlined index.html of ``folder`` (see the module's doc), else ``folder`` itself."""
    try:
        page = inline_html(folder)
        digest = hashlib.sha256(page.encode()).hexdigest()[:16]
        target = Path(tempfile.gettempdir()) / "model-builder-components" / f"{folder.name}-{digest}"
        index = target / "index.html"
        if not index.is_file():
            target.mkdir(parents=True, exist_ok=True)
            partial = target / f"index.{os.getpid()}.tmp"
            partial.write_text(page, encoding="utf-8")
            partial.replace(index)  # atomic: a second server process never serves half a file
        return target
    except (OSError, InlineError):
        return folder
