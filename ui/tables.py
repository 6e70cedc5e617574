"""Tables as plain HTML (``st.html``): the Build page's totals, layer table, lazy-parameters panel and formula terms.

``st.dataframe`` draws its grid on a canvas with 1.2 MB of JavaScript (the grid and Apache Arrow) that a new
visitor's browser must fetch and parse before the page's components appear; these tables are on the page from the
first paint, so they are written as an HTML table instead (and the totals as a row of figures rather than
``st.metric``, whose number formatting library cost another 0.1 s): text the reader can select and search with Ctrl+F,
numbers right-aligned with their thousands, the header kept in view while a long table scrolls in its box, and a
column's help as the tooltip of its header. Every cell is escaped: a table shows text, never markup.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import streamlit as st

MAX_HEIGHT = 420  # px: about ten rows, as st.dataframe shows before it scrolls
MISSING = "—"  # a number not known (the run did not reach the layer)

STYLE = """<style>
.bt-box { max-height: var(--bt-height); overflow: auto; border: 1px solid rgba(128, 128, 128, 0.3);
  border-radius: 0.5rem; }
.bt { border-collapse: collapse; width: 100%; font-size: 0.875rem; font-variant-numeric: tabular-nums; }
.bt th, .bt td { padding: 0.25rem 0.6rem; border-bottom: 1px solid rgba(128, 128, 128, 0.2); text-align: left;
  vertical-align: top; white-space: nowrap; }
.bt th { position: sticky; top: 0; font-weight: 600; background: rgba(128, 128, 128, 0.15);
  backdrop-filter: blur(12px); }
.bt th[title] { text-decoration: underline dotted rgba(128, 128, 128, 0.8); cursor: help; }
.bt td.num, .bt th.num { text-align: right; }
.bt tr:last-child td { border-bottom: none; }
.bt-stats { display: grid; grid-template-columns: repeat(auto-fit, minmax(9rem, 1fr)); gap: 1rem; }
.bt-stat-label { font-size: 0.875rem; }
.bt-stat-label[title] { text-decoration: underline dotted rgba(128, 128, 128, 0.8); cursor: help; }
.bt-stat-value { font-size: 2.25rem; line-height: 1.4; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
</style>"""


class Stat(NamedTuple):
    """One figure of a row of totals: its label, its value as shown, and the full figure or an explanation."""

    label: str
    value: str
    help: str = ""


def style_ui() -> None:
    """The tables' stylesheet, which a page showing them writes once a run: a style-only ``st.html`` goes to the
    page's event container, the same text on every run, so a rerun that changes a table's rows does not insert the
    stylesheet again (a style recalculation of the whole page)."""
    st.html(STYLE)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numeric_columns(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> set[str]:
    """The columns whose known values are all numbers (None counts as unknown)."""
    return {
        column
        for column in columns
        if any(row.get(column) is not None for row in rows)
        and all(row.get(column) is None or _is_number(row.get(column)) for row in rows)
    }


def cell_text(value: Any) -> str:
    """A cell's text: numbers with their thousands separated, a missing number as a dash."""
    if value is None:
        return MISSING
    if _is_number(value):
        return f"{value:,}"
    return str(value)


def table_html(
    rows: Sequence[Mapping[str, Any]], help: Mapping[str, str] | None = None, max_height: int = MAX_HEIGHT
) -> str:
    """The rows (dicts keyed by column, in the first row's order) as an escaped HTML table in a scrolling box."""
    columns = list(rows[0]) if rows else []
    numeric = _numeric_columns(rows, columns)
    help = help or {}

    def header(column: str) -> str:
        tip = f' title="{html.escape(help[column])}"' if column in help else ""
        kind = ' class="num"' if column in numeric else ""
        return f"<th{kind}{tip}>{html.escape(column)}</th>"

    def cell(row: Mapping[str, Any], column: str) -> str:
        kind = ' class="num"' if column in numeric else ""
        return f"<td{kind}>{html.escape(cell_text(row.get(column)))}</td>"

    head = "".join(header(column) for column in columns)
    body = "".join("<tr>" + "".join(cell(row, column) for column in columns) + "</tr>" for row in rows)
    return (
        f'<div class="bt-box" style="--bt-height: {int(max_height)}px">'
        f'<table class="bt"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    )


def table_ui(rows: Sequence[Mapping[str, Any]], help: Mapping[str, str] | None = None) -> None:
    """Show the rows as a table (see ``table_html``; the page writes ``style_ui`` once)."""
    if rows:
        st.html(table_html(rows, help))


def stats_html(stats: Sequence[Stat]) -> str:
    """A row of figures, each a small label (its help as the tooltip) over a large value; escaped like a table."""

    def one(stat: Stat) -> str:
        tip = f' title="{html.escape(stat.help)}"' if stat.help else ""
        return (
            f'<div class="bt-stat"><div class="bt-stat-label"{tip}>{html.escape(stat.label)}</div>'
            f'<div class="bt-stat-value">{html.escape(stat.value)}</div></div>'
        )

    return f'<div class="bt-stats">{"".join(one(stat) for stat in stats)}</div>'


def stats_ui(stats: Sequence[Stat]) -> None:
    """Show a row of figures (see ``stats_html``; the page writes ``style_ui`` once)."""
    st.html(stats_html(stats))
