"""One node's view of a target in words, for `ravens status` and the demo:
a verdict and a latest check that disagree while a streak is being
confirmed say so, instead of contradicting each other."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def view_words(view: Mapping[str, Any], thresholds: Mapping[str, Any]) -> str:
    """'UP (status 200)', or 'UP, last check status 503: 1 of 2 failures'."""
    verdict = view.get("verdict", "UNKNOWN")
    reason = view.get("reason") or "-"
    last_ok = view.get("last_ok")
    if last_ok is False and verdict != "DOWN":
        streak = _streak(view.get("fails"), thresholds.get("fail"), "failure")
    elif last_ok is True and verdict == "DOWN":
        streak = _streak(view.get("oks"), thresholds.get("success"), "good check")
    else:
        return f"{verdict} ({reason})"
    return f"{verdict}, last check {reason}: {streak}"


def _streak(count: object, needed: object, what: str) -> str:
    if not isinstance(count, int):
        return f"not yet enough {what}s"
    if isinstance(needed, int) and count < needed:
        return f"{count} of {needed} {what}s"
    # Past the usual threshold: a node deciding alone needs more.
    return f"{count} {what}{'' if count == 1 else 's'} in a row"
