"""The plan of `ravens targets apply`, as a pure function: applying a
file's plan and planning again finds nothing; changing keys of one target
plans exactly those keys; windows are matched by what they say."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import keys
from watchers.admin_shapes import TARGET_ADAPTER
from watchers.apply_plan import Current, Plan, plan
from watchers.maintenance import MaintenanceWindow

ids = st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)
tcp = st.fixed_dictionaries(
    {"kind": st.just("tcp"), "host": st.sampled_from(["db.test", "10.0.0.1"]),
     "port": st.integers(1, 65535)},
    optional={"interval_s": st.sampled_from([10.0, 30, 60]),
              "tags": st.lists(st.sampled_from(["a", "b", "c"]), unique=True, max_size=2),
              "name": st.sampled_from(["Shop", "DB"])},
)  # fmt: skip
windows = st.builds(
    lambda who, day, reason: {"targets": [who], "days": [day], "from": "02:00:00",
                              "to": "03:00:00", "reason": reason},
    ids, st.sampled_from(["mon", "sun"]), st.sampled_from(["", "backups"]),
)  # fmt: skip


@st.composite
def files(draw: st.DrawFn) -> dict[str, Any]:
    chosen = draw(st.lists(ids, unique=True, max_size=6))
    targets = [{**draw(tcp), "id": target_id} for target_id in chosen]
    return {"targets": targets, "maintenance": draw(st.lists(windows, max_size=3))}


def after(current: Current, planned: Plan) -> Current:
    """The node once the plan's writes are in its log (values read back as
    the node reads them)."""
    targets = dict(current.api_targets)
    found = {k: dict(v) for k, v in current.windows.items()}
    for key, value, _, subject in planned.writes:
        if key.startswith(keys.TARGET):
            if value is None:
                targets.pop(subject, None)
            else:
                assert isinstance(value, dict)
                targets[subject] = TARGET_ADAPTER.validate_python(value["target"])
            continue
        kind = "maintenance" if key.startswith(keys.MAINTENANCE) else "silences"
        if value is None:
            found.setdefault(kind, {}).pop(subject, None)
        else:
            assert isinstance(value, dict)
            window = MaintenanceWindow.model_validate(value["window"])
            found.setdefault(kind, {})[subject] = (window, value["applied"] is True)
    return Current(targets, current.config_targets, found)


def fresh_ids() -> Any:
    counter = itertools.count()
    return lambda: f"w{next(counter)}"


EMPTY = Current({}, {}, {})


@settings(max_examples=60, deadline=None)
@given(files(), files())
def test_applying_a_plan_then_planning_again_finds_nothing(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    new_id = fresh_ids()
    now = after(EMPTY, plan(first, EMPTY, new_id))
    assert plan(first, now, new_id).changes == []
    # From any earlier file to this one, then nothing more.
    now = after(now, plan(second, now, new_id))
    assert plan(second, now, new_id).changes == []
    assert set(now.api_targets) == {t["id"] for t in second["targets"]}


@settings(max_examples=60, deadline=None)
@given(files(), st.data())
def test_changing_keys_of_one_target_plans_exactly_those_keys(
    document: dict[str, Any], data: st.DataObject
) -> None:
    if not document["targets"]:
        return
    new_id = fresh_ids()
    now = after(EMPTY, plan(document, EMPTY, new_id))
    index = data.draw(st.integers(0, len(document["targets"]) - 1))
    edited = dict(document["targets"][index])
    edited["port"] = edited["port"] % 65535 + 1
    changed = {"port"}
    if data.draw(st.booleans()):
        edited["timeout_s"] = 3.0
        changed.add("timeout_s")
    targets = [*document["targets"][:index], edited, *document["targets"][index + 1 :]]
    changes = plan({**document, "targets": targets}, now, new_id).changes
    assert {(c.op, c.name, c.key) for c in changes} == {("~", edited["id"], key) for key in changed}
