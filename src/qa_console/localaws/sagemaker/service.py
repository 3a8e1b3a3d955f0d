"""The runtime's core: which pool serves an endpoint, admission, waiting, async invocations.

`Runtime` ties the parts together: it reads endpoints from the control plane (control.py), keeps
one `EndpointPool` (pool.py) per endpoint variant and deployment, ships log lines to the endpoint's
log group (logs.py names it; cloudwatch/shipper.py sends), and turns what a worker answers into
responses or AWS errors (wire.py). The HTTP layer (app.py) only parses requests and writes
responses.

A background poller looks at the control plane every few seconds: it starts loading the model of
an endpoint as soon as the endpoint exists (during its Creating phase, as SageMaker does), swaps in
a new deployment once it has loaded after update_endpoint (the old one serves until then, and is
kept if the new one fails), and stops the workers of deleted endpoints.

Knobs (environment variables, read when the runtime is created):
    QA_CONSOLE_RUNTIME_TIMEOUT_S        per-request timeout, seconds (60, as SageMaker)
    QA_CONSOLE_RUNTIME_ASYNC_TIMEOUT_S  async request timeout unless the request sets one (900)
    QA_CONSOLE_RUNTIME_LOAD_WAIT_S      how long a request waits for a loading model before
                                        ModelNotReadyException (60)
    QA_CONSOLE_RUNTIME_THREADS          concurrent requests per worker process (2: more lets
                                        handlers that wait overlap, but a small model holds the
                                        GIL and gains nothing; see docs/benchmarks.md)
    QA_CONSOLE_RUNTIME_INTRA_OP_THREADS OMP/MKL threads per worker process (1); an
                                        OMP_NUM_THREADS of the model or of the runtime's own
                                        environment wins
    QA_CONSOLE_RUNTIME_MAX_WORKERS      cap on worker processes per variant (0 = the number of
                                        cores, at least 2). A real-time variant gets
                                        InitialInstanceCount x SAGEMAKER_MODEL_SERVER_WORKERS
                                        (the model's environment; default: the instance type's
                                        vCPUs) processes within the cap; serverless gets one
    QA_CONSOLE_RUNTIME_MAX_BATCH_SIZE   dynamic batching: concurrent non-streaming requests a
                                        worker answers with one predict_fn call, when its
                                        handler sets ACCEPTS_BATCHES (8; 1 = off). Named after
                                        TorchServe's batch_size / TS_MAX_BATCH_DELAY, which the
                                        real container's model server uses for the same thing
    QA_CONSOLE_RUNTIME_MAX_BATCH_DELAY_MS  the longest the first request of a batch waits for
                                        others, milliseconds (5: small beside the ~30 ms one
                                        request to the tiny model takes on two cores). Only
                                        waited while the worker is already computing: a
                                        request that finds it idle goes at once
    QA_CONSOLE_RUNTIME_POLL_S           control-plane poll interval (2)
    QA_CONSOLE_RUNTIME_CACHE_S          how long an endpoint description is reused (1)
    QA_CONSOLE_RUNTIME_LOG_FLUSH_S      the longest a log line waits to be sent to CloudWatch
                                        Logs, batched with the lines after it (0.2)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from qa_console.localaws.cloudwatch.shipper import LogShipper, LogStream
from qa_console.localaws.sagemaker import wire
from qa_console.localaws.sagemaker.artifacts import fetch_model
from qa_console.localaws.sagemaker.container import check_loadable
from qa_console.localaws.sagemaker.control import (
    PREPARING_STATUSES,
    ControlPlane,
    EndpointSpec,
    VariantSpec,
    split_s3_url,
)
from qa_console.localaws.sagemaker.logs import group_name, stream_name
from qa_console.localaws.sagemaker.pool import Call, EndpointPool
from qa_console.localaws.workers import worker_environment

logger = logging.getLogger(__name__)
ENV_PREFIX = "QA_CONSOLE_RUNTIME_"


@dataclass(frozen=True)
class RuntimeSettings:
    timeout_s: float = 60.0
    async_timeout_s: float = 900.0
    load_wait_s: float = 60.0
    threads: int = 2
    intra_op_threads: int = 1
    max_workers: int = 0
    max_batch_size: int = 8
    max_batch_delay_ms: float = 5.0
    poll_s: float = 2.0
    cache_s: float = 1.0
    log_flush_s: float = 0.2

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RuntimeSettings:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in fields(cls):
            raw = environ.get(ENV_PREFIX + spec.name.upper())
            if raw:
                kind = int if spec.type in ("int", int) else float
                values[spec.name] = kind(raw)
        return cls(**values)


@dataclass
class VariantPools:
    """The pool serving a variant now and, during an update, the one loading to replace it."""

    current: EndpointPool | None = None
    next: EndpointPool | None = None
    created_at: float = field(default_factory=time.monotonic)


@dataclass
class Target:
    """Where one request goes: the endpoint as described, the variant, and its pool."""

    spec: EndpointSpec
    variant: VariantSpec
    pool: EndpointPool
    region: str

    @property
    def where(self) -> wire.LogLocation:
        return wire.LogLocation(self.region, self.spec.account, self.spec.name)


class Runtime:
    def __init__(
        self,
        aws_endpoint_url: str,
        region: str,
        work_dir: Path,
        settings: RuntimeSettings | None = None,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.region = region
        self.aws_endpoint_url = aws_endpoint_url
        self.work_dir = Path(work_dir)
        self.settings = settings or RuntimeSettings.from_env()
        # Fixed credentials: the local control plane accepts any, and the runtime must not pick
        # up (or refresh) a real profile from the environment it was started in.
        session = boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
        )
        config = Config(
            retries={"mode": "standard", "max_attempts": 3},
            s3={"addressing_style": "path"},
            max_pool_connections=32,
        )

        def client(service: str) -> Any:
            return session.client(service, endpoint_url=aws_endpoint_url, config=config)

        self.s3 = client("s3")
        self.control = ControlPlane(
            client("sagemaker"), self.s3, client("sts"), cache_s=self.settings.cache_s
        )
        self.logs = LogShipper(lambda: client("logs"), flush_interval_s=self.settings.log_flush_s)
        self._pools: dict[tuple[str, str], VariantPools] = {}
        self._in_flight: dict[str, int] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="runtime-poller", daemon=True)
        self._started = False
        self._async_tasks: set[asyncio.Task[None]] = set()

    # --- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        self.work_dir.mkdir(parents=True, exist_ok=True)
        expect_health_reports()
        self._poller.start()

    def shutdown(self) -> None:
        """Stop polling, kill every worker process, send the last log lines."""
        self._stop.set()
        for task in list(self._async_tasks):
            task.cancel()
        with self._lock:
            holders = list(self._pools.values())
            self._pools.clear()
        for holder in holders:
            for pool in (holder.current, holder.next):
                if pool is not None:
                    pool.close()
        if self._poller.is_alive():
            self._poller.join(timeout=5)
        self.logs.close()

    def _poll(self) -> None:
        while True:
            try:
                self.refresh()
            except Exception as error:  # the control plane restarting, say: try again later
                logger.debug("runtime poll failed: %s", error)
            if self._stop.wait(self.settings.poll_s):
                return

    def refresh(self) -> None:
        """Bring the pools in line with the control plane (what the poller does each round)."""
        listed_at = time.monotonic()
        statuses = self.control.endpoint_names()
        for name, status in statuses.items():
            if self._stop.is_set():
                return
            if status not in PREPARING_STATUSES:
                continue
            spec = self.control.endpoint(name, fresh=True)
            if spec is not None:
                for variant in spec.variants:
                    self.pool_for(spec, variant)
        # Pools made since the listing (a request for a brand-new endpoint) are not in it: only
        # older ones can be gone, and each is checked once more before its workers are stopped.
        with self._lock:
            suspects = {
                key[0]
                for key, holder in self._pools.items()
                if holder.created_at < listed_at and statuses.get(key[0]) not in PREPARING_STATUSES
            }
        holders: list[VariantPools] = []
        for name in suspects:
            spec = self.control.endpoint(name, fresh=True)
            if spec is not None and spec.status in PREPARING_STATUSES:
                continue
            with self._lock:
                keys = [key for key in self._pools if key[0] == name]
                holders += [self._pools.pop(key) for key in keys]
        for holder in holders:
            for pool in (holder.current, holder.next):
                if pool is not None:
                    pool.log(pool.slots[0].instance_id, "endpoint deleted; stopping workers")
                    pool.close()

    # --- pools --------------------------------------------------------------------------------

    def pool_for(self, spec: EndpointSpec, variant: VariantSpec) -> EndpointPool:
        """The pool to send a request for this variant to, creating or swapping pools as needed."""
        key = variant.deployment_key(spec.name, spec.config_name)
        retire: list[EndpointPool] = []
        with self._lock:
            holder = self._pools.setdefault((spec.name, variant.name), VariantPools())
            current, upcoming = holder.current, holder.next
            if upcoming is not None and (
                current is None or current.state == "failed" or upcoming.ready.is_set()
            ):
                if current is not None:
                    retire.append(current)
                holder.current, holder.next = upcoming, None
            current, upcoming = holder.current, holder.next
            if current is None:
                holder.current = self._new_pool(spec, variant, key)
            elif current.key != key:
                if upcoming is None or upcoming.key != key:
                    if upcoming is not None:
                        retire.append(upcoming)
                    holder.next = self._new_pool(spec, variant, key)
                    current.log(
                        current.slots[0].instance_id,
                        "endpoint updated: loading the new "
                        "deployment; this one serves until it is ready",
                    )
            elif upcoming is not None:  # updated back to what is serving: drop the newer one
                retire.append(upcoming)
                holder.next = None
            pool = holder.current
        for old in retire:
            old.log(old.slots[0].instance_id, "deployment replaced; stopping after its requests")
            old.close(drain=True)
        assert pool is not None
        return pool

    def _new_pool(self, spec: EndpointSpec, variant: VariantSpec, key: str) -> EndpointPool:
        instances, per_instance, threads = self._shape(variant)
        group = group_name(spec.name)

        def log_stream(instance: str) -> LogStream:
            return LogStream(self.logs, group, stream_name(variant.name, instance))

        pool: EndpointPool

        def fetch() -> Path:
            if variant.problem or not variant.model_data_url:
                raise RuntimeError(variant.problem or "no model data")
            first = pool.slots[0].instance_id
            model_dir = fetch_model(
                self.s3,
                variant.model_data_url,
                variant.model_etag,
                self.work_dir,
                log=lambda line: pool.log(first, line),
            )
            check_loadable(model_dir, variant.image)
            return model_dir

        environment = worker_environment(
            self.aws_endpoint_url,
            self.region,
            own={
                **_container_environment(),
                **self._thread_environment(),
                **dict(variant.environment),
            },
            platform={"SAGEMAKER_ENDPOINT_NAME": spec.name},
        )
        pool = EndpointPool(
            endpoint=spec.name,
            variant=variant.name,
            key=key,
            instances=instances,
            threads=threads,
            workers_per_instance=per_instance,
            fetch=fetch,
            environment=environment,
            log_stream=log_stream,
            on_health=lambda problem: report_health(spec.arn, spec.config_name, problem),
            max_batch_size=self.settings.max_batch_size,
            max_batch_delay_ms=self.settings.max_batch_delay_ms,
        )
        pool.log(
            pool.slots[0].instance_id,
            f"deploying model {variant.model_name} "
            f"({variant.model_data_url}) for endpoint {spec.name}, config "
            f"{spec.config_name}, variant {variant.name}",
        )
        pool.start()
        return pool

    def _shape(self, variant: VariantSpec) -> tuple[int, int, int]:
        """(instances, worker processes per instance, threads per worker) for a variant.

        As the Hugging Face container: SAGEMAKER_MODEL_SERVER_WORKERS workers per instance, by
        default one per vCPU of the instance type; but never more processes in all than the cap
        (QA_CONSOLE_RUNTIME_MAX_WORKERS, default this machine's cores), fewer workers per
        instance first so every instance keeps its log stream. Serverless: one worker whose
        threads follow MaxConcurrency."""
        settings = self.settings
        if variant.serverless:
            concurrency = int(variant.serverless_max_concurrency or 1)
            return 1, 1, max(1, min(concurrency, settings.threads))
        cap = settings.max_workers or max(2, os.cpu_count() or 1)
        instances = max(1, min(variant.instance_count, cap))
        try:
            wanted = int(dict(variant.environment).get("SAGEMAKER_MODEL_SERVER_WORKERS", 0))
        except ValueError:
            wanted = 0
        wanted = wanted or instance_vcpus(variant.instance_type)
        per_instance = max(1, min(wanted, cap // instances))
        return instances, per_instance, max(1, settings.threads)

    def _thread_environment(self) -> dict[str, str]:
        """OMP/MKL thread counts for a worker. Several requests run at once in a worker, and
        torch's default (one thread per core for each) oversubscribes the cores, which the
        runtime shares with the user's other work: measured on a busy 2-core machine, a tiny T5
        answered in 450 ms with 2 intra-op threads and 48 ms with 1 (docs/benchmarks.md)."""
        intra = str(max(1, self.settings.intra_op_threads))
        return {
            name: os.environ.get(name, intra) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
        }

    # --- requests -----------------------------------------------------------------------------

    async def target(self, name: str, variant_name: str | None) -> Target:
        """Resolve the endpoint and pick its variant and pool; WireError when it cannot serve."""
        self.start()
        spec = self.control.cached(name)
        if spec is None or not spec.serving:
            # Only "serving" is taken from the cache: an endpoint that has just turned InService
            # (or been created) must not be refused for what the cache saw a moment ago.
            spec = await asyncio.to_thread(lambda: self.control.endpoint(name, fresh=True))
        if spec is None:
            account = await asyncio.to_thread(self.control.account)
            raise wire.endpoint_not_found(name, account)
        if not spec.serving:
            raise wire.endpoint_not_in_service(name, spec.account, spec.status)
        if variant_name is not None:
            variant = spec.variant(variant_name)
            if variant is None:
                raise wire.validation_error(
                    f"Variant {variant_name} not found for endpoint {name}."
                )
        elif len(spec.variants) > 1:
            weights = [max(v.weight, 0.0) or 1e-9 for v in spec.variants]
            variant = random.choices(spec.variants, weights=weights)[0]
        elif spec.variants:
            variant = spec.variants[0]
        else:
            raise wire.validation_error(f"Endpoint {name} has no production variant.")
        return Target(spec, variant, self.pool_for(spec, variant), self.region)

    @contextlib.contextmanager
    def admitted(self, target: Target) -> Iterator[None]:
        """Count the request against a serverless variant's MaxConcurrency (ThrottlingException)."""
        limit = target.variant.serverless_max_concurrency
        name = target.spec.name
        with self._lock:
            if limit is not None and self._in_flight.get(name, 0) >= limit:
                raise wire.throttled(name, limit)
            self._in_flight[name] = self._in_flight.get(name, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[name] -= 1

    def payload_limit(self, target: Target) -> int:
        if target.variant.serverless:
            return wire.SERVERLESS_MAX_PAYLOAD
        return wire.REALTIME_MAX_PAYLOAD

    async def submit(self, target: Target, call: Call) -> None:
        if len(call.body) > 1024 * 1024:  # a big body may fill the socket buffer: not on the loop
            await asyncio.to_thread(target.pool.submit, call)
        else:
            target.pool.submit(call)

    async def next_message(
        self, target: Target, call: Call, timeout_s: float, started: float
    ) -> tuple[Any, ...]:
        """The worker's next message for the call, or a WireError for a timeout or no model.

        `timeout_s` counts from `started` (loop time). A call still waiting for a loading model
        gives up after the load wait with ModelNotReadyException.
        """
        loop = asyncio.get_running_loop()
        deadline = started + timeout_s
        not_ready_at = started + min(self.settings.load_wait_s, timeout_s)
        while True:
            limit = min(deadline, not_ready_at) if call.worker is None else deadline
            try:
                return await asyncio.wait_for(call.queue.get(), max(0.0, limit - loop.time()))
            except TimeoutError:
                now = loop.time()
                if call.worker is None and now >= not_ready_at:
                    target.pool.abandon(call, "not-ready")
                    raise wire.model_not_ready(target.spec.name, now - started) from None
                if call.worker is not None and now >= deadline:
                    target.pool.abandon(call, "timeout")
                    raise wire.model_error(0, wire.TIMEOUT_MESSAGE, target.where) from None

    def failure(self, target: Target, message: tuple[Any, ...]) -> wire.WireError | None:
        """The AWS error for a worker's final message, or None if it is a success."""
        kind = message[0]
        if kind == "error":
            status, text = int(message[2]), str(message[3])
            return wire.model_error(status, wire.handler_failure_message(text), target.where)
        if kind == "crashed":
            return wire.model_error(
                500,
                f"The model container exited (exit code {message[1]}) while handling this "
                "request; it is being restarted.",
                target.where,
            )
        if kind == "load_failed":
            return wire.model_error(500, str(message[1]), target.where)
        if kind == "unavailable":
            return wire.WireError(503, "ServiceUnavailable", str(message[1]))
        return None

    def access_log(self, target: Target, call: Call, path: str, status: int, ms: float) -> None:
        """One line per request, with its latency and, as SageMaker's ModelLatency metric, the
        handler's share of it."""
        instance = call.instance_id or target.pool.slots[0].instance_id
        line = f'ACCESS_LOG "POST {path} HTTP/1.1" {status} {ms:.1f} ms'
        if call.model_ms is not None:
            line += f" (model {call.model_ms:.1f} ms)"
        target.pool.log(instance, line)

    # --- async invocations --------------------------------------------------------------------

    async def invoke_async(
        self,
        name: str,
        input_location: str | None,
        content_type: str | None,
        accept: str | None,
        inference_id: str | None,
        path_extension: str | None,
        filename: str | None,
        timeout_s: float | None,
    ) -> tuple[str, str, str | None]:
        """Queue an async invocation; returns (inference id, output location, failure location)."""
        target = await self.target(name, None)
        spec = target.spec
        if not spec.async_output_path:
            raise wire.validation_error(
                f"Endpoint {name} is not configured for asynchronous inference: its endpoint "
                "config has no AsyncInferenceConfig with an S3OutputPath."
            )
        if not input_location:
            raise wire.validation_error("InputLocation is required.")
        try:
            split_s3_url(input_location)
        except ValueError as error:
            raise wire.validation_error(f"InputLocation {error}") from None
        inference_id = inference_id or str(uuid.uuid4())
        object_name = filename or f"{uuid.uuid4()}.out"
        output = _join_s3(spec.async_output_path, path_extension, object_name)
        failure = None
        if spec.async_failure_path:
            failure = _join_s3(
                spec.async_failure_path,
                path_extension,
                object_name.removesuffix(".out") + "-error.out",
            )
        task = asyncio.create_task(
            self._run_async(
                target,
                input_location,
                content_type,
                accept,
                output,
                failure,
                timeout_s or self.settings.async_timeout_s,
            )
        )
        self._async_tasks.add(task)
        task.add_done_callback(self._async_tasks.discard)
        return inference_id, output, failure

    async def _run_async(
        self,
        target: Target,
        input_location: str,
        content_type: str | None,
        accept: str | None,
        output: str,
        failure: str | None,
        timeout_s: float,
    ) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        call: Call | None = None
        try:
            bucket, key = split_s3_url(input_location)
            try:
                body = await asyncio.to_thread(
                    lambda: self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                )
            except Exception as problem:
                raise wire.validation_error(
                    f"Could not read InputLocation {input_location}: {problem}"
                ) from None
            call = Call(loop, body, content_type, accept)
            await self.submit(target, call)
            message = await self.next_message(target, call, timeout_s, started)
            failed = self.failure(target, message)
            if failed is not None:
                raise failed
            await asyncio.to_thread(self._put, output, message[2], message[3])
            self.access_log(target, call, "/async-invocations", 200, (loop.time() - started) * 1000)
        except wire.WireError as error:
            text = error.members.get("OriginalMessage") or error.message
            if call is not None:
                self.access_log(
                    target, call, "/async-invocations", error.status, (loop.time() - started) * 1000
                )
            else:
                target.pool.log(target.pool.slots[0].instance_id, f"ERROR async: {text}")
            if failure is not None:
                await asyncio.to_thread(self._put, failure, str(text).encode(), "text/plain")

    def _put(self, url: str, body: bytes, content_type: str) -> None:
        bucket, key = split_s3_url(url)
        self.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    # --- status -------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        with self._lock:
            items = list(self._pools.items())
        endpoints: dict[str, list[dict[str, Any]]] = {}
        for (name, _variant), holder in items:
            for role, pool in (("serving", holder.current), ("updating-to", holder.next)):
                if pool is not None:
                    endpoints.setdefault(name, []).append({"role": role, **pool.describe()})
        return {"endpoints": endpoints, "work_dir": str(self.work_dir)}

    def wait_ready(self, name: str, timeout_s: float = 60.0) -> bool:
        """Block until every variant of the endpoint has loaded or failed (warm-up, tests)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            spec = self.control.endpoint(name, fresh=True)
            if spec is not None and spec.status in PREPARING_STATUSES:
                pools = [self.pool_for(spec, variant) for variant in spec.variants]
                if pools and all(pool.settled.is_set() for pool in pools):
                    return all(pool.ready.is_set() for pool in pools)
            time.sleep(0.05)
        return False


def expect_health_reports() -> None:
    """Tell the control plane in this process (if any) that every deployment will be reported."""
    from qa_console.localaws.motoserver import patches

    if patches.applied():
        patches.expect_health_reports()


def report_health(endpoint_arn: str, config_name: str, problem: str | None) -> None:
    """Tell the control plane whether a deployment's model loaded, when it runs in this process
    with the launcher's patches (its endpoints go InService, or Failed, on that word)."""
    from qa_console.localaws.motoserver import patches

    if patches.applied():
        patches.report_health(endpoint_arn, config_name, problem)


def _container_environment() -> dict[str, str]:
    """What a container has of its own besides the model's variables: a home, a temp dir and a
    UTF-8 locale (this machine's home and temp dir: libraries keep their caches there)."""
    env = {"LANG": "C.UTF-8"}
    for name in ("HOME", "TMPDIR"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def instance_vcpus(instance_type: str | None) -> int:
    """vCPUs of an ml.* instance type from its size: large 2, xlarge 4, Nxlarge 4N."""
    size = (instance_type or "").rsplit(".", 1)[-1]
    if size in ("medium", "large"):
        return 2
    if size.endswith("xlarge"):
        multiple = size.removesuffix("xlarge")
        return 4 * (int(multiple) if multiple.isdigit() else 1)
    return 1


def _join_s3(base: str, extension: str | None, name: str) -> str:
    parts = [base.rstrip("/")]
    if extension:
        parts.append(extension.strip("/"))
    parts.append(name)
    return "/".join(parts)
