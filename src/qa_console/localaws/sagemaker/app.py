"""The sagemaker-runtime HTTP API, as botocore calls it (rest-json, service model 2017-05-13).

    POST /endpoints/{EndpointName}/invocations                  InvokeEndpoint
    POST /endpoints/{EndpointName}/invocations-response-stream  InvokeEndpointWithResponseStream
    POST /endpoints/{EndpointName}/async-invocations            InvokeEndpointAsync (202)
    GET  /ping      200 when the runtime is up (for the launcher)
    GET  /status    JSON: the endpoints being served, their workers and counters

Handlers never block the event loop: control-plane calls and S3 run in threads, and a request
awaits its worker's answer on an asyncio queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from qa_console.localaws.sagemaker import eventstream, wire
from qa_console.localaws.sagemaker.pool import Call
from qa_console.localaws.sagemaker.service import Runtime, Target

logger = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]


def _error_response(error: wire.WireError, request_id: str) -> Response:
    return Response(error.body(), status_code=error.status, headers=error.headers(request_id))


def _aws_errors(handler: Handler) -> Handler:
    """Turn WireError (and bugs) into the error responses botocore understands."""

    async def wrapped(request: Request) -> Response:
        request_id = wire.new_request_id()
        request.state.request_id = request_id
        try:
            response = await handler(request)
        except wire.WireError as error:
            return _error_response(error, request_id)
        except Exception as error:
            logger.exception("local runtime: %s failed", request.url.path)
            return _error_response(
                wire.internal_failure(f"{type(error).__name__}: {error}"), request_id
            )
        response.headers["x-amzn-RequestId"] = request_id
        return response

    return wrapped


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing it (413, as SageMaker) past the payload limit."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise wire.payload_too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise wire.payload_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def _target_and_body(runtime: Runtime, request: Request) -> tuple[Target, bytes]:
    """The variant an invocation goes to (an unknown endpoint fails here) and its body."""
    target = await runtime.target(
        request.path_params["name"], request.headers.get("x-amzn-sagemaker-target-variant")
    )
    return target, await _read_body(request, runtime.payload_limit(target))


def _status(error: wire.WireError) -> int:
    """The status the access log records: the model's own for a ModelError, else the reply's."""
    return int(error.members.get("OriginalStatusCode", error.status))


def create_app(runtime: Runtime) -> Starlette:
    @_aws_errors
    async def invocations(request: Request) -> Response:
        headers = request.headers
        target, body = await _target_and_body(runtime, request)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with runtime.admitted(target):
            call = Call(loop, body, headers.get("content-type"), headers.get("accept"))
            status = 500
            try:
                await runtime.submit(target, call)
                message = await runtime.next_message(
                    target, call, runtime.settings.timeout_s, started
                )
                error = runtime.failure(target, message)
                if error is not None:
                    status = error.status
                    raise error
                status = 200
                return Response(
                    message[2],
                    status_code=200,
                    headers={
                        "Content-Type": message[3],
                        "x-Amzn-Invoked-Production-Variant": target.variant.name,
                    },
                )
            except wire.WireError as error:
                status = _status(error)
                raise
            finally:
                runtime.access_log(
                    target, call, "/invocations", status, (loop.time() - started) * 1000
                )

    @_aws_errors
    async def invocations_stream(request: Request) -> Response:
        headers = request.headers
        target, body = await _target_and_body(runtime, request)
        loop = asyncio.get_running_loop()
        started = loop.time()
        admission = runtime.admitted(target)
        admission.__enter__()
        call = Call(
            loop,
            body,
            headers.get("content-type"),
            headers.get("x-amzn-sagemaker-accept"),
            stream=True,
        )
        timeout_s = runtime.settings.timeout_s
        try:
            await runtime.submit(target, call)
            first = await runtime.next_message(target, call, timeout_s, started)
            error = runtime.failure(target, first)
            if error is not None:
                raise error
        except BaseException as error:
            status = _status(error) if isinstance(error, wire.WireError) else 500
            runtime.access_log(
                target, call, "/invocations-response-stream", status, (loop.time() - started) * 1000
            )
            admission.__exit__(None, None, None)
            raise
        content_type = first[3] if first[0] in ("chunk", "result") else "application/json"

        async def events() -> AsyncIterator[bytes]:
            message = first
            try:
                while True:
                    kind = message[0]
                    if kind in ("chunk", "result"):
                        if message[2]:
                            yield eventstream.payload_part(message[2])
                        if kind == "result":
                            return
                    elif kind == "end":
                        return
                    else:
                        error = runtime.failure(target, message)
                        if error is None or error.code == "ServiceUnavailable":
                            # The runtime, not the model, could not go on.
                            text = error.message if error is not None else f"unexpected {kind}"
                            yield eventstream.internal_stream_failure(text)
                        else:
                            yield eventstream.model_stream_error(error.message)
                        return
                    try:
                        message = await runtime.next_message(target, call, timeout_s, loop.time())
                    except wire.WireError as error:
                        yield eventstream.model_stream_error(error.message)
                        return
            finally:
                if not call.closed:  # the client went away mid-stream
                    target.pool.abandon(call, "cancel")
                runtime.access_log(
                    target,
                    call,
                    "/invocations-response-stream",
                    200,
                    (loop.time() - started) * 1000,
                )
                admission.__exit__(None, None, None)

        return StreamingResponse(
            events(),
            status_code=200,
            media_type=eventstream.CONTENT_TYPE,
            headers={
                "X-Amzn-SageMaker-Content-Type": content_type,
                "x-Amzn-Invoked-Production-Variant": target.variant.name,
            },
        )

    @_aws_errors
    async def async_invocations(request: Request) -> Response:
        headers = request.headers
        timeout = headers.get("x-amzn-sagemaker-invocationtimeoutseconds")
        inference_id, output, failure = await runtime.invoke_async(
            request.path_params["name"],
            input_location=headers.get("x-amzn-sagemaker-inputlocation"),
            content_type=headers.get("x-amzn-sagemaker-content-type"),
            accept=headers.get("x-amzn-sagemaker-accept"),
            inference_id=headers.get("x-amzn-sagemaker-inference-id"),
            path_extension=headers.get("x-amzn-sagemaker-s3outputpathextension"),
            filename=headers.get("x-amzn-sagemaker-filename"),
            timeout_s=float(timeout) if timeout and timeout.isdigit() else None,
        )
        response_headers = {"X-Amzn-SageMaker-OutputLocation": output}
        if failure is not None:
            response_headers["X-Amzn-SageMaker-FailureLocation"] = failure
        return JSONResponse(
            {"InferenceId": inference_id}, status_code=202, headers=response_headers
        )

    async def ping(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def status(request: Request) -> Response:
        return JSONResponse(await asyncio.to_thread(runtime.describe))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        runtime.start()
        try:
            yield {}
        finally:
            await asyncio.to_thread(runtime.shutdown)

    app = Starlette(
        routes=[
            Route("/endpoints/{name}/invocations", invocations, methods=["POST"]),
            Route(
                "/endpoints/{name}/invocations-response-stream",
                invocations_stream,
                methods=["POST"],
            ),
            Route("/endpoints/{name}/async-invocations", async_invocations, methods=["POST"]),
            Route("/ping", ping, methods=["GET"]),
            Route("/status", status, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app
