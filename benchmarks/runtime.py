"""Local SageMaker runtime benchmark: latency overhead and throughput under concurrency.

    .venv/bin/python benchmarks/runtime.py [--requests 200] [--seconds 6] [--max-new-tokens 16]
                                           [--stack own|launcher]

The model is the project's offline "tiny" T5 (ops/training/tiny_model.py, ~1.2 M parameters,
tokenizer trained on the biography questions), packaged with the real inference/model_handler.py by
ops.package.build. Two ways to answer the same request:

- in-process: the extracted tarball's handler called directly in this process through
  inference/handler_contract.py's HandlerHost (model_fn once; input_fn -> predict_fn -> output_fn);
- runtime: boto3 `invoke_endpoint` against the runtime in another process, which runs the
  handler in one worker process per endpoint. `--stack own` (default) serves moto and
  `create_runtime_app` under uvicorn in a child process of this script; `--stack launcher` uses
  the embedded local AWS exactly as `qa-console local up` starts it.

Both sides use one intra-op (OMP) thread: the runtime's default for a worker that serves several
requests at once on two cores, and set here for the in-process side so the model does the same
work on both.

Latency: median and p95 over --requests sequential requests each, measured in alternating blocks
of 20 so both see the same machine load. Overhead = runtime - in-process. A stdlib echo handler
on a second endpoint gives the runtime's own round trip with no model at all.

`--latency-only` stops there and prints the ratio the serving-speed issue tracks: the runtime's
p50 over the in-process handler's p50 at one client, with the runtime's default (adaptive)
batching on. Aim: within 10% (ratio <= 1.10).

Throughput: 1, 4 and 16 client processes (each with its own boto3 client) invoking the T5
endpoint in a loop for --seconds each; completed requests per second.

Dynamic batching (`--compare-batching`, nothing else then): 1, 4, 16 and 32 clients against a
stack with QA_CONSOLE_RUNTIME_MAX_BATCH_SIZE=1 and one with the runtime's defaults (batches of up
to 8, waiting up to 5 ms only while the worker is busy); requests/s and each request's p50/p95
latency as the clients saw it, the two stacks' rows alternating per client count.

Everything runs in a temp dir with QA_CONSOLE_LOCAL_WATCH_PID set, and the local AWS is stopped
at the end: nothing outlives the script.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# The runtime tests' helpers: a model.tar.gz around a handler, a free loopback port.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fixtures_runtime import free_port, handler_archive

REPO = Path(__file__).resolve().parent.parent
ECHO_HANDLER = """
import json

def model_fn(model_dir):
    return None

def transform_fn(model, body, content_type, accept):
    return body
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def build_archive(folder: Path) -> Path:
    from qa_console.ops.packaging.build import build
    from qa_console.ops.training.data import biography_dataset_path, load_qa_dataset
    from qa_console.ops.training.tiny_model import save_tiny_model

    dataset = load_qa_dataset(biography_dataset_path())
    texts = [text for example in dataset.train for text in (example.question, example.answer)]
    model_dir = save_tiny_model(folder / "model", texts)
    return Path(build(model_dir, folder / "model.tar.gz").archive)


def deploy(
    session: Any, name: str, archive: Path, instances: int = 1, workers: int | None = None
) -> None:
    s3, sagemaker = session.client("s3"), session.client("sagemaker")
    buckets = [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]
    if "bench-runtime" not in buckets:
        s3.create_bucket(Bucket="bench-runtime")
    s3.upload_file(str(archive), "bench-runtime", f"{name}/model.tar.gz")
    sagemaker.create_model(
        ModelName=name,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/bench",
        PrimaryContainer={
            "Image": "hf",
            "ModelDataUrl": f"s3://bench-runtime/{name}/model.tar.gz",
            "Environment": {"SAGEMAKER_MODEL_SERVER_WORKERS": str(workers)} if workers else {},
        },
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": instances,
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    deadline = time.monotonic() + 60
    while sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"] != "InService":
        if time.monotonic() > deadline:
            raise SystemExit(f"{name} did not become InService")
        time.sleep(0.2)


def warm(runtime: Any, name: str, body: bytes, timeout_s: float = 120) -> None:
    """Invoke until the worker has loaded the model (first answers: ModelNotReadyException)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            runtime.invoke_endpoint(EndpointName=name, Body=body, ContentType="application/json")
            return
        except runtime.exceptions.ModelNotReadyException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def serve(ports_file: Path, work_dir: Path) -> int:
    """Child mode: moto + the runtime on loopback until the parent closes our stdin."""
    import uvicorn
    from moto.server import ThreadedMotoServer

    from qa_console.localaws.sagemaker import create_runtime_app

    moto_port, runtime_port = free_port(), free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    moto_url = f"http://127.0.0.1:{moto_port}"
    app = create_runtime_app(moto_url, "us-east-1", work_dir)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=runtime_port, log_level="warning")
    )

    def watch_parent() -> None:
        sys.stdin.read()  # returns at EOF: the parent exited or closed the pipe
        server.should_exit = True

    threading.Thread(target=watch_parent, daemon=True).start()

    def announce() -> None:
        while not server.started:
            time.sleep(0.05)
        urls = {"moto": moto_url, "runtime": f"http://127.0.0.1:{runtime_port}"}
        ports_file.write_text(json.dumps(urls))

    threading.Thread(target=announce, daemon=True).start()
    server.run()
    moto.stop()
    return 0


@contextlib.contextmanager
def own_stack(folder: Path) -> Iterator[dict[str, str]]:
    ports_file = folder / "ports.json"
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(ports_file), "--work-dir", str(folder / "rt")],
        stdin=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not ports_file.exists():
            if time.monotonic() > deadline or child.poll() is not None:
                raise SystemExit("the runtime stack did not start")
            time.sleep(0.1)
        yield json.loads(ports_file.read_text())
    finally:
        assert child.stdin is not None
        child.stdin.close()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()


@contextlib.contextmanager
def launcher_stack(folder: Path) -> Iterator[dict[str, str]]:
    from qa_console.localaws import launcher

    os.environ["QA_CONSOLE_LOCAL_AWS_DIR"] = str(folder / "local-aws")
    os.environ["QA_CONSOLE_LOCAL_WATCH_PID"] = str(os.getpid())
    state = launcher.ensure_running()
    try:
        yield {"moto": state.moto_url, "runtime": state.runtime_url}
    finally:
        launcher.stop(directory=folder / "local-aws")


def logged_model_ms(session: Any, endpoint: str) -> list[float]:
    """The handler's time per request inside the worker, from the runtime's ACCESS_LOG lines in
    CloudWatch Logs (`... 200 34.1 ms (model 28.0 ms)`)."""
    import re

    logs = session.client("logs")
    time.sleep(2)  # the runtime ships log lines about once a second
    found: list[float] = []
    paginator = logs.get_paginator("filter_log_events")
    for page in paginator.paginate(logGroupName=f"/aws/sagemaker/Endpoints/{endpoint}"):
        for event in page["events"]:
            match = re.search(r"\(model (\d+\.\d+) ms\)$", event["message"])
            if match:
                found.append(float(match.group(1)))
    return found


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return (time.perf_counter() - started) * 1000.0


def _client_process(
    runtime_url: str, name: str, body: bytes, seconds: float, ready: Any, go: Any, out: Any
) -> None:
    """One client (its own process and boto3 client): invoke in a loop for `seconds`."""
    import boto3

    runtime = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("sagemaker-runtime", endpoint_url=runtime_url)
    runtime.invoke_endpoint(EndpointName=name, Body=body)["Body"].read()  # connect, warm
    ready.release()
    go.wait()
    stop = time.monotonic() + seconds
    latencies: list[float] = []
    while time.monotonic() < stop:
        started = time.perf_counter()
        runtime.invoke_endpoint(EndpointName=name, Body=body, ContentType="application/json")[
            "Body"
        ].read()
        latencies.append((time.perf_counter() - started) * 1000.0)
    out.put(latencies)


def throughput(runtime_url: str, name: str, body: bytes, clients: int, seconds: float) -> float:
    """Completed requests per second with `clients` client processes."""
    return load_run(runtime_url, name, body, clients, seconds)[0]


def load_run(
    runtime_url: str, name: str, body: bytes, clients: int, seconds: float
) -> tuple[float, list[float]]:
    """(requests per second, each request's latency in ms) with `clients` client processes
    (separate processes, as separate users would be: threads in one process would measure boto3
    contending for a GIL)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    ready, go, out = context.Semaphore(0), context.Event(), context.Queue()
    processes = [
        context.Process(
            target=_client_process, args=(runtime_url, name, body, seconds, ready, go, out)
        )
        for _ in range(clients)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        if not ready.acquire(timeout=120):
            raise SystemExit("a client process did not start")
    started = time.monotonic()
    go.set()
    latencies = [ms for _ in processes for ms in out.get(timeout=seconds + 120)]
    elapsed = time.monotonic() - started
    for process in processes:
        process.join(timeout=30)
    return len(latencies) / elapsed, latencies


BATCHING_CLIENTS = (1, 4, 16, 32)


def compare_batching(archive: Path, folder: Path, body: bytes, seconds: float) -> int:
    """Throughput and latency at BATCHING_CLIENTS clients with dynamic batching off (batch size 1)
    and on (the runtime's defaults). The setting is read at start-up, so each has its own stack;
    both stacks are up at once and the rows alternate (off, on) per client count, so a change in
    the machine's load between rows falls on both sides alike. An idle stack costs no CPU."""
    import boto3

    variants = (("off (size 1)", "1"), ("on (defaults)", ""))
    rows: list[tuple[str, int, float, float, float]] = []
    with contextlib.ExitStack() as stacks:
        urls: dict[str, str] = {}
        for label, size in variants:
            os.environ["QA_CONSOLE_RUNTIME_MAX_BATCH_SIZE"] = size  # empty: the default
            stack = stacks.enter_context(own_stack(folder / f"batching-{size or 'default'}"))
            session = boto3.Session(
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                region_name="us-east-1",
            )
            os.environ["AWS_ENDPOINT_URL"] = stack["moto"]
            deploy(session, "bench-t5", archive)
            runtime = session.client("sagemaker-runtime", endpoint_url=stack["runtime"])
            warm(runtime, "bench-t5", body)
            urls[label] = stack["runtime"]
        for clients in BATCHING_CLIENTS:
            for label, _ in variants:
                print(f"batching {label}: {clients} clients ...", file=sys.stderr)
                rate, latencies = load_run(urls[label], "bench-t5", body, clients, seconds)
                p50, p95 = statistics.median(latencies), percentile(latencies, 95)
                rows.append((label, clients, rate, p50, p95))
    print(
        "\n| batching | clients | requests/s | p50 ms | p95 ms |\n| --- | --- | --- | --- | --- |"
    )
    for label, clients, rate, p50, p95 in rows:
        print(f"| {label} | {clients} | {rate:.1f} | {p50:.1f} | {p95:.1f} |")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--requests", type=int, default=200, help="sequential requests per side")
    parser.add_argument("--seconds", type=float, default=6.0, help="duration per throughput run")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--stack", choices=("own", "launcher"), default="own")
    parser.add_argument("--instances", type=int, default=1, help="InitialInstanceCount")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="SAGEMAKER_MODEL_SERVER_WORKERS: worker processes per instance (default: the "
        "runtime's, one per vCPU of ml.m5.large = 2, capped by this machine's cores)",
    )
    parser.add_argument(
        "--compare-batching",
        action="store_true",
        help="only compare dynamic batching off/on at 1, 4, 16, 32 clients (own stacks)",
    )
    parser.add_argument(
        "--latency-only",
        action="store_true",
        help="only the 1-client latency: runtime p50 / in-process p50, side by side",
    )
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve, args.work_dir)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported; see the docstring

    import boto3
    from botocore.config import Config

    from qa_console.inference.handler_contract import HandlerHost, load_handler
    from qa_console.ops.packaging.safe_tar import safe_extract

    parameters = {"max_new_tokens": args.max_new_tokens}
    request = {"inputs": "When was Ada Lovelace born?", "parameters": parameters}
    body = json.dumps(request).encode()
    with tempfile.TemporaryDirectory(prefix="bench-runtime-") as temp:
        folder = Path(temp)
        print("building the tiny T5 tarball ...", file=sys.stderr)
        archive = build_archive(folder)
        if args.compare_batching:
            return compare_batching(archive, folder, body, args.seconds)
        model_dir = folder / "inproc"
        safe_extract(archive, model_dir)
        host = HandlerHost(load_handler(model_dir / "code"), str(model_dir))
        host.load()

        def in_process() -> object:
            return host.invoke(body, "application/json", "application/json")

        print(f"starting the runtime ({args.stack} stack) ...", file=sys.stderr)
        stack = own_stack if args.stack == "own" else launcher_stack
        with stack(folder) as urls:
            session = boto3.Session(
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                region_name="us-east-1",
            )
            os.environ["AWS_ENDPOINT_URL"] = urls["moto"]
            os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = urls["runtime"]
            runtime = session.client(
                "sagemaker-runtime",
                config=Config(retries={"mode": "standard"}, max_pool_connections=16),
            )
            deploy(session, "bench-t5", archive, args.instances, args.workers)
            deploy(session, "bench-echo", handler_archive(folder, ECHO_HANDLER, name="echo"))
            warm(runtime, "bench-t5", body)
            warm(runtime, "bench-echo", body)
            for _ in range(10):
                in_process()
                runtime.invoke_endpoint(EndpointName="bench-t5", Body=body)["Body"].read()

            def through_runtime(name: str) -> Callable[[], object]:
                return lambda: runtime.invoke_endpoint(
                    EndpointName=name, Body=body, ContentType="application/json"
                )["Body"].read()

            samples: dict[str, list[float]] = {"in-process": [], "runtime": [], "echo": []}
            print(f"latency: {args.requests} requests each ...", file=sys.stderr)
            while len(samples["runtime"]) < args.requests:
                samples["in-process"] += [timed(in_process) for _ in range(20)]
                samples["runtime"] += [timed(through_runtime("bench-t5")) for _ in range(20)]
                samples["echo"] += [timed(through_runtime("bench-echo")) for _ in range(20)]
            answer = json.loads(through_runtime("bench-t5")())
            model_ms = logged_model_ms(session, "bench-t5")
            rates = {}
            for clients in () if args.latency_only else (1, 4, 16):
                print(f"throughput: {clients} clients for {args.seconds:g} s ...", file=sys.stderr)
                rates[clients] = throughput(
                    urls["runtime"], "bench-t5", body, clients, args.seconds
                )

    p50 = {name: statistics.median(values) for name, values in samples.items()}
    p95 = {name: percentile(values, 95) for name, values in samples.items()}
    print(
        f"\nstack: {args.stack}, instances: {args.instances}, "
        f"workers per instance: {args.workers or 'auto'}; "
        f"model: tiny T5, max_new_tokens={args.max_new_tokens}, "
        f"answer {answer[0]['generated_text']!r}"
    )
    print("\n| path | p50 ms | p95 ms |\n| --- | --- | --- |")
    print(f"| handler in-process | {p50['in-process']:.1f} | {p95['in-process']:.1f} |")
    print(f"| invoke_endpoint via the runtime | {p50['runtime']:.1f} | {p95['runtime']:.1f} |")
    print(f"| runtime round trip, echo handler | {p50['echo']:.1f} | {p95['echo']:.1f} |")
    if model_ms:
        print(
            f"| handler inside the worker (its log) | {statistics.median(model_ms):.1f} "
            f"| {percentile(model_ms, 95):.1f} |"
        )
    overhead = p50["runtime"] - p50["in-process"]
    print(f"\noverhead at p50: +{overhead:.1f} ms ({overhead / p50['in-process'] * 100:.1f}%)")
    print(f"ratio runtime / in-process at p50, 1 client: {p50['runtime'] / p50['in-process']:.3f}")
    if args.latency_only:
        return 0
    print("\n| concurrent clients | requests/s |\n| --- | --- |")
    for clients, rate in rates.items():
        print(f"| {clients} | {rate:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
