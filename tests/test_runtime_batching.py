"""Dynamic batching: the model handler's list contract, and the runtime's workers gathering
concurrent requests into one predict_fn call while every caller still gets its own answer."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from fixtures_runtime import RuntimeStack
from qa_console.inference import model_handler as handler
from qa_console.inference import sagemaker_worker
from qa_console.inference.handler_contract import HandlerHost, load_handler
from qa_console.ops.packaging.safe_tar import safe_extract

JSON = "application/json"
QUESTIONS = ["who wrote paris", "when was ada born", "where is the tower", "what is t5"]
SHORT = {"max_new_tokens": 6}


def request_body(question: str, parameters: dict[str, Any] | None = None) -> bytes:
    return json.dumps({"inputs": question, "parameters": parameters or SHORT}).encode()


@pytest.fixture(scope="module")
def loaded(tiny_model_dir: Path) -> dict[str, Any]:
    return handler.model_fn(str(tiny_model_dir))


@pytest.fixture(scope="module")
def t5_host(t5_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> HandlerHost:
    """The tarball's handler called in this process: the single-request answers to expect."""
    model_dir = tmp_path_factory.mktemp("t5-inproc") / "model"
    safe_extract(t5_archive, model_dir)
    host = HandlerHost(load_handler(model_dir / "code"), str(model_dir))
    host.load()
    return host


def single_answer(host: HandlerHost, body: bytes) -> bytes:
    response, _ = host.invoke(body, JSON, JSON)
    return str(response).encode()


# --- the handler's list contract ------------------------------------------------------------


def test_a_list_of_requests_gets_what_each_request_alone_gets(loaded: dict[str, Any]) -> None:
    requests = [
        {"inputs": QUESTIONS[0], "parameters": SHORT},
        {"inputs": [QUESTIONS[1], QUESTIONS[2]], "parameters": SHORT},
        {"inputs": QUESTIONS[3], "parameters": {"max_new_tokens": 3}},  # a group of its own
        {"inputs": QUESTIONS[0], "parameters": {"num_beams": 2, "num_return_sequences": 2}},
    ]
    data = handler.input_fn(json.dumps(requests).encode(), JSON)
    batched = json.loads(handler.output_fn(handler.predict_fn(data, loaded), JSON))
    alone = [handler.predict_fn(handler.input_fn(json.dumps(r), JSON), loaded) for r in requests]
    assert batched == alone
    assert len(batched[1]) == 2 and len(batched[3][0]) == 2  # shapes as for one request


def test_a_batch_refusal_names_the_request_at_fault(loaded: dict[str, Any]) -> None:
    body = json.dumps([{"inputs": "ok"}, {"inputs": "x", "parameters": {"bogus": 1}}])
    with pytest.raises(handler.RequestError, match=r"request 1 of the batch: unknown parameter"):
        handler.input_fn(body, JSON)
    with pytest.raises(handler.RequestError, match="empty list"):
        handler.input_fn("[]", JSON)
    assert handler.ACCEPTS_BATCHES is True


def test_the_host_batches_with_per_request_input_and_output(t5_host: HandlerHost) -> None:
    bodies = [request_body(question) for question in QUESTIONS] + [b'{"question": "x"}']
    results = t5_host.invoke_batch([(body, JSON, None) for body in bodies])
    assert [str(result).encode() for result in results[:-1]] == [
        single_answer(t5_host, body) for body in bodies[:-1]
    ]
    assert isinstance(results[-1], ValueError) and "unknown key 'question'" in str(results[-1])
    assert t5_host.accepts_batches


# --- the worker's gathering, with a stand-in host -------------------------------------------


class RecordingHost:
    """Answers each body with itself; records how requests were grouped; a batch holding a
    body starting with 'explode' raises, as a predict_fn failing for the whole batch would."""

    accepts_batches = True

    def __init__(self) -> None:
        self.batches: list[int] = []

    def invoke(self, body: bytes, content_type: str, accept: str | None) -> tuple[Any, dict]:
        if body.startswith(b"explode"):
            raise ValueError("this one is bad")
        return body.decode(), {}

    def invoke_batch(self, requests: list[tuple[bytes, str, str | None]]) -> list[Any]:
        self.batches.append(len(requests))
        if any(body.startswith(b"explode") for body, _, _ in requests):
            raise ValueError("the batch failed")
        return [body.decode() for body, _, _ in requests]


class RecordingChannel:
    def __init__(self, expected: int) -> None:
        self.sent: dict[str, tuple[dict[str, Any], bytes]] = {}
        self.lock = threading.Lock()
        self.all_answered = threading.Event()
        self.expected = expected

    def send(self, message: dict[str, Any], body: bytes = b"") -> None:
        with self.lock:
            self.sent[message["id"]] = (message, body)
            if len(self.sent) >= self.expected:
                self.all_answered.set()


def gathering_worker(channel: RecordingChannel, host: RecordingHost) -> Any:
    batching = sagemaker_worker.Batching(max_size=4, max_delay_ms=10_000)
    worker = sagemaker_worker.Worker(channel, Path("."), threads=2, batching=batching)
    worker.host = host
    worker.gatherer = sagemaker_worker.Gatherer(
        batching, lambda group: worker.executor.submit(worker.invoke_batch, group)
    )
    worker.loaded.set()
    return worker


def submit(worker: Any, rid: str, body: bytes, stream: bool = False) -> None:
    worker.submit(sagemaker_worker.Request(rid, body, JSON, None, stream))


def test_the_worker_answers_a_full_batch_by_id_and_never_batches_streams() -> None:
    host = RecordingHost()
    channel = RecordingChannel(expected=5)
    worker = gathering_worker(channel, host)
    submit(worker, "streamed", b"s", stream=True)  # straight to the thread pool
    for index in range(4):  # the fourth fills the batch: no waiting for the 10 s delay
        submit(worker, f"r{index}", f"body {index}".encode())
    assert channel.all_answered.wait(30)
    assert host.batches == [4]
    assert {rid: body for rid, (_, body) in channel.sent.items()} == {
        "streamed": b"s",
        **{f"r{index}": f"body {index}".encode() for index in range(4)},
    }


def test_a_failed_batch_is_retried_one_request_at_a_time() -> None:
    host = RecordingHost()
    channel = RecordingChannel(expected=4)
    worker = gathering_worker(channel, host)
    for index, body in enumerate([b"a", b"explode", b"c", b"d"]):
        submit(worker, f"r{index}", body)
    assert channel.all_answered.wait(30)
    assert host.batches == [4]
    kinds = {rid: (message["type"], body) for rid, (message, body) in channel.sent.items()}
    assert kinds == {
        "r0": ("result", b"a"),
        "r1": ("error", b""),
        "r2": ("result", b"c"),
        "r3": ("result", b"d"),
    }
    assert channel.sent["r1"][0]["message"] == "this one is bad"


# --- through the runtime, over real sockets -------------------------------------------------


def invoke(client: Any, endpoint: str, body: bytes) -> bytes | str:
    """The answer's bytes, or the ModelError's message."""
    try:
        response = client.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType=JSON)
    except client.exceptions.ModelError as error:
        return str(error.response["OriginalMessage"])
    return bytes(response["Body"].read())


def streamed(client: Any, endpoint: str, body: bytes) -> bytes:
    response = client.invoke_endpoint_with_response_stream(
        EndpointName=endpoint, Body=body, ContentType=JSON
    )
    return b"".join(event["PayloadPart"]["Bytes"] for event in response["Body"])


def concurrent_answers(
    runtime: RuntimeStack, endpoint: str, bodies: list[bytes], stream_body: bytes
) -> tuple[list[bytes | str], bytes]:
    client = runtime.client("sagemaker-runtime", max_pool_connections=len(bodies) + 1)
    with ThreadPoolExecutor(max_workers=len(bodies) + 1) as executor:
        stream = executor.submit(streamed, client, endpoint, stream_body)
        answers = list(executor.map(lambda body: invoke(client, endpoint, body), bodies))
        return answers, stream.result(timeout=60)


def test_concurrent_callers_get_their_own_answers_errors_and_streams(
    runtime_aws: RuntimeStack, t5_archive: Path, t5_host: HandlerHost
) -> None:
    # A long delay so the concurrent requests meet in one batch; the assertions hold either way.
    runtime_aws.set_settings(max_batch_size=8, max_batch_delay_ms=200.0)
    runtime_aws.deploy("batch-t5", t5_archive)
    good = [request_body(question) for question in QUESTIONS]
    other_parameters = request_body(QUESTIONS[0], {"max_new_tokens": 3})
    bad = request_body(QUESTIONS[1], {"bogus": 1})
    answers, stream = concurrent_answers(
        runtime_aws, "batch-t5", [*good, other_parameters, bad], request_body(QUESTIONS[2])
    )
    expected = [single_answer(t5_host, body) for body in [*good, other_parameters]]
    assert answers[:-1] == expected
    assert isinstance(answers[-1], str) and "unknown parameter 'bogus'" in answers[-1]
    assert stream == single_answer(t5_host, request_body(QUESTIONS[2]))


def test_batching_off_answers_as_before(
    runtime_aws: RuntimeStack, t5_archive: Path, t5_host: HandlerHost
) -> None:
    runtime_aws.set_settings(max_batch_size=1)
    runtime_aws.deploy("unbatched-t5", t5_archive)
    bodies = [request_body(question) for question in QUESTIONS] + [b'{"question": "x"}']
    answers, stream = concurrent_answers(
        runtime_aws, "unbatched-t5", bodies, request_body(QUESTIONS[0])
    )
    assert answers[:-1] == [single_answer(t5_host, body) for body in bodies[:-1]]
    assert isinstance(answers[-1], str) and "unknown key 'question'" in answers[-1]
    assert stream == single_answer(t5_host, request_body(QUESTIONS[0]))


# --- adaptive gathering: wait for company only while the model is busy ----------------------


class SlowHost(RecordingHost):
    """A RecordingHost whose calls take `seconds`, so later requests arrive while it is busy."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.alone: list[bytes] = []

    def invoke(self, body: bytes, content_type: str, accept: str | None) -> tuple[Any, dict]:
        self.alone.append(body)
        time.sleep(self.seconds)
        return super().invoke(body, content_type, accept)

    def invoke_batch(self, requests: list[tuple[bytes, str, str | None]]) -> list[Any]:
        time.sleep(self.seconds)
        return super().invoke_batch(requests)


def adaptive_worker(channel: RecordingChannel, host: RecordingHost, delay_ms: float) -> Any:
    """A worker gathering as load() sets it up (start_gathering), with a stand-in host."""
    batching = sagemaker_worker.Batching(max_size=8, max_delay_ms=delay_ms)
    worker = sagemaker_worker.Worker(channel, Path("."), threads=2, batching=batching)
    worker.host = host
    worker.start_gathering()
    worker.loaded.set()
    return worker


def test_a_lone_request_does_not_wait_out_the_batch_delay() -> None:
    # With a 5 s delay, a worker that always waited would answer after 5 s; an idle one goes at
    # once. The bound is generous (a loaded machine), but far below the delay.
    channel = RecordingChannel(expected=1)
    worker = adaptive_worker(channel, RecordingHost(), delay_ms=5_000)
    started = time.monotonic()
    submit(worker, "lone", b"just me")
    assert channel.all_answered.wait(30)
    assert time.monotonic() - started < 2.5
    assert channel.sent["lone"][1] == b"just me"


def test_requests_arriving_while_the_model_is_busy_leave_together_when_it_is_free() -> None:
    host = SlowHost(seconds=0.5)
    channel = RecordingChannel(expected=4)
    worker = adaptive_worker(channel, host, delay_ms=60_000)  # never the reason to go
    submit(worker, "first", b"first")  # idle worker: straight to the model, alone
    deadline = time.monotonic() + 10
    while not host.alone and time.monotonic() < deadline:
        time.sleep(0.01)
    for index in range(3):  # the model is busy with "first": these wait for it, together
        submit(worker, f"r{index}", f"body {index}".encode())
    assert channel.all_answered.wait(30)
    assert host.alone == [b"first"]
    assert host.batches == [3]
    assert {rid: body for rid, (_, body) in channel.sent.items()} == {
        "first": b"first",
        **{f"r{index}": f"body {index}".encode() for index in range(3)},
    }


def test_through_the_runtime_a_lone_request_is_not_held_by_a_long_delay(
    runtime_aws: RuntimeStack, t5_archive: Path, t5_host: HandlerHost
) -> None:
    runtime_aws.set_settings(max_batch_size=8, max_batch_delay_ms=5_000.0)
    runtime_aws.deploy("lone-t5", t5_archive)
    client = runtime_aws.client("sagemaker-runtime")
    body = request_body(QUESTIONS[0])
    invoke(client, "lone-t5", body)  # the worker's first generate warms it up
    elapsed = []
    for _ in range(3):
        started = time.monotonic()
        assert invoke(client, "lone-t5", body) == single_answer(t5_host, body)
        elapsed.append(time.monotonic() - started)
    assert min(elapsed) < 2.5, elapsed  # a fixed 5 s window would make every one >= 5 s
