"""What an IAM check found: one row per requirement with its state and how it was checked.

Three states: allowed; denied (no policy allows it, or a Deny, a permissions boundary or an
organization SCP stops it); unknown (it could not be checked, or the answer depends on request
context the check cannot know, such as the caller's IP address). A deploy goes ahead only
without denied rows (`IamReport.raise_if_denied`); unknown rows are warnings.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from qa_console.errors import AuthError
from qa_console.ops.iam.requirements import Requirement


class State(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    UNKNOWN = "unknown"


class Method(StrEnum):
    """How a row was decided."""

    SIMULATED = "simulated"  # IAM's SimulatePrincipalPolicy
    LOCAL = "evaluated locally"  # the principal's fetched policies, by ops/iam/evaluate.py
    TRUST = "trust policy"  # the role's trust policy, read and evaluated locally
    ROOT = "root user"  # IAM lets the account's root user do everything
    ROLE_LOOKUP = "role lookup"  # the role does not exist
    NOT_CHECKED = "not checked"


@dataclass(frozen=True)
class Row:
    """One requirement's verdict.

    detail:  why it is denied or unknown ("no policy allows it", "explicitly denied by X")
    fixable: an Allow in the principal's own policy would make it allowed (not so for an
             explicit Deny, a permissions boundary or an SCP)
    """

    requirement: Requirement
    state: State
    method: Method
    detail: str = ""
    fixable: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.requirement.to_dict(),
            "state": str(self.state),
            "checked_by": str(self.method),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class PrincipalReport:
    """The rows of one principal: the caller, the execution role or the function role.

    arn:          the principal as checked (an assumed role's role ARN)
    identity_arn: what STS named the caller (None for roles)
    exists:       False for a role that does not exist
    trusted_service: the service that assumes a role (None for the caller)
    notes:        how the check went, when it matters ("the simulator is not allowed: ...")
    """

    subject: str
    arn: str
    rows: tuple[Row, ...]
    identity_arn: str | None = None
    kind: str = "role"
    exists: bool = True
    trusted_service: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    def with_state(self, state: State) -> list[Row]:
        return [row for row in self.rows if row.state == state]

    @property
    def denied(self) -> list[Row]:
        return self.with_state(State.DENIED)

    @property
    def unknown(self) -> list[Row]:
        return self.with_state(State.UNKNOWN)

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "arn": self.arn,
            "identity_arn": self.identity_arn,
            "kind": self.kind,
            "exists": self.exists,
            "trusted_service": self.trusted_service,
            "notes": list(self.notes),
            "rows": [row.to_dict() for row in self.rows],
        }


@dataclass(frozen=True)
class IamReport:
    """The whole preflight: the caller first, then each role a service assumes."""

    caller: PrincipalReport
    roles: tuple[PrincipalReport, ...] = ()
    seconds: float = 0.0

    @property
    def principals(self) -> tuple[PrincipalReport, ...]:
        return (self.caller, *self.roles)

    @property
    def role(self) -> PrincipalReport | None:
        """The execution role's report, when the check covered it."""
        return next((report for report in self.roles if report.subject == "execution role"), None)

    @property
    def denied(self) -> list[tuple[PrincipalReport, Row]]:
        return [(report, row) for report in self.principals for row in report.denied]

    @property
    def unknown(self) -> list[tuple[PrincipalReport, Row]]:
        return [(report, row) for report in self.principals for row in report.unknown]

    @property
    def ok(self) -> bool:
        """Nothing denied (unknown rows are warnings, not failures)."""
        return not self.denied

    def to_dict(self) -> dict[str, Any]:
        counts = {
            str(state): sum(len(report.with_state(state)) for report in self.principals)
            for state in State
        }
        return {
            "ok": self.ok,
            "counts": counts,
            "seconds": round(self.seconds, 3),
            "principals": [report.to_dict() for report in self.principals],
        }

    def denied_error(self, hint: str | None = None, *, details: bool = True) -> AuthError | None:
        """The AuthError of a preflight with denied rows (one detail line each unless the rows
        are shown otherwise), or None. The default hint sends people to `qa-console iam check`,
        which prints the fix."""
        denied = self.denied
        if not denied:
            return None
        # A missing role is one finding, not one per permission it would need.
        parts = [
            f"the {r.subject} {r.name} does not exist" for r in self.principals if not r.exists
        ]
        others = [(report, row) for report, row in denied if report.exists]
        if others or not parts:
            count = f"{len(others)} permission{'s' if len(others) != 1 else ''}"
            parts.append(f"{count} the deploy needs {'are' if len(others) != 1 else 'is'} denied")
        lines = tuple(
            f"denied: {row.requirement.action} on {row.requirement.resource} for the "
            f"{report.subject} {report.arn} ({row.detail})"
            for report, row in others
        )
        return AuthError(
            "; ".join(parts),
            hint=hint or "`qa-console iam check` prints the policy that grants exactly these",
            details=lines if details else (),
        )

    def raise_if_denied(self) -> None:
        """Raise denied_error() when anything is denied: what a deploy calls before it starts."""
        error = self.denied_error()
        if error is not None:
            raise error
