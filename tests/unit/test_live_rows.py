"""The live figures a peer sends with each sync: a row of five (an older
peer) or six (with phase timings) is kept; anything else is refused whole,
naming the row and the field, and keeps nothing of the batch."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchers.live import MAX_LATENCY_MS, LiveChecks, LiveError, parse_rows
from watchers.probes.phases import KEYS, PHASES

GOOD = ["blog", 1_000, False, 12.5, "TLS handshake failed: certificate expired"]
PHASES_SENT = {"dns_ms": 0.5, "connect_ms": 1.0, "tls_ms": 3.0, "total_ms": 5.0,
               "failed_phase": "tls"}  # fmt: skip


def test_rows_with_and_without_phases_are_kept() -> None:
    live = LiveChecks("huginn")
    kept = live.take("muninn", [GOOD, ["db", 2_000, True, 3, "status 200", PHASES_SENT]],
                     {"blog", "db"})  # fmt: skip
    assert kept == 2
    blog, db = live.latest("muninn", "blog"), live.latest("muninn", "db")
    assert blog is not None and blog.phases is None
    assert db is not None and db.phases == PHASES_SENT
    # What a node sends is what it keeps: the row goes back out the same.
    assert db.to_row("db") == ["db", 2_000, True, 3.0, "status 200", PHASES_SENT]


@pytest.mark.parametrize(
    ("phases", "named"),
    [
        ({"dns_ms": -1}, "phases.dns_ms"),
        ({"dns_ms": math.nan}, "phases.dns_ms"),
        ({"dns_ms": MAX_LATENCY_MS * 2}, "phases.dns_ms"),
        ({"dns_ms": True}, "phases.dns_ms"),
        ({"dns_ms": "1"}, "phases.dns_ms"),
        ({"colour_ms": 1}, "phases.colour_ms"),
        ({"failed_phase": "lunch"}, "phases.failed_phase"),
        ({f"k{i}": 1 for i in range(50)}, "phases: expected an object"),
        ([1, 2], "phases: expected an object"),
    ],
)
def test_bad_phases_are_refused_naming_the_field(phases: Any, named: str) -> None:
    live = LiveChecks("huginn")
    with pytest.raises(LiveError, match=r"live\[1\]: " + named.replace(".", r"\.")):
        live.take("muninn", [GOOD, [*GOOD[:4], "x", phases]], {"blog"})
    assert live.latest("muninn", "blog") is None, "nothing of a refused batch is kept"


@given(
    st.dictionaries(
        st.sampled_from([*KEYS, "failed_phase"]),
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(-(2**70), 2**70),
            st.sampled_from(PHASES),
            st.text(max_size=5),
            st.none(),
        ),
    )
)
def test_any_phases_are_kept_within_bounds_or_refused(phases: dict[str, Any]) -> None:
    try:
        ((_, check),) = parse_rows([[*GOOD, phases]])
    except LiveError:
        return
    assert check.phases is not None
    for key, value in check.phases.items():
        if key == "failed_phase":
            assert value in PHASES
        else:
            assert isinstance(value, float) and 0 <= value <= MAX_LATENCY_MS
