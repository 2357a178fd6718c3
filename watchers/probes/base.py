"""What every probe shares: the result of one check and the common target fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

TARGET_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"


# The name of an environment variable a secret is read from (*_env keys).
ENV_PATTERN = r"^[A-Z_][A-Z0-9_]*$"


class Strict(BaseModel):
    """Every config model refuses keys it does not know."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretSource(Strict):
    """A secret comes from a file or an environment variable, never inline."""

    secret_file: Path | None = None
    secret_env: str | None = Field(default=None, pattern=ENV_PATTERN)

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretSource:
        if (self.secret_file is None) == (self.secret_env is None):
            raise ValueError("give exactly one of secret_file or secret_env")
        return self


class TargetBase(Strict):
    """Fields every target has, whatever its kind."""

    kind: str
    id: str = Field(pattern=TARGET_ID_PATTERN, description="stable id, used in URLs and topics")
    name: str | None = Field(default=None, max_length=120)
    interval_s: float | None = Field(default=None, gt=0, le=86_400)
    timeout_s: float | None = Field(default=None, gt=0, le=300)
    tags: tuple[str, ...] = ()
    topic: str | None = Field(default=None, pattern=r"^[-_A-Za-z0-9]{1,64}$")
    # What this target depends on (a host's ping, its nginx): while the
    # parent is agreed DOWN, this target's DOWN is recorded but not paged
    # on its own; the parent's page lists it.
    parent: str | None = Field(default=None, pattern=TARGET_ID_PATTERN)
    # The registered domain whose expiry [domains] watches, when its host's
    # last two labels are not it (example.co.uk); "" for none.
    domain: str | None = Field(default=None, pattern=r"^([a-z0-9-]{1,63}\.)*[a-z0-9-]{1,63}$|^$")

    @property
    def label(self) -> str:
        return self.name or self.id


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check of one target: a down target is data, never an exception."""

    ok: bool
    latency_ms: float | None
    reason: str
    # Facts worth keeping beside the verdict, such as TLS days left.
    details: dict[str, float | int | str] = field(default_factory=dict)


def seconds(value: float) -> str:
    """'10 s', '1.5 s', '250 ms' for reasons a person reads."""
    if value < 1:
        return f"{round(value * 1000)} ms"
    return f"{value:g} s"
