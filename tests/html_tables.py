"""Read the pages' HTML tables (``ui.tables``) back as DataFrames, for AppTest tests.

Numeric columns (their cells carry ``class="num"``) come back as numbers, a dash as None, so a test reads the
table as it read the ``st.dataframe`` it replaces.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pandas as pd
from streamlit.testing.v1 import AppTest

from ui.tables import MISSING


class _TableReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.header: list[str] = []
        self.rows: list[list[str]] = []
        self.numeric: set[int] = set()
        self._cell: list[str] | None = None
        self._numeric_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("th", "td"):
            self._cell = []
            self._numeric_cell = ("class", "num") in attrs

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag not in ("th", "td") or self._cell is None:
            return
        text, row = "".join(self._cell), self.rows[-1]
        if self._numeric_cell:
            self.numeric.add(len(row))
        row.append(text)
        self._cell = None
        if tag == "th":
            self.header = row


def _number(text: str) -> int | float | None:
    if text == MISSING:
        return None
    plain = text.replace(",", "")
    return float(plain) if "." in plain or "e" in plain else int(plain)


def read_table(body: str) -> pd.DataFrame:
    """The one table of an ``ui.tables.table_html`` body."""
    reader = _TableReader()
    reader.feed(body)
    header, *rows = reader.rows
    columns = {
        name: [_number(row[i]) if i in reader.numeric else row[i] for row in rows] for i, name in enumerate(header)
    }
    return pd.DataFrame(columns, columns=header)


def tables(at: AppTest) -> list[pd.DataFrame]:
    """Every HTML table on the page, in order."""
    return [read_table(element.value) for element in at.html if 'class="bt"' in element.value]


class _StatsReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stats: dict[str, tuple[str, str]] = {}
        self._part: str | None = None
        self._label, self._help, self._text = "", "", ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("class") in ("bt-stat-label", "bt-stat-value"):
            self._part, self._text = found["class"], ""
            if self._part == "bt-stat-label":
                self._help = found.get("title") or ""

    def handle_data(self, data: str) -> None:
        if self._part is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if self._part == "bt-stat-label":
            self._label = self._text
        elif self._part == "bt-stat-value":
            self.stats[self._label] = (self._text, self._help)
        self._part = None


def stats(at: AppTest) -> dict[str, tuple[str, str]]:
    """The page's rows of figures (``ui.tables.stats_html``): label -> (value, help)."""
    found: dict[str, tuple[str, str]] = {}
    for element in at.html:
        if 'class="bt-stats"' in element.value:
            reader = _StatsReader()
            reader.feed(element.value)
            found |= reader.stats
    return found
