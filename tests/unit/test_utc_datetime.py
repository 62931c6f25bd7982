"""UTCDateTime on SQLite writes the text SQLAlchemy's own SQLite DATETIME writes, and reads it back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from flashsale.store.tables import UTCDateTime

DIALECT = sqlite.dialect()
STOCK = sqlite.DATETIME()  # what stored rows were written with before UTCDateTime wrote its own text

instants = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(9998, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8))]),
)


@given(at=instants)
def test_the_text_is_the_stock_text_and_reads_back_as_the_same_instant(at: datetime) -> None:
    write = UTCDateTime().bind_processor(DIALECT)
    read = UTCDateTime().result_processor(DIALECT, None)
    stock_write = STOCK.bind_processor(DIALECT)
    assert write is not None and read is not None and stock_write is not None

    text = write(at)

    assert text == stock_write(at.astimezone(UTC).replace(tzinfo=None))
    back = read(text)
    assert back == at and back.tzinfo is UTC


def test_a_naive_datetime_is_refused_and_none_passes() -> None:
    write = UTCDateTime().bind_processor(DIALECT)
    assert write is not None
    assert write(None) is None
    with pytest.raises(ValueError, match="naive"):
        write(datetime(2026, 12, 2))
