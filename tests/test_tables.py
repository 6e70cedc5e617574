"""The pages' HTML tables (ui.tables): every cell escaped, numbers right-aligned with their thousands, a missing
number as a dash, a column's help on its header; read back by tests/html_tables.py to the same values."""

from __future__ import annotations

import pandas as pd

from builder.examples import load_example
from builder.inference import infer_shapes
from builder.layer_table import layer_rows
from tests.html_tables import read_table
from ui.tables import MISSING, STYLE, table_html


def test_cells_are_text_never_markup() -> None:
    body = table_html([{"layer": '<img src=x onerror="alert(1)">', "notes": "a & b"}], {"layer": 'say "hi" <b>'})
    assert "<img" not in body and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in body
    assert "a &amp; b" in body and 'title="say &quot;hi&quot; &lt;b&gt;"' in body
    assert read_table(body)["layer"][0] == '<img src=x onerror="alert(1)">'


def test_numbers_are_right_aligned_with_thousands_and_a_missing_one_is_a_dash() -> None:
    body = table_html([{"#": 1, "params": 1234567, "shape": "(2, 10)"}, {"#": 2, "params": None, "shape": "?"}])
    assert '<td class="num">1,234,567</td>' in body and f'<td class="num">{MISSING}</td>' in body
    assert '<th class="num">params</th>' in body and "<td>(2, 10)</td>" in body
    table = read_table(body)
    assert table["params"][0] == 1234567 and pd.isna(table["params"][1])  # as a DataFrame holds a missing number
    assert list(table["shape"]) == ["(2, 10)", "?"]


def test_a_text_column_with_numbers_in_it_stays_text() -> None:
    table = read_table(table_html([{"value": 3}, {"value": "three"}]))
    assert list(table["value"]) == ["3", "three"]


def test_a_long_table_scrolls_in_its_box_under_a_header_that_stays() -> None:
    body = table_html([{"n": n} for n in range(200)], max_height=300)
    assert "--bt-height: 300px" in body and "<style" not in body  # the stylesheet comes once, apart (style_ui)
    assert "position: sticky" in STYLE and "overflow: auto" in STYLE


def test_the_layer_table_reads_back_as_its_rows() -> None:
    design = load_example("lenet")
    rows = layer_rows(design, infer_shapes(design))
    table = read_table(table_html(rows))
    assert list(table.columns) == list(rows[0])
    assert table.to_dict("records") == [{key: row[key] for key in rows[0]} for row in rows]
