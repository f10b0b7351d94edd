"""hanet.tables: the one table writer."""

from __future__ import annotations

import csv
import io

from hanet.tables import cell, csv_table, markdown_table


def test_cells_format_numbers_lists_and_missing_values() -> None:
    assert cell(1.23456) == "1.235" and cell(1.23456, digits=2) == "1.23"
    assert cell(float("nan")) == "nan" and cell(None) == "" and cell(True) == "true"
    assert cell([10, 1]) == "10/1" and cell("x") == "x" and cell(3) == "3"


def test_markdown_pads_columns_and_right_aligns_numbers() -> None:
    rows = [{"method": "input", "err": 9.5612}, {"method": "HANet (demo)", "err": 8.7}]
    lines = markdown_table(["method", "err"], rows, digits=2).splitlines()
    assert lines[0] == "| method       |  err |"
    assert lines[1] == "|--------------|-----:|"
    assert lines[2] == "| input        | 9.56 |"
    assert lines[3] == "| HANet (demo) | 8.70 |"
    assert len({len(line) for line in lines}) == 1  # every line the same width


def test_markdown_marks_missing_cells_and_keeps_text_columns_left() -> None:
    rows = [{"trial": "a", "lr": 0.001}, {"trial": "b"}]
    assert markdown_table(["trial", "lr"], rows).splitlines() == [
        "| trial |    lr |",
        "|-------|------:|",
        "| a     | 0.001 |",
        "| b     |     — |",
    ]


def test_csv_joins_lists_and_drops_unknown_keys() -> None:
    text = csv_table(["trial", "window"], [{"trial": "t1", "window": [10, 1], "extra": 5}])
    assert list(csv.reader(io.StringIO(text))) == [["trial", "window"], ["t1", "10/1"]]
