"""Push heartbeats: a cron job or an app calls a secret URL on either node;
silence longer than the grace period means DOWN. The last heartbeat travels
through the log, so it does not matter which node received it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from watchers.probes.base import ENV_PATTERN, CheckResult, TargetBase, seconds


class PushTarget(TargetBase):
    kind: Literal["push"]
    grace_s: float = Field(gt=0, le=30 * 86_400, description="silence allowed before DOWN")
    token_file: str | None = None
    token_env: str | None = Field(default=None, pattern=ENV_PATTERN)

    @model_validator(mode="after")
    def _one_token_source(self) -> PushTarget:
        if (self.token_file is None) == (self.token_env is None):
            raise ValueError("give exactly one of token_file or token_env for the secret URL")
        return self


def judge_push(
    target: PushTarget, last_seen_ms: int | None, now_ms: int, watched_since_ms: int
) -> CheckResult:
    """The check of a push target is how long it has been silent, counted
    only over the time this node watched it: a target just added, or a node
    just started, gets its whole grace before anything is DOWN."""
    if last_seen_ms is None:
        waited_s = max(0, now_ms - watched_since_ms) / 1000
        if waited_s <= target.grace_s:
            return CheckResult(
                True, None, f"waiting for the first heartbeat (grace {seconds(target.grace_s)})"
            )
        return CheckResult(False, None, f"no heartbeat received in {seconds(waited_s)}")
    silent_s = max(0, now_ms - max(last_seen_ms, watched_since_ms)) / 1000
    if silent_s > target.grace_s:
        return CheckResult(
            False, None, f"no heartbeat for {seconds(silent_s)} (grace {seconds(target.grace_s)})"
        )
    return CheckResult(True, None, f"heartbeat {seconds(silent_s)} ago")
