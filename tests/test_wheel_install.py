"""What users install works, not only the checkout: the wheel built from this checkout, installed
in a fresh venv (tests/fixtures_wheel.py), run from a folder outside the checkout with an
environment that names nothing of it. It ships its package data and only the qa_console package,
and it trains, packages, starts the local AWS, uploads, serves, answers, and gets
`train --on sagemaker` past building and uploading its source dir.

`make wheel-smoke` runs this module alone.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from fixtures_localaws import LocalAws, localaws_client
from fixtures_wheel import REPO_ROOT, InstalledWheel
from qa_console.localaws import launcher
from qa_console.localaws.state import pid_alive, read_state

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

PACKAGE = REPO_ROOT / "src" / "qa_console"
ROLE = "arn:aws:iam::123456789012:role/x"
BUCKET = "qa-console-123456789012-us-east-1"  # the default: qa-console-<account>-<region>
TRAIN_STEPS = "60"  # enough for the tiny model to answer with words, in seconds


def project_version() -> str:
    with (REPO_ROOT / "pyproject.toml").open("rb") as handle:
        return str(tomllib.load(handle)["project"]["version"])


def checkout_files(folder: Path) -> set[str]:
    """Every file under `folder`, relative to it, as a build should ship it (no bytecode)."""
    return {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def first_training_question() -> str:
    line = (PACKAGE / "data" / "biography" / "train.jsonl").read_text(encoding="utf-8")
    return str(json.loads(line.splitlines()[0])["question"])


def succeeded(done: Any) -> str:
    """stdout of a command that must have exited 0 (its output in the failure message)."""
    assert done.returncode == 0, (
        f"{done.args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    )
    assert "Traceback" not in done.stderr, done.stderr
    return str(done.stdout)


def one_line_error(done: Any, exit_code: int) -> str:
    """The `error: ...` line of a command that must have failed as a user error does: the
    documented exit code, one error line (and its hint), no traceback."""
    assert done.returncode == exit_code, f"{done.args}:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr and "FileNotFoundError" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    return errors[0]


def test_the_wheel_ships_the_package_data_and_only_qa_console(built_wheel: Path) -> None:
    version = project_version()
    with zipfile.ZipFile(built_wheel) as wheel:
        names = wheel.namelist()
        shipped = {
            name.removeprefix("qa_console/"): wheel.read(name)
            for name in names
            if name.startswith("qa_console/") and not name.endswith("/")
        }
        metadata = f"qa_console-{version}.dist-info"
        top_level = wheel.read(f"{metadata}/top_level.txt").decode().split()
        entry_points = wheel.read(f"{metadata}/entry_points.txt").decode()

    # One top-level import name: ops, backends and inference belong to other projects on PyPI.
    assert {name.split("/", 1)[0] for name in names} == {"qa_console", metadata}
    assert top_level == ["qa_console"]
    assert not [name for name in names if "tests/" in name or "conftest" in name]
    # Every file of the package, code or data, is in the wheel, byte for byte.
    assert set(shipped) == checkout_files(PACKAGE)
    for name in (
        "plugins.toml",
        "data/biography/train.jsonl",
        "data/biography/validation.jsonl",
        "data/biography/test.jsonl",
        "data/biography/unknown.jsonl",
        "data/biography/unknowns.py",
        "data/biography/people.csv",
        "data/biography/README.md",
    ):
        assert shipped[name] == (PACKAGE / name).read_bytes(), name
    scripts = {name for name in shipped if name.startswith("inference/")}
    assert scripts == {f"inference/{path.name}" for path in (PACKAGE / "inference").glob("*.py")}
    assert {"inference/model_handler.py", "inference/train_entry.py"} <= scripts
    assert re.search(r"^qa-console = qa_console\.cli\.app:main$", entry_points, re.MULTILINE)


def test_the_installed_wheel_trains_packages_serves_and_answers_outside_the_checkout(
    installed_wheel: InstalledWheel, tmp_path: Path
) -> None:
    app = installed_wheel
    work = tmp_path / "user-folder"
    work.mkdir()
    assert REPO_ROOT not in work.parents
    assert "PYTHONPATH" not in app.env and "VIRTUAL_ENV" not in app.env
    assert not [value for value in app.env.values() if str(REPO_ROOT) in value]

    # The package imported is the installed one.
    where = succeeded(
        app.run(app.python, "-c", "import qa_console; print(qa_console.__file__)", cwd=work)
    )
    assert Path(where.strip()).is_relative_to(app.venv), where
    assert succeeded(app.qa("--version", cwd=work)) == f"qa-console {project_version()}\n"

    record = train_tiny(app, work)
    question = first_training_question()
    answer = package_check_and_smoke(app, work, question)

    # The built-in plugins.toml's bio-local finds ./artifacts/model of the current folder.
    assert succeeded(app.qa("ask", "--backend", "bio-local", question, cwd=work)).strip() == answer
    elsewhere = tmp_path / "no-model-here"
    elsewhere.mkdir()
    missing = one_line_error(app.qa("ask", "--backend", "bio-local", question, cwd=elsewhere), 2)
    assert str(elsewhere / "artifacts" / "model") in missing

    state_dir = app.home / "state" / "qa-console" / "local-aws"
    try:
        up = succeeded(app.qa("local", "up", cwd=work))
        for part in ("moto", "runtime", "gateway"):
            assert re.search(rf"^{part} +http://127\.0\.0\.1:\d+ +ok$", up, re.MULTILINE), up
        state = read_state(state_dir)
        assert state is not None, f"no state.json in {state_dir}"
        s3 = localaws_client(LocalAws.from_state(state, state_dir), "s3")

        upload_and_serve(app, work, s3, question, answer)

        # train --on sagemaker builds and uploads its source dir from the installed package,
        # then ends in one error line: the local AWS runs no training jobs.
        succeeded(app.qa("config", "set", "execution_role", ROLE, cwd=work))
        on_sagemaker = app.qa(
            "--target", "local", "train", "--on", "sagemaker", "--base-model", "tiny", cwd=work
        )
        assert "runs none" in one_line_error(on_sagemaker, 1)
        assert_source_dir_uploaded(s3, tmp_path)
        model = work / "artifacts" / "model"
        assert json.loads((model / "training_record.json").read_text(encoding="utf-8")) == record

        succeeded(app.qa("local", "down", cwd=work))
        assert read_state(state_dir) is None
        assert not pid_alive(state.pid)
    finally:
        launcher.stop(directory=state_dir)  # a no-op after a successful `local down`


def train_tiny(app: InstalledWheel, work: Path) -> dict[str, Any]:
    """`qa-console train --base-model tiny` in `work`: the dataset comes from the installed
    package (the same rows as the checkout's), the model goes to ./artifacts/model."""
    succeeded(app.qa("train", "--base-model", "tiny", "--max-steps", TRAIN_STEPS, cwd=work))
    model = work / "artifacts" / "model"
    record: dict[str, Any] = json.loads(
        (model / "training_record.json").read_text(encoding="utf-8")
    )
    assert Path(record["data"]["source"]).is_relative_to(app.venv)
    assert record["data"]["shipped"] is True
    assert record["data"]["rows"] == {"train": 2580, "validation": 84, "test": 129, "unknown": 136}
    assert record["data"]["fingerprint"] == shipped_dataset_fingerprint()
    assert record["training"]["steps"] == int(TRAIN_STEPS)
    written = {path.name for path in model.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= written
    return record


def package_check_and_smoke(app: InstalledWheel, work: Path, question: str) -> str:
    """`package`, `package --check` and `package --smoke` of ./artifacts/model; the archive's
    code/inference.py is the installed handler. Returns the answer the handler gave."""
    succeeded(app.qa("package", "artifacts/model", cwd=work))
    with tarfile.open(work / "artifacts" / "model.tar.gz") as tar:
        handler = tar.extractfile("code/inference.py")
        assert handler is not None
        assert handler.read() == (PACKAGE / "inference" / "model_handler.py").read_bytes()
        assert "model.safetensors" in tar.getnames()
    checked = succeeded(app.qa("package", "--check", "artifacts/model.tar.gz", cwd=work))
    assert "0 error(s)" in checked
    smoke = succeeded(
        app.qa("package", "--smoke", "artifacts/model.tar.gz", "--question", question, cwd=work)
    )
    answers = re.findall(r"^answer: (.+)$", smoke, re.MULTILINE)
    assert len(answers) == 1, smoke
    return str(answers[0])


def upload_and_serve(app: InstalledWheel, work: Path, s3: Any, question: str, answer: str) -> None:
    """`upload` to the default bucket, then the demo's deploy: an execution role from
    `iam create-role`, `deploy` of the uploaded model, and the endpoint, served by the
    installed runtime, answers as the handler did."""
    url = succeeded(app.qa("upload", "artifacts/model.tar.gz", cwd=work)).strip()
    assert url == f"s3://{BUCKET}/qa-console/model.tar.gz"
    uploaded = s3.get_object(Bucket=BUCKET, Key="qa-console/model.tar.gz")["Body"].read()
    assert uploaded == (work / "artifacts" / "model.tar.gz").read_bytes()
    role = succeeded(
        app.qa("iam", "create-role", "qa-wheel-bot", "--endpoint", "biography-bot", cwd=work)
    ).strip()
    succeeded(app.qa("config", "set", "execution_role", role, cwd=work))
    succeeded(app.qa("deploy", url, "--name", "biography-bot", cwd=work))
    served = succeeded(app.qa("ask", "--backend", "bio-sagemaker", question, cwd=work))
    assert served.strip() == answer


def shipped_dataset_fingerprint() -> str:
    """The checkout's biography dataset, fingerprinted as training records it."""
    from qa_console.ops.training.data import biography_dataset_path, load_qa_dataset

    return load_qa_dataset(str(biography_dataset_path())).fingerprint


def assert_source_dir_uploaded(s3: Any, scratch: Path) -> None:
    """The job's data channels and sourcedir.tar.gz are in S3, and the source dir is the same
    bytes this checkout builds (build_source_dir is deterministic), which
    tests/test_train_sagemaker.py runs the way the training container does."""
    from qa_console.ops.training.sagemaker import build_source_dir

    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="qa-console/training/")
    keys = [item["Key"] for item in listed.get("Contents", [])]
    sources = [key for key in keys if key.endswith("/source/sourcedir.tar.gz")]
    assert len(sources) == 1, keys
    prefix = sources[0].removesuffix("source/sourcedir.tar.gz")
    for split in ("train", "validation", "test"):
        assert f"{prefix}data/{split}/{split}.jsonl" in keys, keys
    uploaded = s3.get_object(Bucket=BUCKET, Key=sources[0])["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(uploaded)) as tar:
        assert "train_entry.py" in tar.getnames()
    assert uploaded == build_source_dir(scratch / "sourcedir.tar.gz").read_bytes()
