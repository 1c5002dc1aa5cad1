"""Column parsers: the whole-column fast path and the per-cell path agree on every input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from scada.model import ConfigIssue
from scada.site.fields import Col, FieldType, parse_column
from scada.site.sources import INVALID, Table

COLS = [
    Col("x", FieldType.FLOAT, lo=-90, hi=90),
    Col("x", FieldType.INT, lo=0, hi=127),
    Col("x", FieldType.INT, required=False, lo=0, hi=10, default=3),
    Col("x", FieldType.ID),
    Col("x", FieldType.TEXT, required=False, default=""),
    Col("x", FieldType.CHOICE, choices=("carpark", "onstreet")),
]

cells = st.one_of(
    st.sampled_from(["", "0", "1", "-1", "90", "90.0", "-90.5", "127", "128", "1e2", "nan", "inf", "-inf", " 5", "5 "]),
    st.sampled_from(["1_0", "0x10", "CAB-1", "a/b", "carpark", "onstreet", "Carpark", "٣", "1.5e-3", "+7"]),
    st.from_regex(r"[-+0-9.eE_a-z ]{0,6}", fullmatch=True),
)


def _table(raw: list[str], text_only: bool) -> Table:
    return Table("t", "f.csv", "csv", len(raw), {"x": list(raw)}, list(range(2, len(raw) + 2)), text_only=text_only)


@settings(max_examples=200, deadline=None)
@given(col=st.sampled_from(COLS), raw=st.lists(cells, max_size=8))
def test_fast_and_precise_paths_agree(col: Col, raw: list[str]) -> None:
    """Whatever the cells, the fast path (CSV text) gives the same values and issues as the per-cell path."""
    fast_issues: list[ConfigIssue] = []
    slow_issues: list[ConfigIssue] = []
    fast = parse_column(_table(raw, True), col, fast_issues)
    slow = parse_column(_table(raw, False), col, slow_issues)
    assert fast == slow
    assert fast_issues == slow_issues
    assert len(fast) == len(raw)
    assert (INVALID in fast) == bool(fast_issues)
