"""The one table writer: rows of values as an aligned Markdown table or as CSV.

Every table the project prints or writes (the evaluation report, sweep results, per-epoch
metrics, refine summaries, benchmarks) goes through here, so they all look alike.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["cell", "csv_table", "markdown_table"]


def cell(value: Any, digits: int | None = None) -> str:
    """One value as table text: floats with ``digits`` decimals (or 4 significant digits when
    None), NaN as ``nan``, None as empty, lists joined with ``/``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.{digits}f}" if digits is not None else f"{value:.4g}"
    if isinstance(value, list | tuple):
        return "/".join(cell(v, digits) for v in value)
    return str(value)


def markdown_table(
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    digits: int | None = None,
    format_cell: Callable[[str, Any], str] | None = None,
) -> str:
    """A Markdown table with padded columns; numeric columns are right-aligned.

    Args:
        columns: column names, in order; also the keys looked up in each row.
        rows: one mapping per row; a missing key is an empty cell (``—`` for numbers).
        digits: decimals for floats (4 significant digits when None).
        format_cell: ``(column, value) -> text`` overriding :func:`cell`.
    """
    render = format_cell or (lambda _, value: cell(value, digits))
    cells = [[render(c, row.get(c)) if c in row else "—" for c in columns] for row in rows]
    numeric = [
        bool(rows) and all(isinstance(row.get(c), int | float) for row in rows if c in row)
        for c in columns
    ]
    widths = [max([len(c), 3, *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        padded = [
            v.rjust(w) if right else v.ljust(w) for v, w, right in zip(values, widths, numeric)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(
        ("-" * (w + 1) + ":") if right else ("-" * (w + 2)) for w, right in zip(widths, numeric)
    )
    return "\n".join([line(columns), rule + "|", *(line(r) for r in cells)])


def csv_table(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as CSV text with a header; lists are joined with ``/``, other keys dropped."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {c: "/".join(map(str, v)) if isinstance(v, list | tuple) else v for c, v in row.items()}
        )
    return buffer.getvalue()
