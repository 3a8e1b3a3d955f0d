"""How the local gateway picks a resource for a path, and the URL it is reached at."""

from __future__ import annotations

import pytest

from qa_console.localaws.apigateway import local_invoke_url
from qa_console.localaws.apigateway.routing import build_tree, match
from qa_console.ops.aws.target import Target

RESOURCES = [
    {"id": "r", "path": "/"},
    {"id": "ask", "path": "/ask"},
    {"id": "items", "path": "/items"},
    {"id": "item", "path": "/items/{id}"},
    {"id": "special", "path": "/items/special"},
    {"id": "item-sub", "path": "/items/{id}/parts"},
    {"id": "greedy", "path": "/{proxy+}"},
]


@pytest.mark.parametrize(
    ("path", "resource", "params"),
    [
        ("/", "r", {}),
        ("/ask", "ask", {}),
        ("/ask/", "ask", {}),
        ("/items/special", "special", {}),  # a literal beats a parameter
        ("/items/42", "item", {"id": "42"}),
        ("/items/42/parts", "item-sub", {"id": "42"}),
        ("/items/42/other", "greedy", {"proxy": "items/42/other"}),  # backtracks to {proxy+}
        ("/a/b/c", "greedy", {"proxy": "a/b/c"}),
    ],
)
def test_resource_precedence(path: str, resource: str, params: dict[str, str]) -> None:
    found = match(build_tree(RESOURCES), path)
    assert found is not None
    assert (found.resource["id"], found.path_parameters) == (resource, params)


def test_no_greedy_resource_means_no_match() -> None:
    tree = build_tree([{"id": "r", "path": "/"}, {"id": "ask", "path": "/ask"}])
    assert match(tree, "/ask/more") is None
    assert match(tree, "/other") is None


def test_api_urls_are_execute_api_on_aws_and_the_gateway_path_locally() -> None:
    assert Target.profile("prod", "eu-west-1").api_url("abc123", "prod", "ask") == (
        "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/ask"
    )
    assert local_invoke_url("http://127.0.0.1:4567/", "abc123", "prod", "/ask") == (
        "http://127.0.0.1:4567/restapis/abc123/prod/_user_request_/ask"
    )
