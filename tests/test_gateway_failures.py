"""Lambda failures through the local gateway: the caller gets API Gateway's error, the gateway
keeps serving, and the function's log group says what happened."""

from __future__ import annotations

from fixtures_gateway import GatewayApi, lambda_log_messages

INTERNAL = {"message": "Internal server error"}


def _still_serving(gateway_api: GatewayApi) -> None:
    response = gateway_api.call("GET", "items/after")
    assert response.status_code == 200
    assert response.json()["event"]["pathParameters"] == {"id": "after"}


def test_a_crashing_handler_is_a_502_and_the_gateway_keeps_serving(gateway_api: GatewayApi) -> None:
    response = gateway_api.call("POST", "crash", content="{}")
    assert response.status_code == 502
    assert response.json() == INTERNAL
    _still_serving(gateway_api)
    request_id = response.headers["x-amzn-requestid"]
    messages = lambda_log_messages(gateway_api.stack, "gw-crash", f"END RequestId: {request_id}")
    assert "about to crash\n" in messages
    assert any("Runtime exited with error: exit status 3" in m for m in messages)
    again = gateway_api.call("POST", "crash", content="{}")  # a fresh sandbox, same result
    assert again.status_code == 502


def test_a_raising_handler_is_a_502_with_its_traceback_logged(gateway_api: GatewayApi) -> None:
    response = gateway_api.call("POST", "boom", content="{}")
    assert response.status_code == 502
    assert response.json() == INTERNAL
    messages = lambda_log_messages(gateway_api.stack, "gw-boom", "[ERROR] ValueError")
    error = next(m for m in messages if m.startswith("[ERROR] ValueError"))
    assert "boom from the handler" in error
    assert "Traceback (most recent call last):" in error  # one event, not one per line
    assert 'handlers.py", line' in error


def test_a_malformed_proxy_response_is_a_502(gateway_api: GatewayApi) -> None:
    response = gateway_api.call("POST", "malformed", content="{}")
    assert response.status_code == 502
    assert response.json() == INTERNAL


def test_a_handler_past_its_function_timeout_is_a_502(gateway_api: GatewayApi) -> None:
    # As on AWS: Lambda ends the invocation at the function's Timeout (1 s here) and API Gateway
    # turns the failed invocation into a 502.
    response = gateway_api.call("POST", "hang", content="{}")
    assert response.status_code == 502
    assert response.json() == INTERNAL
    messages = lambda_log_messages(gateway_api.stack, "gw-hang", "Task timed out")
    assert any(m.endswith("Task timed out after 1.00 seconds\n") for m in messages)
    _still_serving(gateway_api)


def test_a_handler_past_the_integration_timeout_is_a_504(gateway_api: GatewayApi) -> None:
    # The integration's timeoutInMillis (700 ms; 29 s by default) is shorter than the function's.
    response = gateway_api.call("POST", "slow", content="{}")
    assert response.status_code == 504
    assert response.json() == {"message": "Endpoint request timed out"}
    _still_serving(gateway_api)


def test_a_handler_that_cannot_be_loaded_is_a_502_and_says_why(gateway_api: GatewayApi) -> None:
    response = gateway_api.call("POST", "noimport", content="{}")
    assert response.status_code == 502
    assert response.json() == INTERNAL
    messages = lambda_log_messages(gateway_api.stack, "gw-noimport", "[ERROR]")
    error = next(m for m in messages if m.startswith("[ERROR]"))
    assert error.startswith(
        "[ERROR] Runtime.HandlerNotFound: Handler 'missing_function' missing on module 'handlers'"
    )
    assert any(m.startswith("INIT_START") for m in messages)
