"""The IAM preflight: is every requirement of a deployment allowed, for the caller and its roles?

Each principal's rows go to IAM's SimulatePrincipalPolicy in a few batched calls (simulate.py),
with the condition keys the real requests carry (iam:PassedToService for PassRole) plus the
ones every request has (aws:SecureTransport, aws:RequestedRegion, aws:CurrentTime), so a policy
that tests them is judged as AWS would judge the real call.

Where the simulator is not allowed (AccessDenied) or not there (stock moto), the principal's
own policies are fetched and evaluated locally by ops/iam/evaluate.py, and its rows say so;
where even that is not possible, the rows are `unknown` with the reason. A role's trust policy
is read and evaluated locally for the service that assumes the role (trust.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from qa_console.ops.iam.evaluate import (
    ALLOWED,
    EXPLICIT_DENY,
    PolicyDocumentError,
    RequestContext,
    evaluate,
)
from qa_console.ops.iam.identity import FEDERATED, ROOT, CallerIdentity, caller_identity
from qa_console.ops.iam.principals import PoliciesUnreadable, PrincipalPolicies, fetch_policies
from qa_console.ops.iam.report import IamReport, Method, PrincipalReport, Row, State
from qa_console.ops.iam.requirements import (
    Requirement,
    RoleNeeds,
    caller_requirements,
    role_needs,
)
from qa_console.ops.iam.simulate import (
    SimulatorUnavailable,
    Verdict,
    local_verdict,
    simulate,
    verdict_key,
)
from qa_console.ops.iam.trust import check_trust

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target
    from qa_console.ops.iam.facts import DeploymentFacts

# Services whose requests IAM sees in one region whatever the client's region.
_GLOBAL_SERVICES = frozenset({"iam"})
_GLOBAL_REGIONS = {"aws": "us-east-1", "aws-cn": "cn-north-1", "aws-us-gov": "us-gov-west-1"}
_SEEN_LOCALLY = "service control, session and resource policies are not seen"


def check_deployment(
    target: Target,
    facts: DeploymentFacts,
    *,
    identity: CallerIdentity | None = None,
    roles: bool = True,
) -> IamReport:
    """Check the caller's requirements and (with `roles`) each role's, trust included."""
    started = time.monotonic()
    identity = identity or caller_identity(target)
    checker = PrincipalChecker(target, facts.region, facts.partition)
    caller = checker.caller(identity, caller_requirements(facts))
    role_reports = (
        tuple(checker.role(needs, facts.account_id) for needs in role_needs(facts)) if roles else ()
    )
    return IamReport(caller, role_reports, time.monotonic() - started)


class PrincipalChecker:
    """Checks principals' rows against one target, remembering across principals when its IAM
    has no simulator at all (so stock moto is asked once, not once per principal)."""

    def __init__(self, target: Target, region: str, partition: str = "aws") -> None:
        self.target = target
        self.region = region
        self.partition = partition
        self.iam = target.client("iam")
        self._no_simulator: str | None = None
        now = datetime.now(UTC)
        self._time = {"aws:CurrentTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")}

    # --- principals -------------------------------------------------------------------------

    def caller(
        self, identity: CallerIdentity, requirements: Sequence[Requirement]
    ) -> PrincipalReport:
        """The caller's rows: simulated as its IAM user or role (an assumed role as its role)."""
        shown = identity.principal_arn or identity.arn

        def report(rows: Iterable[Row], notes: Iterable[str] = ()) -> PrincipalReport:
            return PrincipalReport(
                "caller", shown, tuple(rows), identity.arn, identity.kind, notes=tuple(notes)
            )

        if identity.kind == ROOT:
            note = "the root user may do everything (use an IAM user or role for deploys)"
            return report((Row(r, State.ALLOWED, Method.ROOT) for r in requirements), [note])
        if identity.principal_arn is None:
            why = (
                "a federated user's permissions come from its session, which IAM cannot simulate"
                if identity.kind == FEDERATED
                else f"{identity.arn} is not an IAM user or role"
            )
            return report(Row(r, State.UNKNOWN, Method.NOT_CHECKED, why) for r in requirements)
        rows, notes = self.rows(identity.principal_arn, requirements)
        return report(rows, notes)

    def role(self, needs: RoleNeeds, account_id: str) -> PrincipalReport:
        """A role's trust (can the service assume it?) and its own rows."""
        trust, exists, notes = check_trust(self.target, self.iam, needs, account_id)
        if not exists:
            missing = [
                Row(r, State.DENIED, Method.ROLE_LOOKUP, "the role does not exist")
                for r in needs.requirements
            ]
            return PrincipalReport(
                needs.subject,
                needs.role_arn,
                (trust, *missing),
                exists=False,
                trusted_service=needs.trusted_service,
                notes=notes,
            )
        rows, more = self.rows(needs.role_arn, needs.requirements)
        return PrincipalReport(
            needs.subject,
            needs.role_arn,
            (trust, *rows),
            trusted_service=needs.trusted_service,
            notes=(*notes, *more),
        )

    def rows(
        self, principal_arn: str, requirements: Sequence[Requirement]
    ) -> tuple[list[Row], tuple[str, ...]]:
        """Every row of one principal: simulated, else evaluated locally, else unknown."""
        reason = self._no_simulator
        if reason is None:
            try:
                verdicts = simulate(
                    self.target, self.iam, principal_arn, requirements, self.context
                )
                rows = [
                    self._row(r, verdicts.get(verdict_key(r)), Method.SIMULATED)
                    for r in requirements
                ]
                return rows, ()
            except SimulatorUnavailable as unavailable:
                reason = str(unavailable)
                if unavailable.everywhere:
                    self._no_simulator = reason
        try:
            fetched = fetch_policies(self.target, principal_arn)
        except PoliciesUnreadable as unreadable:
            why = f"{reason}, and it {unreadable}"
            return [Row(r, State.UNKNOWN, Method.NOT_CHECKED, why) for r in requirements], (why,)
        names = ", ".join(fetched.names) or "no policies"
        note = f"{reason}: evaluated locally from {names} ({_SEEN_LOCALLY})"
        return [self._local_row(fetched, principal_arn, r) for r in requirements], (note,)

    # --- the simulator ----------------------------------------------------------------------

    def context(self, requirement: Requirement) -> dict[str, str]:
        """The request context the real call carries: the row's own keys and every request's."""
        region = self.region
        if requirement.service in _GLOBAL_SERVICES:
            region = _GLOBAL_REGIONS.get(self.partition, region)
        return {
            "aws:SecureTransport": "true",
            "aws:RequestedRegion": region,
            **self._time,
            **requirement.context,
        }

    # --- verdicts to rows -------------------------------------------------------------------

    def _local_row(
        self, fetched: PrincipalPolicies, principal_arn: str, requirement: Requirement
    ) -> Row:
        try:
            result = evaluate(
                requirement.action,
                requirement.resource,
                fetched.policies,
                context=RequestContext(self.context(requirement)),
                permissions_boundaries=fetched.boundaries,
                caller_arn=principal_arn,
            )
        except PolicyDocumentError as error:
            return Row(requirement, State.UNKNOWN, Method.LOCAL, f"cannot evaluate: {error}")
        return self._row(requirement, local_verdict(result), Method.LOCAL)

    def _row(self, requirement: Requirement, verdict: Verdict | None, method: Method) -> Row:
        if verdict is None:
            return Row(requirement, State.UNKNOWN, method, "the simulator gave no answer for it")
        if verdict.decision == ALLOWED:
            return Row(requirement, State.ALLOWED, method)
        if verdict.decision == EXPLICIT_DENY:
            by = ", ".join(verdict.denied_by) or "a Deny statement"
            return Row(requirement, State.DENIED, method, f"explicitly denied by {by}", False)
        if verdict.organizations_denied:
            detail = "denied by a service control policy of the organization"
            return Row(requirement, State.DENIED, method, detail, False)
        if verdict.boundary_denied:
            detail = "outside the principal's permissions boundary"
            return Row(requirement, State.DENIED, method, detail, False)
        supplied = {key.lower() for key in self.context(requirement)}
        unknowable = [key for key in verdict.missing if key.lower() not in supplied]
        if unknowable:
            detail = f"depends on {', '.join(unknowable)}, which the check cannot know"
            return Row(requirement, State.UNKNOWN, method, detail)
        return Row(requirement, State.DENIED, method, "no policy allows it")
