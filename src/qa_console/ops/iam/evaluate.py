"""The IAM policy evaluation engine (no moto, no AWS): the IAM preflight evaluates a principal's
fetched policies with it when IAM's simulator is not allowed, and the embedded local AWS answers
SimulatePrincipalPolicy with it (localaws/iam/simulator.py).

It decides one request (action, resource, context) against identity policies, optional
permissions boundaries and an optional resource policy, the way IAM's simulator reports it:
an explicit Deny anywhere wins; otherwise the request is allowed when an identity policy allows
it (and every permissions boundary allows it too) or the resource policy allows the caller;
otherwise it is implicitly denied. Matched statements carry their source policy id and their
position in the policy text, as SimulatePrincipalPolicy returns them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qa_console.ops.iam.conditions import ConditionError, evaluate_condition
from qa_console.ops.iam.patterns import Variables, action_matches, arn_matches

ALLOWED = "allowed"
EXPLICIT_DENY = "explicitDeny"
IMPLICIT_DENY = "implicitDeny"

# What real IAM puts in MatchedStatements.SourcePolicyType for identity policies (inline,
# managed or PolicyInputList alike), although the API model lists other values.
IDENTITY_POLICY_TYPE = "IAM Policy"
RESOURCE_POLICY_TYPE = "resource"

# Policy variables are substituted only under this version; older documents keep `${...}` as text.
_VARIABLES_VERSION = "2012-10-17"
_EFFECTS = ("Allow", "Deny")


class PolicyDocumentError(ValueError):
    """A policy document the simulator cannot evaluate (IAM answers InvalidInput / malformed)."""


@dataclass(frozen=True)
class Position:
    """Line and column (both from 1) as IAM reports statement boundaries."""

    line: int
    column: int


@dataclass(frozen=True)
class Statement:
    effect: str
    body: Mapping[str, Any]
    start: Position
    end: Position

    @property
    def sid(self) -> str | None:
        sid = self.body.get("Sid")
        return sid if isinstance(sid, str) else None


@dataclass(frozen=True)
class Policy:
    """A parsed policy document and how the simulator names it (SourcePolicyId/Type)."""

    policy_id: str
    policy_type: str
    version: str | None
    statements: tuple[Statement, ...]

    @property
    def variables_enabled(self) -> bool:
        return self.version == _VARIABLES_VERSION


@dataclass(frozen=True)
class MatchedStatement:
    policy_id: str
    policy_type: str
    start: Position
    end: Position
    sid: str | None = None


@dataclass(frozen=True)
class Evaluation:
    """The simulator's answer for one action on one resource."""

    action: str
    resource: str
    decision: str
    matched_statements: tuple[MatchedStatement, ...]
    missing_context_values: tuple[str, ...]
    # None when no permissions boundary took part in the evaluation.
    allowed_by_permissions_boundary: bool | None = None


class RequestContext:
    """Context keys of the simulated request. Key names are case-insensitive, as in IAM."""

    def __init__(self, values: Mapping[str, str | Sequence[str]] | None = None) -> None:
        self._values: dict[str, tuple[str, ...]] = {}
        for key, value in (values or {}).items():
            items = (value,) if isinstance(value, str) else tuple(value)
            self._values[key.lower()] = tuple(str(item) for item in items)

    @classmethod
    def from_entries(cls, entries: Iterable[Mapping[str, Any]] | None) -> RequestContext:
        """From the API's ContextEntries (ContextKeyName, ContextKeyValues, ContextKeyType)."""
        values: dict[str, list[str]] = {}
        for entry in entries or ():
            name = entry.get("ContextKeyName")
            if not name:
                continue
            raw = entry.get("ContextKeyValues") or []
            values.setdefault(name, []).extend(str(item) for item in raw)
        return cls(values)

    def get(self, key: str) -> tuple[str, ...] | None:
        values = self._values.get(key.lower())
        return values if values else None


# --- Parsing -------------------------------------------------------------------------------------


class _Lines:
    """Maps character offsets of the policy text to IAM's (line, column) positions."""

    def __init__(self, text: str) -> None:
        self._starts = [0]
        for index, char in enumerate(text):
            if char == "\n":
                self._starts.append(index + 1)

    def position(self, offset: int) -> Position:
        line = 0
        low, high = 0, len(self._starts) - 1
        while low <= high:
            middle = (low + high) // 2
            if self._starts[middle] <= offset:
                line = middle
                low = middle + 1
            else:
                high = middle - 1
        return Position(line + 1, offset - self._starts[line] + 1)


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


def _statement_spans(text: str) -> list[tuple[int, int]]:
    """Offsets (start, end) IAM reports for each statement of the top-level Statement value.

    IAM's positions are where its JSON reader stands: a statement starts just after the token
    before it (`[`, the previous statement's `}`, or for a lone statement object its own `{`)
    and ends just after its closing `}`. This reproduces AWS's published examples exactly.
    """
    decoder = json.JSONDecoder()
    index = _skip_space(text, 0)
    if index >= len(text) or text[index] != "{":
        return []
    index += 1
    spans: list[tuple[int, int]] = []
    while True:
        index = _skip_space(text, index)
        if index >= len(text) or text[index] == "}":
            return spans
        key, index = decoder.raw_decode(text, index)
        index = _skip_space(text, index)
        index = _skip_space(text, index + 1)  # the ':'
        if key == "Statement":
            spans = []
            if text[index] == "{":
                _, end = decoder.raw_decode(text, index)
                spans.append((index + 1, end))
                index = end
            elif text[index] == "[":
                cursor = index + 1
                while True:
                    element = _skip_space(text, cursor)
                    if text[element] == ",":
                        element = _skip_space(text, element + 1)
                    if text[element] == "]":
                        index = element + 1
                        break
                    _, end = decoder.raw_decode(text, element)
                    spans.append((cursor, end))
                    cursor = end
            else:
                _, index = decoder.raw_decode(text, index)
        else:
            _, index = decoder.raw_decode(text, index)
        index = _skip_space(text, index)
        if index < len(text) and text[index] == ",":
            index += 1


def _string_list(statement: Mapping[str, Any], key: str) -> list[str] | None:
    value = statement.get(key)
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) for item in items):
        raise PolicyDocumentError(f"{key} must be a string or a non-empty list of strings.")
    return items


def _check_statement(body: Any, resource_policy: bool) -> str:
    if not isinstance(body, dict):
        raise PolicyDocumentError("Each statement must be a JSON object.")
    effect = body.get("Effect")
    if effect not in _EFFECTS:
        raise PolicyDocumentError(f"Effect must be Allow or Deny, not {effect!r}.")
    for first, second in (("Action", "NotAction"), ("Resource", "NotResource")):
        present = [key for key in (first, second) if key in body]
        if len(present) > 1:
            raise PolicyDocumentError(f"A statement cannot have both {first} and {second}.")
        if not present and (first == "Action" or not resource_policy):
            raise PolicyDocumentError(f"A statement must have {first} or {second}.")
        if present:
            _string_list(body, present[0])
    if resource_policy and "Principal" not in body and "NotPrincipal" not in body:
        raise PolicyDocumentError(
            "A resource policy statement must have Principal or NotPrincipal."
        )
    return effect


def parse_policy(text: str, policy_id: str, policy_type: str = IDENTITY_POLICY_TYPE) -> Policy:
    """Parse a policy document; raises PolicyDocumentError when IAM could not evaluate it."""
    try:
        document = json.loads(text)
    except (TypeError, ValueError) as error:
        raise PolicyDocumentError(f"Policy {policy_id} is not valid JSON: {error}") from None
    if not isinstance(document, dict) or "Statement" not in document:
        raise PolicyDocumentError(f"Policy {policy_id} must be an object with a Statement.")
    raw = document["Statement"]
    bodies = raw if isinstance(raw, list) else [raw]
    spans = _statement_spans(text)
    if len(spans) != len(bodies):  # unusual layout (duplicate keys): positions stay approximate
        spans = [(0, len(text))] * len(bodies)
    lines = _Lines(text)
    resource_policy = policy_type == RESOURCE_POLICY_TYPE
    statements = []
    for body, (start, end) in zip(bodies, spans, strict=True):
        effect = _check_statement(body, resource_policy)
        statements.append(Statement(effect, body, lines.position(start), lines.position(end)))
    version = document.get("Version")
    return Policy(
        policy_id, policy_type, version if isinstance(version, str) else None, tuple(statements)
    )


# --- Evaluation ----------------------------------------------------------------------------------


def _account_of(arn: str) -> str | None:
    parts = arn.split(":", 5)
    return parts[4] if len(parts) == 6 and parts[4] else None


def _principal_listed(value: Any, caller: str | None) -> bool:
    if value == "*":
        return True
    if caller is None or not isinstance(value, Mapping):
        return False
    for kind, raw in value.items():
        for principal in raw if isinstance(raw, list) else [raw]:
            if principal == "*" or principal == caller:
                return True
            if kind == "AWS" and isinstance(principal, str):
                # An account id or its root ARN names every principal of that account.
                account = principal if principal.isdigit() else None
                if principal.endswith(":root"):
                    account = _account_of(principal)
                if account is not None and account == _account_of(caller):
                    return True
    return False


@dataclass
class _StatementResult:
    applies: bool
    missing: list[str]


def _evaluate_statement(
    statement: Statement,
    policy: Policy,
    action: str,
    resource: str,
    context: RequestContext,
    caller: str | None,
) -> _StatementResult:
    body = statement.body
    if "Action" in body:
        action_hit = any(action_matches(p, action) for p in _string_list(body, "Action") or [])
    else:
        action_hit = not any(
            action_matches(p, action) for p in _string_list(body, "NotAction") or []
        )
    if not action_hit:
        return _StatementResult(False, [])
    if "Principal" in body and not _principal_listed(body["Principal"], caller):
        return _StatementResult(False, [])
    if "NotPrincipal" in body and _principal_listed(body["NotPrincipal"], caller):
        return _StatementResult(False, [])
    lookup = context.get if policy.variables_enabled else None
    variables = Variables(lookup)
    if "Resource" in body:
        hits = [arn_matches(p, resource, variables) for p in _string_list(body, "Resource") or []]
        resource_hit = any(hits)
    elif "NotResource" in body:
        hits = [
            arn_matches(p, resource, variables) for p in _string_list(body, "NotResource") or []
        ]
        resource_hit = not any(hits)
    else:  # a resource policy statement applies to the resource it is attached to
        resource_hit = True
    if not resource_hit:
        # A pattern that could not match for want of a ${variable} still needed that key.
        return _StatementResult(False, list(variables.missing))
    condition = body.get("Condition")
    if condition is None:
        return _StatementResult(True, list(variables.missing))
    try:
        outcome = evaluate_condition(
            condition, context.get, variables_enabled=policy.variables_enabled
        )
    except ConditionError as error:
        raise PolicyDocumentError(f"Policy {policy.policy_id}: {error}") from None
    return _StatementResult(outcome.satisfied, [*variables.missing, *outcome.missing])


@dataclass
class _Tally:
    allows: list[MatchedStatement]
    denies: list[MatchedStatement]


def _tally(
    policies: Iterable[Policy],
    action: str,
    resource: str,
    context: RequestContext,
    caller: str | None,
    missing: list[str],
) -> _Tally:
    tally = _Tally([], [])
    for policy in policies:
        for statement in policy.statements:
            result = _evaluate_statement(statement, policy, action, resource, context, caller)
            for key in result.missing:
                if key.lower() not in (name.lower() for name in missing):
                    missing.append(key)
            if result.applies:
                matched = MatchedStatement(
                    policy.policy_id,
                    policy.policy_type,
                    statement.start,
                    statement.end,
                    statement.sid,
                )
                (tally.allows if statement.effect == "Allow" else tally.denies).append(matched)
    return tally


def evaluate(
    action: str,
    resource: str,
    policies: Sequence[Policy],
    *,
    context: RequestContext | None = None,
    permissions_boundaries: Sequence[Policy] = (),
    resource_policy: Policy | None = None,
    caller_arn: str | None = None,
) -> Evaluation:
    """Decide one action on one resource.

    MissingContextValues lists the condition keys (and `${...}` variables) of statements whose
    action and resource match the request, that the context did not supply: those are the
    statements whose outcome the missing values could change. Keys tested only with `Null`
    are not reported, since their absence is a valid answer to that test.
    """
    context = context or RequestContext()
    missing: list[str] = []
    identity = _tally(policies, action, resource, context, caller_arn, missing)
    boundary = _tally(permissions_boundaries, action, resource, context, caller_arn, missing)
    resource_side = _tally(
        [resource_policy] if resource_policy else [], action, resource, context, caller_arn, missing
    )
    boundary_allows: bool | None = None
    if permissions_boundaries:
        boundary_allows = bool(boundary.allows) and not boundary.denies
    denies = [*identity.denies, *boundary.denies, *resource_side.denies]
    if denies:
        decision, matched = EXPLICIT_DENY, denies
    elif resource_side.allows or (identity.allows and boundary_allows is not False):
        decision = ALLOWED
        matched = [*identity.allows, *boundary.allows, *resource_side.allows]
    else:
        decision, matched = IMPLICIT_DENY, []
    return Evaluation(
        action=action,
        resource=resource,
        decision=decision,
        matched_statements=tuple(matched),
        missing_context_values=tuple(missing),
        allowed_by_permissions_boundary=boundary_allows,
    )
