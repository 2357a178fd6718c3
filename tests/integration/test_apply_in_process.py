"""`ravens targets apply` through the admin API, on a pair in this process
(fake clock): idempotent, a one-key edit is that one change, a bad file is
refused naming the key and changes nothing, windows started by hand stay.
(The commands themselves run against a real pair, as the README shows
them, in test_readme_examples.py.)"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from tests.integration.fakepair import Pair
from tests.integration.notify_world import Switch
from tests.integration.test_admin_in_process import call, with_pair

FILE = """
[[targets]]
id = "db"
kind = "tcp"
host = "127.0.0.1"
port = {port}
tags = ["infra"]

[[targets]]
id = "shop"
kind = "http"
url = "http://127.0.0.1:{port}/"
name = "The shop"
interval_s = 30

[[maintenance]]
targets = ["shop"]
days = ["sun"]
from = 02:00:00
to = 03:00:00
reason = "backups"
"""


def document(text: str) -> dict[str, Any]:
    """The file as the command sends it: TOML's times as ISO text."""
    parsed = tomllib.loads(text)
    for window in parsed.get("maintenance", []):
        for key in ("from", "to"):
            window[key] = window[key].isoformat()
    return parsed


async def apply(pair: Pair, text: str, dry_run: bool = False, name: str = "huginn") -> Any:
    path = f"/api/v1/admin/apply?dry_run={str(dry_run).lower()}"
    return await call(pair, name, "POST", path, document(text))


def lines(answer: Any) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [c["line"] for c in answer.json()["changes"]]


def test_apply_twice_changes_nothing_the_second_time_and_one_edit_is_one_change(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    async def work(pair: Pair, _switch: Switch, port: int) -> None:
        text = FILE.format(port=port)
        dry = lines(await apply(pair, text, dry_run=True))
        assert [t["id"] for t in await pair.targets("huginn")] == ["blog"], "a dry run writes"
        first = lines(await apply(pair, text))
        assert (
            first
            == dry
            == [
                "+ target db",
                "+ target shop",
                "+ maintenance shop sun 02:00-03:00 UTC (backups)",
            ]
        )
        # Both nodes watch what one was told, and either answers the same.
        await pair.run_until(pair.both("db", "UP"), "both watch db", 60)
        await pair.run_until(pair.both("shop", "UP"), "both watch shop", 60)
        assert lines(await apply(pair, text, name="muninn")) == []
        assert lines(await apply(pair, text)) == []

        edited = text.replace("interval_s = 30", "interval_s = 45")
        assert lines(await apply(pair, edited, name="muninn")) == [
            "~ target shop interval_s: 30.0 -> 45.0"
        ]
        await pair.run_until(
            lambda: pair.nodes["huginn"].targets["shop"].interval_s == 45,
            "huginn hears of muninn's change",
            60,
        )
        assert lines(await apply(pair, edited)) == []
        # A key written out at its default is the same target.
        spelled = edited.replace('name = "The shop"', 'name = "The shop"\nmethod = "GET"')
        assert lines(await apply(pair, spelled)) == []

        removed = edited.split('[[targets]]\nid = "shop"')[0]
        assert lines(await apply(pair, removed)) == [
            "- target shop",
            "- maintenance shop sun 02:00-03:00 UTC (backups)",
        ]
        await pair.run_until(
            lambda: all("shop" not in pair.nodes[n].targets for n in pair.nodes),
            "both stop watching shop",
            60,
        )
        audit = (await call(pair, "muninn", "GET", "/api/v1/admin/audit")).json()["audit"]
        actions = sorted(r["action"] for r in audit)
        expected = ["add target", "add target", "add maintenance", "change target",
                    "remove target", "remove maintenance"]  # fmt: skip
        assert actions == sorted(expected)

    with_pair(tmp_path, site, work)


def test_a_bad_file_is_refused_naming_the_key_and_changes_nothing(
    tmp_path: Path, site: tuple[Switch, int]
) -> None:
    async def work(pair: Pair, _switch: Switch, port: int) -> None:
        text = FILE.format(port=port)
        bad = {
            # The second target's port, after a good first one: nothing of either.
            text.replace(f'url = "http://127.0.0.1:{port}/"', "url = 7"): "targets[1].url",
            text + '\n[[targets]]\nid = "blog"\nkind = "tcp"\nhost = "a"\nport = 1\n':
                "targets[2].id: 'blog' is defined in the node's config file",
            text + '\n[[targets]]\nid = "db"\nkind = "tcp"\nhost = "a"\nport = 1\n':
                "targets[2].id: 'db' is also targets[0]",
            text.replace('tags = ["infra"]', 'tags = ["infra"]\nparent = "nas"'):
                "targets[0].parent: no target 'nas'",
            text.replace("days = [\"sun\"]", "days = [\"sunday\"]"): "maintenance[0].days",
            text + '\n[[target]]\nid = "x"\n': "target: unknown key",
        }  # fmt: skip
        for wrong, named in bad.items():
            answer = await apply(pair, wrong)
            assert answer.status_code == 400, answer.text
            assert named in answer.json()["error"], (named, answer.json())
        not_an_object = await call(pair, "huginn", "POST", "/api/v1/admin/apply", [1, 2])
        assert not_an_object.status_code in (400, 422)
        assert [t["id"] for t in await pair.targets("huginn")] == ["blog"]
        audit = (await call(pair, "huginn", "GET", "/api/v1/admin/audit")).json()["audit"]
        assert audit == []

    with_pair(tmp_path, site, work)


def test_windows_started_by_hand_are_left_alone(tmp_path: Path, site: tuple[Switch, int]) -> None:
    async def work(pair: Pair, _switch: Switch, port: int) -> None:
        window = {"targets": ["blog"], "start": "2030-01-01T00:00:00Z",
                  "end": "2030-01-01T01:00:00Z", "reason": "by hand"}  # fmt: skip
        made = await call(pair, "huginn", "POST", "/api/v1/admin/maintenance", window)
        assert made.status_code == 201
        text = FILE.format(port=port)
        assert "+ maintenance" in "\n".join(lines(await apply(pair, text)))
        only_targets = text.split("[[maintenance]]")[0]
        assert lines(await apply(pair, only_targets)) == [
            "- maintenance shop sun 02:00-03:00 UTC (backups)"
        ]
        listed = (await call(pair, "huginn", "GET", "/api/v1/admin/targets")).json()
        assert [(w["id"], w["applied"]) for w in listed["maintenance"]] == [
            (made.json()["id"], False)
        ]
        sources = {t["id"]: t["source"] for t in listed["targets"]}
        assert sources == {"blog": "config", "db": "api", "shop": "api"}

    with_pair(tmp_path, site, work)
