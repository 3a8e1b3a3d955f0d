"""IAM string matching: `*`/`?` wildcards, ARN matching and `${...}` policy variables.

Pure functions over strings, shared by the policy evaluator (Action, Resource) and the condition
operators (StringLike, ArnLike, ...). No AWS or moto imports: this runs inside the local moto
server and in unit tests alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

# A case-insensitive context lookup: key name -> its values, or None when the request lacks it.
Lookup = Callable[[str], tuple[str, ...] | None]

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
# ${*}, ${?} and ${$} are how a policy writes the literal characters * ? $ (IAM docs).
_SPECIAL_VARIABLES = {"*": "*", "?": "?", "$": "$"}
# `${aws:username, 'anonymous'}`: a key with an optional quoted default value.
_VARIABLE_BODY = re.compile(r"^\s*([^,\s]+)\s*(?:,\s*'([^']*)'\s*)?$")
_ARN_PARTS = 6


def glob_source(pattern: str) -> str:
    """Regex source for an IAM wildcard pattern: `*` is any run of characters, `?` one character."""
    out = []
    for char in pattern:
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        else:
            out.append(re.escape(char))
    return "".join(out)


@lru_cache(maxsize=4096)
def _compiled_glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile(glob_source(pattern), flags)


def glob_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """True when the whole value matches the wildcard pattern (no policy variables)."""
    return _compiled_glob(pattern, ignore_case).fullmatch(value) is not None


def action_matches(pattern: str, action: str) -> bool:
    """IAM action names compare case-insensitively (`S3:getobject` is `s3:GetObject`)."""
    return glob_match(pattern, action, ignore_case=True)


class Variables:
    """Expands `${key}` policy variables from the request context.

    Policies with Version 2012-10-17 substitute variables; older or missing versions treat
    `${...}` as literal text, which `lookup=None` models. Keys a pattern needed but the request
    did not carry are collected in `missing`, so the simulator can report them as
    MissingContextValues.
    """

    def __init__(self, lookup: Lookup | None) -> None:
        self._lookup = lookup
        self.missing: list[str] = []

    @property
    def enabled(self) -> bool:
        return self._lookup is not None

    def _resolve(self, body: str) -> str | None:
        if body in _SPECIAL_VARIABLES:
            return _SPECIAL_VARIABLES[body]
        match = _VARIABLE_BODY.match(body)
        if match is None or self._lookup is None:
            return None
        key, default = match.group(1), match.group(2)
        values = self._lookup(key)
        if values:
            # A multi-valued key cannot be a variable in IAM; its first value is the best guess.
            return values[0]
        if default is not None:
            return default
        if key not in self.missing:
            self.missing.append(key)
        return None

    def literal(self, text: str) -> str | None:
        """The text with variables replaced, or None when one of them is missing."""
        if self._lookup is None or "${" not in text:
            return text
        out: list[str] = []
        position = 0
        for match in _VARIABLE.finditer(text):
            value = self._resolve(match.group(1))
            if value is None:
                return None
            out.append(text[position : match.start()])
            out.append(value)
            position = match.end()
        out.append(text[position:])
        return "".join(out)

    def pattern(self, text: str, *, ignore_case: bool = False) -> re.Pattern[str] | None:
        """A compiled wildcard pattern with variables substituted as literal text, or None.

        A substituted value is escaped: a user named `a*` does not become a wildcard.
        """
        if self._lookup is None or "${" not in text:
            return _compiled_glob(text, ignore_case)
        parts: list[str] = []
        position = 0
        for match in _VARIABLE.finditer(text):
            value = self._resolve(match.group(1))
            if value is None:
                return None
            parts.append(glob_source(text[position : match.start()]))
            parts.append(re.escape(value))
            position = match.end()
        parts.append(glob_source(text[position:]))
        flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
        return re.compile("".join(parts), flags)

    def matches(self, pattern: str, value: str, *, ignore_case: bool = False) -> bool:
        compiled = self.pattern(pattern, ignore_case=ignore_case)
        return compiled is not None and compiled.fullmatch(value) is not None


def _split_arn_pattern(pattern: str) -> list[str]:
    """Split on the first five colons that are not inside `${...}` (`${aws:username}` has one)."""
    parts: list[str] = []
    depth = 0
    start = 0
    index = 0
    while index < len(pattern) and len(parts) < _ARN_PARTS - 1:
        if pattern.startswith("${", index):
            depth += 1
            index += 2
            continue
        char = pattern[index]
        if char == "}" and depth:
            depth -= 1
        elif char == ":" and not depth:
            parts.append(pattern[start:index])
            start = index + 1
        index += 1
    parts.append(pattern[start:])
    return parts


def arn_matches(pattern: str, value: str, variables: Variables) -> bool:
    """ARN matching as IAM does it for Resource and ArnLike: case-sensitive, component by component.

    Each of the six colon-separated parts is matched on its own, so `*` in the account part
    cannot swallow the resource part. A pattern with fewer parts (`arn:aws:s3:::*` has six,
    `arn:aws:logs:*` has four) is matched as one string, which lets a trailing `*` span colons
    the way IAM documents it.
    """
    if pattern == "*":
        return True
    pattern_parts = _split_arn_pattern(pattern)
    value_parts = value.split(":", _ARN_PARTS - 1)
    if len(pattern_parts) == _ARN_PARTS and len(value_parts) == _ARN_PARTS:
        # Every part is tried (no short-circuit) so each missing variable gets reported.
        results = [
            variables.matches(part, actual)
            for part, actual in zip(pattern_parts, value_parts, strict=True)
        ]
        return all(results)
    return variables.matches(pattern, value)
