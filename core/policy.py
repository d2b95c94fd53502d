"""Risk policies from a file: one per account or organisation, validated as a whole, chosen per account."""

from __future__ import annotations

import tomllib

from pydantic import Field, ValidationError, model_validator

from core.accounts import Account
from core.risk import RiskPolicy
from core.types import Frozen


class PolicyError(ValueError):
    """The policy document is invalid; the message lists each problem with its field."""


class PolicyBook(Frozen):
    policies: tuple[RiskPolicy, ...] = Field(default=())

    @model_validator(mode="after")
    def _unique_scopes(self) -> PolicyBook:
        scopes = [p.scope for p in self.policies]
        duplicates = sorted({s for s in scopes if scopes.count(s) > 1})
        if duplicates:
            raise ValueError(f"policies: more than one policy for scope {', '.join(duplicates)}")
        return self

    def for_account(self, account: Account) -> RiskPolicy | None:
        """The account's own policy, else its organisation's, else the default one."""
        by_scope = {p.scope: p for p in self.policies}
        return (by_scope.get(f"account:{account.account_id}") or by_scope.get(f"org:{account.owner.org_id}")
                or by_scope.get("default"))

    def version_key(self) -> str:
        return ",".join(f"{p.scope}={p.policy_id}@{p.version}" for p in sorted(self.policies, key=lambda p: p.scope))


def parse_policy_document(text: str, source: str) -> PolicyBook:
    """Parse a TOML policy document (`[[policies]]` tables); raise PolicyError naming every bad field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: not valid TOML: {exc}") from None
    try:
        return PolicyBook.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise PolicyError(f"{source}: {problems}") from None
