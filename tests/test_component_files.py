"""The app's components are served as one inlined index.html (ui.component_files), falling back to their folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from ui.component_files import InlineError, inline_html, served_dir

UI = Path(__file__).resolve().parent.parent / "ui"


@pytest.mark.parametrize(("folder", "files"), [
    ("dnd_component", ["dnd.css", "Sortable.min.js", "dnd.js"]),
    ("graph_component", ["viewer.css", "viewer.js"]),
])  # fmt: skip
def test_each_component_is_served_as_one_page_with_its_files_inline(folder: str, files: list[str]) -> None:
    served = served_dir(UI / folder)
    assert served != UI / folder
    page = (served / "index.html").read_text(encoding="utf-8")
    assert 'src="' not in page.split("<body", 1)[1].replace('src="data:', "") and 'rel="stylesheet"' not in page
    for name in files:
        assert (UI / folder / name).read_text(encoding="utf-8").strip() in page
    assert served_dir(UI / folder) == served  # the same content, the same folder: written once


def test_a_file_that_would_end_its_element_is_served_as_a_file(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text(
        '<head><link rel="stylesheet" href="a.css"></head><script src="a.js"></script>'
    )
    (tmp_path / "a.css").write_text("body { color: red; }")
    (tmp_path / "a.js").write_text('const s = "</SCRIPT>";')
    with pytest.raises(InlineError, match=r"a\.js"):
        inline_html(tmp_path)
    assert served_dir(tmp_path) == tmp_path
    (tmp_path / "a.js").write_text("const s = 1;")
    assert (
        inline_html(tmp_path) == "<head><style>\nbody { color: red; }\n</style></head><script>\nconst s = 1;\n</script>"
    )
