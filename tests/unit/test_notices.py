"""Notices beyond the moves: reminders while DOWN, certificate expiry once per
threshold, and silences, on two linked cores."""

from __future__ import annotations

from dataclasses import replace

from consensus.agreement import AgreedState
from consensus.settings import DAY_MS, Settings
from tests.unit.pair import Net, results

NAMES = ("huginn", "muninn")
HOUR_MS = 3_600_000


def down_pair(settings: Settings) -> Net:
    net = Net(NAMES, ("blog",), settings)
    net.start()
    net.rounds("blog", results(NAMES, True), 3)
    net.rounds("blog", results(NAMES, False), 3)
    assert net.state("blog") is AgreedState.DOWN and net.notices() == ["DOWN"]
    return net


def test_no_reminders_unless_asked_for() -> None:
    net = down_pair(Settings())
    for _ in range(30):
        net.advance(HOUR_MS // 4)
    assert net.notices() == ["DOWN"]


def test_a_reminder_each_interval_while_down_once_for_the_pair() -> None:
    net = down_pair(Settings(remind_down_every_ms=HOUR_MS))
    for _ in range(13):  # three hours and a quarter
        net.advance(HOUR_MS // 4)
    assert net.notices() == ["DOWN", "STILL_DOWN", "STILL_DOWN", "STILL_DOWN"]
    reminders = [e for _, e in net.posts if e.notice.value == "STILL_DOWN"]
    assert [e.detail["reminder"] for e in reminders] == [1, 2, 3]
    assert len({e.id for e in reminders}) == 3
    net.rounds("blog", results(NAMES, True), 3)
    net.advance(2 * HOUR_MS)
    assert net.notices()[-1] == "UP" and net.notices().count("STILL_DOWN") == 3


def test_a_node_back_after_hours_sends_only_the_current_reminder() -> None:
    net = down_pair(Settings(remind_down_every_ms=HOUR_MS))
    net.partition("huginn", "muninn")
    net.ntfy_up = False
    net.advance(int(3.5 * HOUR_MS))
    net.ntfy_up = True
    net.heal()
    for _ in range(12):
        net.advance(10_000)
    numbers = sorted(e.detail["reminder"] for _, e in net.posts if e.notice.value == "STILL_DOWN")
    assert numbers == [3], numbers


def test_a_certificate_is_announced_once_per_threshold_by_the_pair() -> None:
    net = Net(NAMES, ("blog",), Settings(tls_expiry_days=(14, 7, 1)))
    net.start()
    net.rounds("blog", results(NAMES, True), 3)
    not_after = net.now_ms + 20 * DAY_MS
    for day in range(21):
        for node in NAMES:
            net.run(node, net.cores[node].certificate_observed("blog", not_after, net.now_ms))
        net.deliver()
        net.advance(DAY_MS if day else DAY_MS - 1)
    expiring = [e for _, e in net.posts if e.notice.value == "TLS_EXPIRING"]
    assert [e.detail["threshold_days"] for e in expiring] == [14, 7, 1]
    renewed = net.now_ms + 90 * DAY_MS
    for node in NAMES:
        net.run(node, net.cores[node].certificate_observed("blog", renewed, net.now_ms))
    assert len([e for _, e in net.posts if e.notice.value == "TLS_EXPIRING"]) == 3


def test_a_certificate_first_seen_late_gets_only_the_lowest_threshold() -> None:
    net = Net(NAMES, ("blog",), Settings())
    net.start()
    net.run("huginn", net.cores["huginn"].certificate_observed(
        "blog", net.now_ms + 5 * DAY_MS, net.now_ms))  # fmt: skip
    net.deliver()
    net.advance(10_000)
    (event,) = [e for _, e in net.posts]
    assert event.detail["threshold_days"] == 7


def test_a_silenced_target_is_agreed_and_recorded_but_nobody_is_notified() -> None:
    net = Net(NAMES, ("blog",), Settings())
    net.start()
    net.rounds("blog", results(NAMES, True), 3)
    for core in net.cores.values():
        core.set_silenced("blog", True)
    net.rounds("blog", results(NAMES, False), 3)
    assert net.state("blog") is AgreedState.DOWN and net.posts == []
    core = net.cores["huginn"]
    event = core.event(core.record("blog").event or "")
    assert event is not None and event.suppressed and event.notice.value == "DOWN"
    for node in NAMES:
        net.cores[node].set_silenced("blog", False)
    # A silence mutes what happens during it: the recovery after it is news.
    net.rounds("blog", results(NAMES, True), 3)
    assert net.notices() == ["UP"]


def test_settings_refuse_bad_reminders_and_thresholds() -> None:
    for bad in ({"remind_down_every_ms": -1}, {"tls_expiry_days": (7, 0)}):
        try:
            replace(Settings(), **bad)  # type: ignore[arg-type]
        except ValueError as exc:
            assert next(iter(bad)) in str(exc)
        else:
            raise AssertionError(f"accepted {bad}")
