"""A SageMaker-compatible runtime: serves the endpoints of the local control plane over the
sagemaker-runtime wire API, running each model's code/inference.py in worker processes.

    app = create_runtime_app("http://127.0.0.1:5000", "us-east-1", work_dir)
    uvicorn.run(app, host="127.0.0.1", port=...)      # lifespan shutdown stops the workers
    app.state.runtime.shutdown()                       # the same, when mounted without lifespan

Modules: app (HTTP routes) -> service (Runtime: pools per endpoint, waiting, async) -> pool (slots,
dispatch, retiring, restarts) -> localaws/workers.py (the process mechanics both services share) ->
inference/sagemaker_worker.py (the container process); control (reads the control plane),
artifacts (model data from S3), logs (the endpoint's log group and stream names; the lines go
through cloudwatch/shipper.py), wire and eventstream (AWS formats).
Importing this package imports none of them: the CLI imports qa_console.localaws on every `local`
target, and only the launcher needs the runtime.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from qa_console.localaws.sagemaker.service import RuntimeSettings


def create_runtime_app(
    aws_endpoint_url: str,
    region: str,
    work_dir: Path,
    settings: RuntimeSettings | None = None,
) -> Starlette:
    """The runtime as an ASGI app. It starts watching the control plane (and loading the models
    of existing endpoints) at once; `app.state.runtime.shutdown()` or the app's lifespan shutdown
    stops the worker processes. Settings default to the QA_CONSOLE_RUNTIME_* environment."""
    from qa_console.localaws.sagemaker.app import create_app
    from qa_console.localaws.sagemaker.service import Runtime

    runtime = Runtime(aws_endpoint_url, region, Path(work_dir), settings)
    runtime.start()
    return create_app(runtime)


__all__ = ["create_runtime_app"]
