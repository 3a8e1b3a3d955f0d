"""IAM Condition blocks: the operator families, `...IfExists`, `ForAnyValue:`/`ForAllValues:`.

Semantics follow the IAM policy reference: every operator in a block and every key under an
operator must hold (AND); the values listed for one key are alternatives (OR). A key the request
lacks makes a positive operator false and a negated one (StringNotEquals, ArnNotLike,
NotIpAddress, ...) true; `...IfExists` makes it true; `ForAllValues:` is true and
`ForAnyValue:` false on an absent key; `Null` tests presence itself. Keys that were needed but
absent are returned so the simulator can report them as MissingContextValues.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from qa_console.ops.iam.patterns import Lookup, Variables, arn_matches

# (value from the request, value from the policy, variable expander) -> the positive comparison.
Compare = Callable[[str, str, Variables], bool]


class ConditionError(ValueError):
    """A Condition block IAM would reject: unknown operator, wrong shape, unusable value."""


@dataclass(frozen=True)
class _Base:
    name: str
    compare: Compare
    negated: bool = False


def _string_equals(actual: str, wanted: str, variables: Variables) -> bool:
    literal = variables.literal(wanted)
    return literal is not None and actual == literal


def _string_equals_ignore_case(actual: str, wanted: str, variables: Variables) -> bool:
    literal = variables.literal(wanted)
    return literal is not None and actual.casefold() == literal.casefold()


def _string_like(actual: str, wanted: str, variables: Variables) -> bool:
    return variables.matches(wanted, actual)


def _arn_like(actual: str, wanted: str, variables: Variables) -> bool:
    return arn_matches(wanted, actual, variables)


def _numeric(compare: Callable[[float, float], bool]) -> Compare:
    def check(actual: str, wanted: str, _variables: Variables) -> bool:
        try:
            return compare(float(actual), float(wanted))
        except ValueError:
            return False

    return check


def _parse_date(text: str) -> datetime:
    stripped = text.strip()
    try:
        # IAM accepts epoch seconds as well as ISO 8601 for the Date operators.
        return datetime.fromtimestamp(float(stripped), UTC)
    except ValueError:
        pass
    parsed = datetime.fromisoformat(stripped)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _date(compare: Callable[[datetime, datetime], bool]) -> Compare:
    def check(actual: str, wanted: str, _variables: Variables) -> bool:
        try:
            return compare(_parse_date(actual), _parse_date(wanted))
        except (ValueError, OverflowError):
            return False

    return check


def _bool(actual: str, wanted: str, _variables: Variables) -> bool:
    return actual.strip().lower() == wanted.strip().lower()


def _binary(actual: str, wanted: str, _variables: Variables) -> bool:
    try:
        return base64.b64decode(actual, validate=True) == base64.b64decode(wanted, validate=True)
    except (binascii.Error, ValueError):
        return actual == wanted


def _ip_address(actual: str, wanted: str, _variables: Variables) -> bool:
    try:
        network = ipaddress.ip_network(wanted.strip(), strict=False)
        address = ipaddress.ip_network(actual.strip(), strict=False)
    except ValueError:
        return False
    return address.version == network.version and address.subnet_of(network)  # type: ignore[arg-type]


_BASES: dict[str, _Base] = {
    base.name.lower(): base
    for base in (
        _Base("StringEquals", _string_equals),
        _Base("StringNotEquals", _string_equals, negated=True),
        _Base("StringEqualsIgnoreCase", _string_equals_ignore_case),
        _Base("StringNotEqualsIgnoreCase", _string_equals_ignore_case, negated=True),
        _Base("StringLike", _string_like),
        _Base("StringNotLike", _string_like, negated=True),
        _Base("NumericEquals", _numeric(operator.eq)),
        _Base("NumericNotEquals", _numeric(operator.eq), negated=True),
        _Base("NumericLessThan", _numeric(operator.lt)),
        _Base("NumericLessThanEquals", _numeric(operator.le)),
        _Base("NumericGreaterThan", _numeric(operator.gt)),
        _Base("NumericGreaterThanEquals", _numeric(operator.ge)),
        _Base("DateEquals", _date(operator.eq)),
        _Base("DateNotEquals", _date(operator.eq), negated=True),
        _Base("DateLessThan", _date(operator.lt)),
        _Base("DateLessThanEquals", _date(operator.le)),
        _Base("DateGreaterThan", _date(operator.gt)),
        _Base("DateGreaterThanEquals", _date(operator.ge)),
        _Base("Bool", _bool),
        _Base("BinaryEquals", _binary),
        _Base("IpAddress", _ip_address),
        _Base("NotIpAddress", _ip_address, negated=True),
        # IAM documents ArnEquals and ArnLike as the same test: both honour wildcards.
        _Base("ArnEquals", _arn_like),
        _Base("ArnLike", _arn_like),
        _Base("ArnNotEquals", _arn_like, negated=True),
        _Base("ArnNotLike", _arn_like, negated=True),
    )
}
_QUALIFIERS = {"foranyvalue": "ForAnyValue", "forallvalues": "ForAllValues"}
_IF_EXISTS = "ifexists"


@dataclass(frozen=True)
class Operator:
    """A parsed operator name such as `ForAllValues:StringLikeIfExists`; base None is `Null`."""

    text: str
    base: _Base | None
    qualifier: str | None = None
    if_exists: bool = False


def parse_operator(text: str) -> Operator:
    """Parse a condition operator name; raises ConditionError for one IAM does not know."""
    qualifier = None
    rest = text
    if ":" in text:
        prefix, rest = text.split(":", 1)
        qualifier = _QUALIFIERS.get(prefix.lower())
        if qualifier is None:
            raise ConditionError(f"Unknown condition operator qualifier in {text!r}.")
    lowered = rest.lower()
    if lowered == "null":
        if qualifier:
            raise ConditionError(f"{text!r}: Null takes no set qualifier.")
        return Operator(text, None)
    if_exists = lowered.endswith(_IF_EXISTS) and lowered != _IF_EXISTS
    if if_exists:
        lowered = lowered[: -len(_IF_EXISTS)]
    base = _BASES.get(lowered)
    if base is None:
        raise ConditionError(f"Unknown condition operator {text!r}.")
    return Operator(text, base, qualifier, if_exists)


def _policy_values(raw: Any, where: str) -> list[str]:
    items = raw if isinstance(raw, list) else [raw]
    values = []
    for item in items:
        if isinstance(item, bool):
            values.append("true" if item else "false")
        elif isinstance(item, int | float | str):
            values.append(str(item))
        else:
            raise ConditionError(f"Condition value for {where} must be a string, number or bool.")
    return values


@dataclass
class ConditionOutcome:
    """Whether the block holds, and the context keys it needed that the request lacked."""

    satisfied: bool
    missing: list[str] = field(default_factory=list)


def _note(missing: list[str], key: str) -> None:
    if key.lower() not in (name.lower() for name in missing):
        missing.append(key)


def _evaluate_key(
    op: Operator,
    key: str,
    wanted: list[str],
    actual: tuple[str, ...] | None,
    variables: Variables,
    missing: list[str],
) -> bool:
    present = bool(actual)
    if op.base is None:
        # Null: "true" asks for the key to be absent, "false" for it to be present.
        return any((value.strip().lower() == "true") != present for value in wanted)
    if not actual:
        _note(missing, key)
        if op.if_exists or op.qualifier == "ForAllValues":
            return True
        if op.qualifier == "ForAnyValue":
            return False
        return op.base.negated
    base = op.base

    def holds(value: str) -> bool:
        # Every policy value is tried so each missing ${variable} is reported, not just the first.
        hits = [base.compare(value, candidate, variables) for candidate in wanted]
        return not any(hits) if base.negated else any(hits)

    results = [holds(value) for value in actual]
    if op.qualifier == "ForAllValues":
        return all(results)
    if op.qualifier == "ForAnyValue":
        return any(results)
    # No qualifier on a multi-valued key: a positive operator needs one value to match, a negated
    # one needs no value to match the excluded set.
    return all(results) if base.negated else any(results)


def evaluate_condition(
    block: Mapping[str, Any], lookup: Lookup, *, variables_enabled: bool
) -> ConditionOutcome:
    """Evaluate a statement's Condition block against the request context."""
    if not isinstance(block, Mapping):
        raise ConditionError("Condition must be an object of operators.")
    outcome = ConditionOutcome(satisfied=True)
    for op_text, keys in block.items():
        op = parse_operator(op_text)
        if not isinstance(keys, Mapping):
            raise ConditionError(f"Condition operator {op_text!r} must map keys to values.")
        for key, raw in keys.items():
            variables = Variables(lookup if variables_enabled else None)
            wanted = _policy_values(raw, f"{op_text}/{key}")
            holds = _evaluate_key(op, key, wanted, lookup(key), variables, outcome.missing)
            for name in variables.missing:
                _note(outcome.missing, name)
            outcome.satisfied = outcome.satisfied and holds
    return outcome
