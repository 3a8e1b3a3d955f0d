"""IAM SimulatePrincipalPolicy and SimulateCustomPolicy for the embedded moto server.

moto 5.2.5 does not implement either call, and qa-console's IAM preflight relies on both. The
supervisor calls `install_iam_simulation()` inside the moto server process before it serves: it
adds the two actions to moto's IAM response handler, which then answers them from the
principal's real policies in moto's IAM backend, evaluated by qa_console.ops.iam.evaluate, in
the exact response shape botocore parses (moto serializes our result with the IAM service model).

`simulate()` is the moto-free half (request -> response dict) so it can be tested and reused
without a server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from qa_console.ops.iam.evaluate import (
    IDENTITY_POLICY_TYPE,
    RESOURCE_POLICY_TYPE,
    Evaluation,
    MatchedStatement,
    Policy,
    PolicyDocumentError,
    RequestContext,
    evaluate,
    parse_policy,
)

DEFAULT_MAX_ITEMS = 100  # IAM's default page size
ALL_RESOURCES = "*"
_MARKER_PREFIX = "qa-console-sim-"
_PRINCIPAL_ARN = re.compile(
    r"arn:(?P<partition>[\w-]+):iam::(?P<account>\d{12}):(?P<kind>user|role|group)/(?P<path>.+)"
)
# What moto's STS calls a caller whose credentials belong to no IAM user or role. moto without
# IAM enforcement (the embedded local AWS) lets that caller do everything, and says so when asked.
_DEFAULT_CALLER = re.compile(r"arn:[\w-]+:sts::\d{12}:user/moto")
_ALLOW_EVERYTHING = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)
DEFAULT_CALLER_POLICY = "local-aws-default-caller"
_INSTALLED_MARK = "_qa_console_iam_simulation"


class SimulationInputError(ValueError):
    """A request IAM answers with InvalidInput."""


class NoSuchPrincipalError(LookupError):
    """PolicySourceArn names a user, role or group that does not exist (IAM: NoSuchEntity)."""


@dataclass(frozen=True)
class SimulationRequest:
    """The parameters both Simulate* calls share, already parsed from the API request."""

    action_names: Sequence[str]
    resource_arns: Sequence[str] = ()
    context: RequestContext = field(default_factory=RequestContext)
    permissions_boundaries: Sequence[Policy] = ()
    resource_policy: Policy | None = None
    caller_arn: str | None = None
    max_items: int | None = None
    marker: str | None = None


def parse_input_policies(texts: Sequence[str] | None, list_name: str) -> list[Policy]:
    """Parse PolicyInputList-style documents, named `<ListName>.<n>` as IAM names them."""
    policies = []
    for number, text in enumerate(texts or (), start=1):
        try:
            policies.append(parse_policy(text, f"{list_name}.{number}"))
        except PolicyDocumentError as error:
            raise SimulationInputError(str(error)) from None
    return policies


def _position(position: Any) -> dict[str, int]:
    return {"Line": position.line, "Column": position.column}


def _statement(matched: MatchedStatement) -> dict[str, Any]:
    return {
        "SourcePolicyId": matched.policy_id,
        "SourcePolicyType": matched.policy_type,
        "StartPosition": _position(matched.start),
        "EndPosition": _position(matched.end),
    }


def _result(evaluation: Evaluation, resource_specific: bool) -> dict[str, Any]:
    statements = [_statement(matched) for matched in evaluation.matched_statements]
    missing = list(evaluation.missing_context_values)
    boundary = (
        {"AllowedByPermissionsBoundary": evaluation.allowed_by_permissions_boundary}
        if evaluation.allowed_by_permissions_boundary is not None
        else None
    )
    result: dict[str, Any] = {
        "EvalActionName": evaluation.action,
        "EvalResourceName": evaluation.resource,
        "EvalDecision": evaluation.decision,
        "MatchedStatements": statements,
        # IAM documents that with explicit ResourceArns the missing keys are reported under
        # ResourceSpecificResults "instead" of here; clients should read both places.
        "MissingContextValues": [] if resource_specific else missing,
    }
    if boundary is not None:
        result["PermissionsBoundaryDecisionDetail"] = boundary
    if resource_specific:
        specific: dict[str, Any] = {
            "EvalResourceName": evaluation.resource,
            "EvalResourceDecision": evaluation.decision,
            "MatchedStatements": statements,
            "MissingContextValues": missing,
        }
        if boundary is not None:
            specific["PermissionsBoundaryDecisionDetail"] = boundary
        result["ResourceSpecificResults"] = [specific]
    return result


def _page_start(marker: str | None, total: int) -> int:
    if marker is None:
        return 0
    digits = marker.removeprefix(_MARKER_PREFIX)
    if not marker.startswith(_MARKER_PREFIX) or not digits.isdigit() or int(digits) > total:
        raise SimulationInputError(f"Invalid Marker: {marker}")
    return int(digits)


def simulate(policies: Sequence[Policy], request: SimulationRequest) -> dict[str, Any]:
    """Evaluate every action on every resource; the response dict of SimulatePolicyResponse.

    One EvaluationResult per (action, resource) pair, actions outermost, as IAM orders them.
    Without ResourceArns (or with just "*") the resource is "*" and there are no
    ResourceSpecificResults.
    """
    if not request.action_names:
        raise SimulationInputError("ActionNames must name at least one action.")
    resources = [arn for arn in request.resource_arns if arn] or [ALL_RESOURCES]
    resource_specific = resources != [ALL_RESOURCES]
    results = []
    for action in request.action_names:
        for resource in resources:
            try:
                evaluation = evaluate(
                    action,
                    resource,
                    policies,
                    context=request.context,
                    permissions_boundaries=request.permissions_boundaries,
                    resource_policy=request.resource_policy,
                    caller_arn=request.caller_arn,
                )
            except PolicyDocumentError as error:
                raise SimulationInputError(str(error)) from None
            results.append(_result(evaluation, resource_specific))
    start = _page_start(request.marker, len(results))
    size = request.max_items or DEFAULT_MAX_ITEMS
    page = results[start : start + size]
    response: dict[str, Any] = {
        "EvaluationResults": page,
        "IsTruncated": start + size < len(results),
    }
    if response["IsTruncated"]:
        response["Marker"] = f"{_MARKER_PREFIX}{start + size}"
    return response


def request_from_params(params: Mapping[str, Any], default_caller: str | None) -> SimulationRequest:
    """Build a SimulationRequest from the parsed API parameters of either Simulate* call."""
    for unsupported in ("PolicyExclusionList", "OrderedOrganizationPolicyInputList"):
        if params.get(unsupported):
            raise SimulationInputError(
                f"{unsupported} is not supported by qa-console's local IAM simulator."
            )
    resource_policy = None
    if params.get("ResourcePolicy"):
        try:
            resource_policy = parse_policy(
                params["ResourcePolicy"], "ResourcePolicy", RESOURCE_POLICY_TYPE
            )
        except PolicyDocumentError as error:
            raise SimulationInputError(str(error)) from None
    max_items = params.get("MaxItems")
    return SimulationRequest(
        action_names=list(params.get("ActionNames") or ()),
        resource_arns=list(params.get("ResourceArns") or ()),
        context=RequestContext.from_entries(params.get("ContextEntries")),
        permissions_boundaries=parse_input_policies(
            params.get("PermissionsBoundaryPolicyInputList"), "PermissionsBoundaryPolicyInputList"
        ),
        resource_policy=resource_policy,
        caller_arn=params.get("CallerArn") or default_caller,
        max_items=int(max_items) if max_items else None,
        marker=params.get("Marker"),
    )


# --- moto side -----------------------------------------------------------------------------------


def _default_document(managed: Any) -> str:
    for version in managed.versions:
        if version.is_default:
            return str(version.document)
    return str(managed.versions[-1].document)


def _entity_policies(kind: str, entity: Any) -> list[Policy]:
    """Inline policies as `<kind>_<entity>_<policy>` and managed ones by name, as IAM names them."""
    policies = [
        parse_policy(document, f"{kind}_{entity.name}_{name}", IDENTITY_POLICY_TYPE)
        for name, document in entity.policies.items()
    ]
    policies += [
        parse_policy(_default_document(managed), managed.name, IDENTITY_POLICY_TYPE)
        for managed in entity.managed_policies.values()
    ]
    return policies


def principal_policies(source_arn: str) -> tuple[list[Policy], list[Policy], str | None]:
    """(identity policies, permissions boundaries, default caller) of a principal in moto."""
    from moto.iam.models import iam_backends

    if _DEFAULT_CALLER.fullmatch(source_arn or ""):
        return [parse_policy(_ALLOW_EVERYTHING, DEFAULT_CALLER_POLICY)], [], source_arn
    match = _PRINCIPAL_ARN.fullmatch(source_arn or "")
    if match is None:
        # Notably sts assumed-role ARNs: IAM wants the role ARN instead.
        raise SimulationInputError(
            f"Invalid Entity Arn: {source_arn} does not clearly define entity type and name."
        )
    kind, name = match["kind"], match["path"].rsplit("/", 1)[-1]
    backend = iam_backends[match["account"]][match["partition"]]
    entities: dict[str, Mapping[str, Any]] = {
        "user": backend.users,
        "role": {role.name: role for role in backend.get_roles()},
        "group": backend.groups,
    }
    entity = entities[kind].get(name)
    if entity is None:
        raise NoSuchPrincipalError(f"The {kind} with name {name} cannot be found.")
    policies = _entity_policies(kind, entity)
    boundaries: list[Policy] = []
    if kind == "user":
        for group in backend.get_groups_for_user(name):
            policies += _entity_policies("group", group)
    boundary_arn = getattr(entity, "permissions_boundary_arn", None)
    if boundary_arn and boundary_arn in backend.managed_policies:
        managed = backend.managed_policies[boundary_arn]
        boundaries.append(parse_policy(_default_document(managed), managed.name))
    return policies, boundaries, source_arn if kind == "user" else None


def _params(response: Any) -> dict[str, Any]:
    names = (
        "PolicySourceArn", "PolicyInputList", "PermissionsBoundaryPolicyInputList",
        "PolicyExclusionList", "OrderedOrganizationPolicyInputList", "ActionNames",
        "ResourceArns", "ResourcePolicy", "CallerArn", "ContextEntries", "MaxItems", "Marker",
    )  # fmt: skip
    return {name: response._get_param(name) for name in names}


def _answer(handler: Any) -> Any:
    """Run a simulation handler, mapping our errors to the IAM errors moto serializes."""
    from moto.core.responses import ActionResult
    from moto.iam.exceptions import IAMException, InvalidInput, NoSuchEntity

    class PolicyEvaluation(IAMException):
        code = "PolicyEvaluation"

    try:
        return ActionResult(handler())
    except SimulationInputError as error:
        raise InvalidInput(str(error)) from None
    except NoSuchPrincipalError as error:
        raise NoSuchEntity(str(error)) from None
    except PolicyDocumentError as error:
        # A stored policy moto accepted but the evaluator cannot read: IAM's 500 for this case.
        raise PolicyEvaluation(str(error)) from None


def _simulate_principal_policy(self: Any) -> Any:
    def run() -> dict[str, Any]:
        params = _params(self)
        policies, boundaries, caller = principal_policies(params["PolicySourceArn"])
        request = request_from_params(params, caller)
        policies += parse_input_policies(params["PolicyInputList"], "PolicyInputList")
        boundaries += request.permissions_boundaries
        return simulate(policies, replace(request, permissions_boundaries=boundaries))

    return _answer(run)


def _simulate_custom_policy(self: Any) -> Any:
    def run() -> dict[str, Any]:
        params = _params(self)
        policies = parse_input_policies(params["PolicyInputList"], "PolicyInputList")
        if not policies:
            raise SimulationInputError("PolicyInputList must contain at least one policy.")
        return simulate(policies, request_from_params(params, None))

    return _answer(run)


def install_iam_simulation() -> None:
    """Teach this process's moto IAM handler SimulatePrincipalPolicy and SimulateCustomPolicy.

    Call it in the moto server process before serving. Idempotent. moto dispatches an IAM
    action to the IamResponse method named after it (SimulatePrincipalPolicy ->
    simulate_principal_policy), so adding the two methods is the whole patch; the tests in
    tests/test_localaws_iam_simulator.py go through a real server so a moto upgrade that
    changes this dispatch fails them.
    """
    from moto.iam.responses import IamResponse

    if getattr(IamResponse, _INSTALLED_MARK, False):
        return
    IamResponse.simulate_principal_policy = _simulate_principal_policy  # type: ignore[attr-defined]
    IamResponse.simulate_custom_policy = _simulate_custom_policy  # type: ignore[attr-defined]
    setattr(IamResponse, _INSTALLED_MARK, True)
