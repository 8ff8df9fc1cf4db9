"""The plain-table renderer shared by the evaluation summaries (topobench.results.render)."""

from __future__ import annotations

import pytest

from topobench.errors import InvalidParameterError
from topobench.results.render import simple_table


def test_markdown_table_aligns_figures_right_and_escapes_pipes() -> None:
    text = simple_table(("label", "Dice (%)", "e0"), [("a|b", "80.00", "1.000")], "md",
                        comment="topobench 0.1.0")
    assert text.splitlines() == ["<!-- topobench 0.1.0 -->", "| label | Dice (%) | e0 |",
                                 "|---|---:|---:|", "| a\\|b | 80.00 | 1.000 |"]


def test_latex_table_escapes_every_cell_and_the_comment() -> None:
    text = simple_table(("label", "Dice (%)"), [("class_average", "80.00")], "latex",
                        comment="betti_window=48")
    assert text.splitlines() == ["% betti\\_window=48", r"\begin{tabular}{lr}", r"\toprule",
                                 r"label & Dice (\%) \\", r"\midrule",
                                 r"class\_average & 80.00 \\", r"\bottomrule",
                                 r"\end{tabular}"]
    assert not simple_table(("a",), [], "latex").startswith("%")


def test_unknown_format_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="format must be 'md' or 'latex'"):
        simple_table(("a",), [], "csv")  # type: ignore[arg-type]
