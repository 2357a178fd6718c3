"""Targets that depend on others (``parent``): each parent must name a
target, and no target may depend on itself through its parents. Checked for
the config file, the admin API and ``ravens targets apply`` alike."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from watchers.probes import AnyTarget


def check_parents(targets: Sequence[AnyTarget], known: Iterable[str] = ()) -> None:
    """Every parent names a target, and no target depends on itself
    through its parents; the error names the key."""
    parents = {t.id: t.parent for t in targets}
    ids = {*parents, *known}
    for index, target in enumerate(targets):
        if target.parent is None:
            continue
        key = f"targets[{index}].parent"
        if target.parent not in ids:
            raise ValueError(f"{key}: no target {target.parent!r}")
        seen = [target.id]
        at: str | None = target.parent
        while at is not None:
            if at in seen:
                chain = " -> ".join([*seen, at])
                raise ValueError(f"{key}: a cycle of parents ({chain})")
            seen.append(at)
            at = parents.get(at)
