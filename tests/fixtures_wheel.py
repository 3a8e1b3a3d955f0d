"""The checkout as a user installs it: a built wheel, installed in a fresh venv (session scope).

    def test_x(built_wheel: Path) -> None: ...            # the .whl file
    def test_y(installed_wheel: InstalledWheel) -> None:
        done = installed_wheel.qa("train", "--base-model", "tiny", cwd=folder)

`built_wheel` runs `pip wheel --no-deps` on a copy of the checkout: a build in place leaves
build/lib behind, and a later build ships whatever stale module is still in there.

`installed_wheel` creates a venv in a temp folder, installs torch==2.13.0 first (exactly that
pin: a looser requirement pulls a multi-GB CUDA build), then the wheel with its `all` extra, as
scripts/install.sh does for the checkout. Its commands run without stdin, with HOME and the XDG
dirs in a temp folder and with nothing in their environment that names the checkout or the dev
venv (no PYTHONPATH, VIRTUAL_ENV, no PATH entry, no QA_CONSOLE_* or AWS_* variable), so what
they find they found in the installed package. Any local AWS they start watches this test
process (QA_CONSOLE_LOCAL_WATCH_PID) and so never outlives the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from qa_console.localaws.supervisor import WATCH_PID_ENV

REPO_ROOT = Path(__file__).resolve().parent.parent
TORCH_PIN = "torch==2.13.0"  # the same pin as scripts/install.sh and pyproject's model extra
INSTALL_TIMEOUT_S = 900
COMMAND_TIMEOUT_S = 300
# What a clean clone has beyond the sources; never part of a build.
NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "*.pyc",
    "artifacts",
    ".ci-home",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
)
# Variables that steer Python, pip's target, the app or AWS: the installed app must run without
# any of the test run's values.
DROPPED_PREFIXES = ("PYTHON", "VIRTUAL_ENV", "CONDA_", "QA_CONSOLE_", "AWS_", "XDG_", "PYTEST")


@dataclass(frozen=True)
class InstalledWheel:
    """A venv holding the installed wheel, and the environment its commands run with."""

    venv: Path
    home: Path
    env: dict[str, str]

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def run(
        self, *argv: str | Path, cwd: Path, timeout: float = COMMAND_TIMEOUT_S
    ) -> subprocess.CompletedProcess[str]:
        """Run a program of the venv (or any argv) in `cwd` with the user's environment."""
        return run_program([str(part) for part in argv], cwd, self.env, timeout)

    def qa(self, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
        """`qa-console ARGS` through the venv's console script."""
        return self.run(self.venv / "bin" / "qa-console", *args, cwd=cwd)


def run_program(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run argv without stdin, capturing its text output; never raises on a non-zero exit: the
    caller asserts on it."""
    return subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _checked(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = run_program(argv, cwd, env, INSTALL_TIMEOUT_S)
    assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}"


def _dev_locations() -> list[str]:
    """Paths that belong to the checkout or to the venv running the tests."""
    locations = [str(REPO_ROOT)]
    if sys.prefix != sys.base_prefix:
        locations.append(sys.prefix)
    return locations


def _names_dev_location(value: str) -> bool:
    return any(location in value for location in _dev_locations())


def pip_environment() -> dict[str, str]:
    """The test run's environment for pip (its index and cache settings), minus what would
    point Python at the dev venv or the checkout."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PYTHON", "VIRTUAL_ENV", "CONDA_"))
    }
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def user_environment(venv: Path, home: Path) -> dict[str, str]:
    """What a user's shell would hold after installing the wheel: the venv's bin first on PATH,
    their own HOME and XDG dirs, and nothing of the checkout."""
    path = [str(venv / "bin")] + [
        entry
        for entry in os.environ.get("PATH", "").split(os.pathsep)
        if entry and not _names_dev_location(entry)
    ]
    env = {
        name: value
        for name, value in os.environ.items()
        if name != "PATH"
        and not name.startswith(DROPPED_PREFIXES)
        and not _names_dev_location(value)
    }
    env["PATH"] = os.pathsep.join(path)
    env["HOME"] = str(home)
    for variable, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_CACHE_HOME", "cache"),
    ):
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[variable] = str(home / sub)
    env[WATCH_PID_ENV] = str(os.getpid())
    return env


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `pip wheel --no-deps` builds from a copy of this checkout."""
    source = tmp_path_factory.mktemp("wheel-source") / "qa-console"
    shutil.copytree(REPO_ROOT, source, ignore=NOT_SOURCES)
    out = tmp_path_factory.mktemp("wheel")
    _checked(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(source)],
        cwd=out,
        env=pip_environment(),
    )
    (wheel,) = out.glob("qa_console-*.whl")
    return wheel


@pytest.fixture(scope="session")
def installed_wheel(built_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> InstalledWheel:
    """A fresh venv with torch==2.13.0, then the wheel with [all], installed by its own pip."""
    root = tmp_path_factory.mktemp("wheel-install")
    venv = root / "venv"
    env = pip_environment()
    _checked([sys.executable, "-m", "venv", str(venv)], cwd=root, env=env)
    # --no-compile: pip's byte-compiling of every installed module (torch, transformers, moto,
    # botocore) took about a minute; Python compiles what it imports anyway, and pip treats a
    # module that fails to compile as a warning, so the install proves nothing more with it.
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile"]
    _checked([*pip, TORCH_PIN], cwd=root, env=env)
    _checked([*pip, f"{built_wheel}[all]"], cwd=root, env=env)
    home = root / "home"
    home.mkdir()
    return InstalledWheel(venv=venv, home=home, env=user_environment(venv, home))
