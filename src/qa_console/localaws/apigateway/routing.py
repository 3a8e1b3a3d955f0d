"""Match a request path to an API Gateway resource, as API Gateway does.

Resources form a tree of path parts. At each level a literal part wins over a `{param}`, which
wins over a greedy `{name+}` that takes the rest of the path (at least one segment). Empty
segments are ignored, so `/ask/` is `/ask`. The match gives the resource and its path parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Node:
    resource: dict[str, Any] | None = None  # the API Gateway resource (with resourceMethods)
    literals: dict[str, Node] = field(default_factory=dict)
    param: tuple[str, Node] | None = None
    greedy: tuple[str, Node] | None = None


@dataclass(frozen=True)
class Match:
    resource: dict[str, Any]
    path_parameters: dict[str, str]


def build_tree(resources: list[dict[str, Any]]) -> Node:
    """The tree of an API's resources (the items of get_resources)."""
    root = Node()
    for resource in resources:
        node = root
        for part in _segments(resource.get("path", "/")):
            if part.startswith("{") and part.endswith("+}"):
                if node.greedy is None:
                    node.greedy = (part[1:-2], Node())
                node = node.greedy[1]
            elif part.startswith("{") and part.endswith("}"):
                if node.param is None:
                    node.param = (part[1:-1], Node())
                node = node.param[1]
            else:
                node = node.literals.setdefault(part, Node())
        node.resource = resource
    return root


def match(root: Node, path: str) -> Match | None:
    return _match(root, _segments(path), 0, {})


def _match(node: Node, segments: list[str], index: int, params: dict[str, str]) -> Match | None:
    if index == len(segments):
        return Match(node.resource, params) if node.resource is not None else None
    segment = segments[index]
    child = node.literals.get(segment)
    if child is not None and (found := _match(child, segments, index + 1, params)):
        return found
    if node.param is not None:
        name, child = node.param
        if found := _match(child, segments, index + 1, {**params, name: segment}):
            return found
    if node.greedy is not None:
        name, child = node.greedy
        if child.resource is not None:
            return Match(child.resource, {**params, name: "/".join(segments[index:])})
    return None


def _segments(path: str) -> list[str]:
    return [part for part in path.split("/") if part]
