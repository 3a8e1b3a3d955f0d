"""What the local API gateway adds to a Lambda-backed API call, and how it scales with clients.

Starts moto's server and the gateway (uvicorn) on loopback, builds POST /ask with an API key and a
usage plan in front of a trivial Python Lambda (AWS_PROXY), then measures:
  floor     a POST to a bare Starlette app under uvicorn (loopback HTTP + ASGI, no gateway work)
  gateway   a POST through the gateway (route, key + usage plan, proxy event, warm worker, reply)
  handler   the same handler called in-process (what the Lambda itself costs)
as median and p95 latency over N sequential keep-alive requests, then throughput (requests/s)
with 1, 4 and 8 concurrent clients for a fixed time each.

Usage: .venv/bin/python benchmarks/gateway.py [--requests 300] [--seconds 3]
Bounded: at most 2000 sequential requests, at most 10 s per concurrency level.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

# The test fixtures' builder makes the API, so the benchmark measures the API the tests check.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fixtures_gateway import build_key_api, free_port

REGION = "us-east-1"
HANDLER = """
import json

def handler(event, context):
    question = json.loads(event["body"])["question"]
    return {"statusCode": 200, "body": json.dumps({"answer": question[::-1], "latency_ms": 0.0})}
"""


def serve(app: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}"


def build_api(endpoint: str) -> tuple[str, str]:
    def client(service: str) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    iam, lam, apigw = client("iam"), client("lambda"), client("apigateway")
    role = iam.create_role(RoleName="bench", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    roomy = {"rateLimit": 100000.0, "burstLimit": 100000}
    return build_key_api(
        lam, apigw, name="bench", role=role, handler=HANDLER, throttle=roomy, region=REGION
    )


def latencies(url: str, headers: dict[str, str], count: int) -> list[float]:
    body = {"question": "Where was Ada Lovelace born?"}
    samples = []
    with httpx.Client(timeout=30) as client:
        for _ in range(10):
            client.post(url, json=body, headers=headers).raise_for_status()
        for _ in range(count):
            started = time.perf_counter()
            client.post(url, json=body, headers=headers).raise_for_status()
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def throughput(url: str, headers: dict[str, str], clients: int, seconds: float) -> float:
    body = {"question": "Where was Ada Lovelace born?"}
    counts = [0] * clients
    stop = time.monotonic() + seconds

    def run(index: int) -> None:
        with httpx.Client(timeout=30) as client:
            while time.monotonic() < stop:
                client.post(url, json=body, headers=headers).raise_for_status()
                counts[index] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - started)


def summary(name: str, samples: list[float]) -> str:
    p95 = statistics.quantiles(samples, n=20)[18]
    return f"{name:<8} median {statistics.median(samples):7.2f} ms   p95 {p95:7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    count = max(20, min(args.requests, 2000))
    seconds = max(0.5, min(args.seconds, 10.0))

    from moto.server import ThreadedMotoServer

    from qa_console.localaws.apigateway import create_gateway_app, local_invoke_url

    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{moto_port}"
    servers = []
    try:
        with tempfile.TemporaryDirectory() as work:
            gateway = serve(create_gateway_app(endpoint, REGION, Path(work)))
            servers.append(gateway)

            async def bare(request: Any) -> Response:
                await request.body()
                return Response(json.dumps({"answer": "x", "latency_ms": 0.0}))

            floor = serve(Starlette(routes=[Route("/ask", bare, methods=["POST"])]))
            servers.append(floor)
            api, key = build_api(endpoint)
            url = local_invoke_url(gateway[2], api, "prod", "ask")
            headers = {"x-api-key": key}

            namespace: dict[str, Any] = {}
            exec(HANDLER, namespace)  # the handler in-process, for what it costs by itself
            event = {"body": json.dumps({"question": "Where was Ada Lovelace born?"})}
            direct = []
            for _ in range(count):
                started = time.perf_counter()
                namespace["handler"](event, None)
                direct.append((time.perf_counter() - started) * 1000)

            floor_ms = latencies(floor[2] + "/ask", {}, count)
            gateway_ms = latencies(url, headers, count)
            print(f"sequential keep-alive requests: {count}")
            print(summary("floor", floor_ms))
            print(summary("gateway", gateway_ms))
            print(summary("handler", direct))
            added = statistics.median(gateway_ms) - statistics.median(floor_ms)
            print(f"gateway adds {added:.2f} ms at the median over bare loopback HTTP")
            for clients in (1, 4, 8):
                rate = throughput(url, headers, clients, seconds)
                print(f"throughput with {clients} client(s): {rate:7.1f} requests/s")
    finally:
        for server, thread, _ in servers:
            server.should_exit = True
            thread.join(15)
        moto.stop()


if __name__ == "__main__":
    main()
