"""The IAM preflight: is every requirement of a deployment allowed, for the caller and its roles?

Each principal's rows go to IAM's SimulatePrincipalPolicy in a few batched calls (one per set of
request context: the call takes many actions and resources at once and answers every pair),
with the condition keys the real requests carry (iam:PassedToService for PassRole) plus the
ones every request has (aws:SecureTransport, aws:RequestedRegion, aws:CurrentTime), so a policy
that tests them is judged as AWS would judge the real call.

Where the simulator is not allowed (AccessDenied) or not there (stock moto), the principal's
own policies are fetched and evaluated locally by ops/iam/evaluate.py, and its rows say so;
where even that is not possible, the rows are `unknown` with the reason. A role's trust policy
is read with iam:GetRole and evaluated locally for the service that assumes the role.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from qa_console.ops.aws.errors import AUTH_CODES, NOT_FOUND_CODES, aws_errors, error_code
from qa_console.ops.iam.evaluate import (
    ALLOWED,
    EXPLICIT_DENY,
    RESOURCE_POLICY_TYPE,
    Evaluation,
    PolicyDocumentError,
    RequestContext,
    evaluate,
    parse_policy,
)
from qa_console.ops.iam.identity import FEDERATED, ROOT, CallerIdentity, caller_identity
from qa_console.ops.iam.principals import PoliciesUnreadable, PrincipalPolicies, fetch_policies
from qa_console.ops.iam.report import IamReport, Method, PrincipalReport, Row, State
from qa_console.ops.iam.requirements import (
    ASSUME_ROLE,
    Requirement,
    RoleNeeds,
    caller_requirements,
    role_needs,
)

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target
    from qa_console.ops.iam.facts import DeploymentFacts

MAX_RESULTS = 1000  # IAM's MaxItems ceiling: a batch is sized to come back in one page
# Services whose requests IAM sees in one region whatever the client's region.
_GLOBAL_SERVICES = frozenset({"iam"})
_GLOBAL_REGIONS = {"aws": "us-east-1", "aws-cn": "cn-north-1", "aws-us-gov": "us-gov-west-1"}
_CONTEXT_TYPES = {"aws:securetransport": "boolean", "aws:currenttime": "date"}
_NOT_IMPLEMENTED_CODES = frozenset({"NotImplemented", "InternalFailure", "ServiceFailure"})
_SEEN_LOCALLY = "service control, session and resource policies are not seen"


class SimulatorUnavailable(Exception):
    """SimulatePrincipalPolicy cannot answer for a principal; `everywhere`: for none at all."""

    def __init__(self, reason: str, *, everywhere: bool = False) -> None:
        super().__init__(reason)
        self.everywhere = everywhere


@dataclass(frozen=True)
class Verdict:
    """One (action, resource) decision, from the simulator or the local evaluator."""

    decision: str
    missing: tuple[str, ...] = ()
    denied_by: tuple[str, ...] = ()
    boundary_denied: bool = False
    organizations_denied: bool = False


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
        trust, exists, notes = self._trust(needs, account_id)
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
                verdicts = self._simulate(principal_arn, requirements)
                return [
                    self._row(r, verdicts.get(_key(r)), Method.SIMULATED) for r in requirements
                ], ()
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

    def _simulate(
        self, principal_arn: str, requirements: Sequence[Requirement]
    ) -> dict[tuple[str, str], Verdict]:
        verdicts: dict[tuple[str, str], Verdict] = {}
        for context, actions, resources in _batches(requirements, self.context):
            entries = [
                {
                    "ContextKeyName": key,
                    "ContextKeyValues": [value],
                    "ContextKeyType": _CONTEXT_TYPES.get(key.lower(), "string"),
                }
                for key, value in context
            ]
            marker: str | None = None
            while True:
                answer = self._simulate_page(
                    principal_arn,
                    PolicySourceArn=principal_arn,
                    ActionNames=actions,
                    ResourceArns=resources,
                    ContextEntries=entries,
                    MaxItems=MAX_RESULTS,
                    **({"Marker": marker} if marker else {}),
                )
                verdicts.update(_simulated_verdicts(answer))
                if not answer.get("IsTruncated"):
                    break
                marker = answer["Marker"]
        return verdicts

    def _simulate_page(self, principal_arn: str, **arguments: Any) -> Any:
        from botocore.exceptions import ClientError
        from botocore.parsers import ResponseParserError

        with aws_errors(
            f"simulate the policies of {principal_arn}",
            target=self.target,
            resource=principal_arn,
            permission="iam:SimulatePrincipalPolicy",
        ):
            try:
                return self.iam.simulate_principal_policy(**arguments)
            except ClientError as error:
                code = error_code(error)
                if code in AUTH_CODES:
                    raise SimulatorUnavailable(
                        "iam:SimulatePrincipalPolicy is not allowed"
                    ) from None
                if code in _NOT_IMPLEMENTED_CODES:
                    raise SimulatorUnavailable(
                        f"this IAM cannot simulate policies ({code})", everywhere=True
                    ) from None
                if code == "InvalidInput" or code in NOT_FOUND_CODES:
                    message = error.response.get("Error", {}).get("Message", code)
                    raise SimulatorUnavailable(f"the simulator refused it: {message}") from None
                raise
            except ResponseParserError:
                # Stock moto answers an HTML 500 page for the IAM actions it does not implement.
                raise SimulatorUnavailable(
                    "this IAM does not implement SimulatePrincipalPolicy", everywhere=True
                ) from None

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
        return self._row(requirement, _local_verdict(result), Method.LOCAL)

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

    # --- trust ------------------------------------------------------------------------------

    def _trust(self, needs: RoleNeeds, account_id: str) -> tuple[Row, bool, tuple[str, ...]]:
        """(trust row, whether the role exists, notes) from the role's trust policy."""
        from botocore.exceptions import ClientError

        trust = needs.trust
        name = needs.role_arn.rsplit("/", 1)[-1]
        with aws_errors(f"read role {name}", target=self.target, resource=f"role {name}"):
            try:
                role = self.iam.get_role(RoleName=name)["Role"]
            except ClientError as error:
                code = error_code(error)
                if code in NOT_FOUND_CODES:
                    detail = "the role does not exist"
                    return Row(trust, State.DENIED, Method.ROLE_LOOKUP, detail), False, ()
                if code in AUTH_CODES:
                    detail = "cannot read the role (iam:GetRole is not allowed)"
                    return Row(trust, State.UNKNOWN, Method.NOT_CHECKED, detail), True, ()
                raise
        notes: tuple[str, ...] = ()
        if role.get("Arn") and role["Arn"] != needs.role_arn:
            notes = (f"the role's ARN is {role['Arn']}, not {needs.role_arn}: use that one",)
        document = role.get("AssumeRolePolicyDocument") or {}
        text = document if isinstance(document, str) else json.dumps(document)
        try:
            policy = parse_policy(text, "trust policy", RESOURCE_POLICY_TYPE)
            result = evaluate(
                ASSUME_ROLE,
                needs.role_arn,
                [],
                resource_policy=policy,
                caller_arn=needs.trusted_service,
                context=RequestContext({"aws:SourceAccount": account_id}),
            )
        except PolicyDocumentError as error:
            return Row(trust, State.UNKNOWN, Method.TRUST, f"cannot evaluate: {error}"), True, notes
        if result.decision == ALLOWED:
            return Row(trust, State.ALLOWED, Method.TRUST), True, notes
        unknowable = [key for key in result.missing_context_values if key != "aws:SourceAccount"]
        if result.decision != EXPLICIT_DENY and unknowable:
            detail = f"the trust policy tests {', '.join(unknowable)}, which the check cannot know"
            return Row(trust, State.UNKNOWN, Method.TRUST, detail), True, notes
        detail = f"the trust policy does not let {needs.trusted_service} assume the role"
        return Row(trust, State.DENIED, Method.TRUST, detail), True, notes


# --- batching and parsing --------------------------------------------------------------------


def _key(requirement: Requirement) -> tuple[str, str]:
    return requirement.action.lower(), requirement.resource


Context = tuple[tuple[str, str], ...]


def _batches(
    requirements: Iterable[Requirement], context_of: Callable[[Requirement], Mapping[str, str]]
) -> list[tuple[Context, list[str], list[str]]]:
    """(context, actions, resources) of each SimulatePrincipalPolicy call: one per service and
    request context, each answering every action on every resource of its rows.

    The simulator answers the whole cross product, so a call per service wastes a few pairs
    (s3:PutObject on the bucket) for few calls: 8 calls for a deployment's caller and role
    (docs/benchmarks.md). Measured on the local AWS, an answered pair costs ~2 ms and a call
    ~10 ms, so one call for everything (~200 pairs) is slower there; on AWS a round trip costs
    far more than a pair. A batch over MAX_RESULTS pairs
    is split by actions (it still comes back a page at a time)."""
    groups: dict[tuple[str, Context], list[Requirement]] = defaultdict(list)
    for requirement in requirements:
        context = tuple(sorted(context_of(requirement).items()))
        groups[(requirement.service, context)].append(requirement)
    batches = []
    for (_, context), group in groups.items():
        actions = list(dict.fromkeys(r.action for r in group))
        resources = list(dict.fromkeys(r.resource for r in group))
        per_call = max(1, MAX_RESULTS // len(resources))
        for start in range(0, len(actions), per_call):
            batches.append((context, actions[start : start + per_call], resources))
    return batches


def _simulated_verdicts(answer: Mapping[str, Any]) -> dict[tuple[str, str], Verdict]:
    """(action, resource) -> Verdict from one SimulatePrincipalPolicy page.

    IAM reports per-resource decisions under ResourceSpecificResults when ResourceArns are given
    (and the missing context keys there "instead" of at the top); both places are read."""
    verdicts = {}
    for result in answer.get("EvaluationResults", []):
        action = str(result["EvalActionName"]).lower()
        organizations = result.get("OrganizationsDecisionDetail", {})
        denied_by_organization = organizations.get("AllowedByOrganizations") is False
        specifics = result.get("ResourceSpecificResults") or [
            {
                "EvalResourceName": result.get("EvalResourceName", "*"),
                "EvalResourceDecision": result["EvalDecision"],
                "MatchedStatements": result.get("MatchedStatements", []),
                "PermissionsBoundaryDecisionDetail": result.get(
                    "PermissionsBoundaryDecisionDetail", {}
                ),
            }
        ]
        for specific in specifics:
            decision = str(specific["EvalResourceDecision"])
            boundary = specific.get("PermissionsBoundaryDecisionDetail") or result.get(
                "PermissionsBoundaryDecisionDetail", {}
            )
            missing = [
                *specific.get("MissingContextValues", []),
                *result.get("MissingContextValues", []),
            ]
            verdicts[(action, str(specific["EvalResourceName"]))] = Verdict(
                decision=decision,
                missing=tuple(dict.fromkeys(missing)),
                denied_by=_sources(specific) if decision == EXPLICIT_DENY else (),
                boundary_denied=boundary.get("AllowedByPermissionsBoundary") is False,
                organizations_denied=denied_by_organization,
            )
    return verdicts


def _sources(result: Mapping[str, Any]) -> tuple[str, ...]:
    ids = (str(s.get("SourcePolicyId", "")) for s in result.get("MatchedStatements", []))
    return tuple(dict.fromkeys(i for i in ids if i))


def _local_verdict(result: Evaluation) -> Verdict:
    return Verdict(
        decision=result.decision,
        missing=result.missing_context_values,
        denied_by=tuple(dict.fromkeys(m.policy_id for m in result.matched_statements))
        if result.decision == EXPLICIT_DENY
        else (),
        boundary_denied=result.allowed_by_permissions_boundary is False,
    )
