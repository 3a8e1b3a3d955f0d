"""IAM's SimulatePrincipalPolicy, batched: a principal's rows in a few calls, answers as Verdicts.

Each call carries one request context (ContextEntries apply to the whole call) and answers every
action on every resource it is given, so rows are grouped per service and context. The local
evaluator's answers are turned into the same Verdicts, so one mapping to rows serves both.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qa_console.ops.aws.errors import AUTH_CODES, NOT_FOUND_CODES, aws_errors, error_code
from qa_console.ops.iam.evaluate import EXPLICIT_DENY, Evaluation
from qa_console.ops.iam.requirements import Requirement

if TYPE_CHECKING:
    from qa_console.ops.aws.target import Target

MAX_RESULTS = 1000  # IAM's MaxItems ceiling: a batch is sized to come back in one page
CONTEXT_TYPES = {"aws:securetransport": "boolean", "aws:currenttime": "date"}
_NOT_IMPLEMENTED_CODES = frozenset({"NotImplemented", "InternalFailure", "ServiceFailure"})
Context = tuple[tuple[str, str], ...]


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


def simulate(
    target: Target,
    iam: Any,
    principal_arn: str,
    requirements: Sequence[Requirement],
    context_of: Callable[[Requirement], Mapping[str, str]],
) -> dict[tuple[str, str], Verdict]:
    """verdict_key(row) -> Verdict for every row, in a few batched calls (see _batches).

    `iam` is the target's IAM client. Raises SimulatorUnavailable when this IAM will not
    simulate for this principal."""
    verdicts: dict[tuple[str, str], Verdict] = {}
    for context, actions, resources in _batches(requirements, context_of):
        entries = [
            {
                "ContextKeyName": key,
                "ContextKeyValues": [value],
                "ContextKeyType": CONTEXT_TYPES.get(key.lower(), "string"),
            }
            for key, value in context
        ]
        marker: str | None = None
        while True:
            answer = _simulate_page(
                target,
                iam,
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


def _simulate_page(target: Target, iam: Any, principal_arn: str, **arguments: Any) -> Any:
    from botocore.exceptions import ClientError
    from botocore.parsers import ResponseParserError

    with aws_errors(
        f"simulate the policies of {principal_arn}",
        target=target,
        resource=principal_arn,
        permission="iam:SimulatePrincipalPolicy",
    ):
        try:
            return iam.simulate_principal_policy(**arguments)
        except ClientError as error:
            code = error_code(error)
            if code in AUTH_CODES:
                raise SimulatorUnavailable("iam:SimulatePrincipalPolicy is not allowed") from None
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


def verdict_key(requirement: Requirement) -> tuple[str, str]:
    """How verdicts are keyed: IAM action names are case-insensitive, ARNs are not."""
    return requirement.action.lower(), requirement.resource


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


def local_verdict(result: Evaluation) -> Verdict:
    """The Verdict of ops/iam/evaluate.py's answer, in the simulator's terms."""
    return Verdict(
        decision=result.decision,
        missing=result.missing_context_values,
        denied_by=tuple(dict.fromkeys(m.policy_id for m in result.matched_statements))
        if result.decision == EXPLICIT_DENY
        else (),
        boundary_denied=result.allowed_by_permissions_boundary is False,
    )
