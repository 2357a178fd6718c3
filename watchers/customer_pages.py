"""Pages for one customer: `[[pages]]` in the config names a slug, a title
and the tags or targets it shows; `/s/<slug>` shows those targets and
nothing of any other (their history, incidents and badges), optionally
behind a read token of its own.

```toml
[[pages]]
slug = "acme"
title = "Acme Ltd"
tags = ["acme"]             # every target with this tag, now or later
targets = ["acme-mail"]     # and these, by id
token_file = "/etc/ravens/pages/acme"   # optional: then the page needs it
```
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import Field, model_validator

from watchers.probes import AnyTarget
from watchers.probes.base import ENV_PATTERN, Strict


class PageSection(Strict):
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    title: str = Field(min_length=1, max_length=120)
    tags: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    token_file: Path | None = None
    token_env: str | None = Field(default=None, pattern=ENV_PATTERN)

    @model_validator(mode="after")
    def _selects_and_one_token(self) -> PageSection:
        if not self.tags and not self.targets:
            raise ValueError("name the tags or targets the page shows")
        if self.token_file is not None and self.token_env is not None:
            raise ValueError("give at most one of token_file or token_env")
        return self

    def shows(self, target: AnyTarget) -> bool:
        return target.id in self.targets or bool(set(self.tags) & set(target.tags))

    def selection(self, targets: Mapping[str, AnyTarget]) -> list[str]:
        """The ids of the watched targets this page shows, sorted."""
        return sorted(t_id for t_id, target in targets.items() if self.shows(target))


def check_slugs(pages: Iterable[PageSection]) -> None:
    seen: set[str] = set()
    for index, page in enumerate(pages):
        if page.slug in seen:
            raise ValueError(f"pages[{index}].slug: {page.slug!r} appears twice")
        seen.add(page.slug)
