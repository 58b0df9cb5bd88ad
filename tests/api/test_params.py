"""Parameter parsing never fails with anything but a 422-class error (property-based)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.errors import BadRequest
from api.exports import to_csv, to_kml
from api.params import bbox, resolution, window


@given(st.text(max_size=80))
def test_bbox_parses_or_refuses(text: str) -> None:
    try:
        box = bbox(text)
    except BadRequest:
        return
    assert box is not None
    a, b, c, d = box
    assert -180 <= a < c <= 180 and -90 <= b < d <= 90


@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)),
    st.timedeltas(min_value=timedelta(days=-400), max_value=timedelta(days=400)),
)
def test_window_is_ordered_bounded_or_refused(start: datetime, length: timedelta) -> None:
    try:
        end = start + length
    except OverflowError:
        return
    try:
        w = window(start, end, default_days=7, max_days=92)
    except BadRequest:
        return
    assert w.start < w.end and w.end - w.start <= timedelta(days=92)
    assert datetime(2000, 1, 1, tzinfo=UTC) <= w.start


@pytest.mark.parametrize(("value", "ok"), [(None, True), (6, True), (10, True), (5, False), (11, False)])
def test_resolution_bounds(value: int | None, ok: bool) -> None:
    if ok:
        assert resolution(value, default=10, coarsest=6, finest=10) == (10 if value is None else value)
    else:
        with pytest.raises(BadRequest):
            resolution(value, default=10, coarsest=6, finest=10)


def test_csv_neutralises_spreadsheet_formulas_and_kml_escapes() -> None:
    feature = {
        "type": "Feature",
        "id": "x<y>&",
        "geometry": {"type": "Polygon", "coordinates": [[[1.0, 2.0], [1.5, 2.0], [1.0, 2.5], [1.0, 2.0]]]},
        "properties": {"operator": '=HYPERLINK("http://evil")', "rsrp_dbm": -101.5, "note": "-3"},
    }
    rows = list(csv.DictReader(io.StringIO(to_csv([feature]))))
    assert (
        rows[0]["operator"].startswith("'=") and rows[0]["rsrp_dbm"] == "-101.5" and rows[0]["note"] == "-3"
    )
    kml = to_kml([feature], name="a&b")
    assert "<name>a&amp;b</name>" in kml and "x&lt;y&gt;&amp;" in kml and "HYPERLINK" in kml
