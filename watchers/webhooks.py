"""The webhooks a node delivers the pair's agreed events to.

```toml
[[webhooks]]
name = "biphrost-api"                      # letters, digits, - and _; in the logs and the log
url = "https://api.biphrost.internal/hooks/ravens"
secret_file = "/etc/ravens/webhook.secret" # or secret_env; "whsec_<base64>" or any text
events = ["down", "up"]                    # default: every notice
timeout_s = 10
```

Both nodes name the same webhooks with the same secrets: which node
delivers an event is decided as for ntfy, and a receiver checks one secret.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, AnyHttpUrl, Field, PrivateAttr

from consensus.agreement import Notice
from consensus.events import HOOK_NAME_CHARS, MAX_HOOKS
from watchers.probes.base import SecretSource

NOTICES = sorted(n.value.lower() for n in Notice)


def _a_notice(name: str) -> str:
    if name not in NOTICES:
        raise ValueError(f"expected one of {', '.join(NOTICES)}")
    return name


class WebhookSection(SecretSource):
    name: str = Field(pattern=rf"^[a-z0-9][a-z0-9_-]{{0,{HOOK_NAME_CHARS - 1}}}$")
    url: AnyHttpUrl
    # The notices it wants, by their names in [ntfy] priority; None: all.
    events: tuple[Annotated[str, AfterValidator(_a_notice)], ...] | None = None
    timeout_s: float = Field(default=10.0, gt=0, le=60)
    # The key the secret stands for, read at start and on reload
    # (secrets.with_secrets): never written in the file.
    _key: bytes = PrivateAttr(default=b"")

    @property
    def key(self) -> bytes:
        return self._key

    def wants(self) -> frozenset[str] | None:
        """The notices the core hands it (Notice values); None: every one."""
        if self.events is None:
            return None
        return frozenset(name.upper() for name in self.events)


def check_hooks(hooks: tuple[WebhookSection, ...]) -> None:
    names = [hook.name for hook in hooks]
    if len(hooks) > MAX_HOOKS:
        raise ValueError(f"webhooks: at most {MAX_HOOKS}, got {len(hooks)}")
    for index, name in enumerate(names):
        if name in names[:index]:
            raise ValueError(f"webhooks[{index}].name: {name!r} appears twice")
