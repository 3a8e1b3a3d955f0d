"""The backend registry: plugins files and their precedence, kinds from entry points, broken
plugins reported while the rest work, and listing that imports no backend module."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fixtures_foundation import FakeApi, run_cli, write_plugins
from qa_console import registry
from qa_console.backends.http import HttpBackend
from qa_console.chat import ChatSession
from qa_console.errors import ConfigError
from qa_console.paths import config_dir

BUILTIN_PLUGINS = registry.builtin_plugins_file()


def load(name: str, path: Path) -> object:
    """Build instance `name` of the plugins file `path` alone."""
    return ChatSession(instances=registry.read_instances([path])).backend(name)


def user_plugins(text: str) -> Path:
    path = config_dir() / "plugins.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_files_are_read_builtin_then_user_then_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert BUILTIN_PLUGINS.is_file()  # shipped inside the package
    user = user_plugins(
        """
        [backends.bio-api]
        url = "http://user.example/ask"
        """
    )
    env_file = tmp_path / "env.toml"
    env_file.write_text(
        textwrap.dedent(
            """
            [backends.bio-api]
            timeout_s = 5.0

            [backends.bio-sagemaker]
            kind = "http"
            url = "http://replaced.example/ask"
            """
        )
    )
    monkeypatch.setenv("QA_CONSOLE_PLUGINS", str(env_file))

    assert registry.plugin_files() == [BUILTIN_PLUGINS, user, env_file]
    instances = registry.read_instances()

    api = instances["bio-api"]
    assert api.kind == "http"  # from the built-in file
    assert api.options["url"] == "http://user.example/ask"  # the user's file wins over the built-in
    assert api.options["api_key_env"] == "QA_CONSOLE_API_KEY"  # kept from the built-in file
    assert api.options["timeout_s"] == 5.0  # from the env file
    assert api.source == env_file and api.line == 2
    assert api.option_sources["url"] == f"{user}:3"
    assert api.option_sources["timeout_s"] == f"{env_file}:3"
    assert api.option_sources["api_key_env"].startswith(f"{BUILTIN_PLUGINS}:")

    replaced = instances["bio-sagemaker"]  # another kind: the instance is replaced, not merged
    assert replaced.kind == "http"
    assert dict(replaced.options) == {"url": "http://replaced.example/ask"}

    assert list(instances)[:3] == ["bio-local", "bio-sagemaker", "bio-api"]  # declaration order
    built = ChatSession().backend("bio-api")
    assert isinstance(built, HttpBackend)
    assert built.settings["url"] == "http://user.example/ask"


def test_a_missing_env_file_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QA_CONSOLE_PLUGINS", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match=r"nope\.toml: no such plugins file"):
        registry.plugin_files()


def test_relative_model_paths_resolve_against_the_declaring_file(tmp_path: Path) -> None:
    user = user_plugins(
        """
        [backends.mine]
        kind = "local"
        model = "models/bio"

        [backends.abs]
        kind = "local"
        model = "/srv/model.tar.gz"

        [backends.remote]
        kind = "local"
        model = "s3://bucket/model.tar.gz"
        """
    )
    instances = registry.read_instances()
    assert instances["mine"].options["model"] == str(user.parent / "models" / "bio")
    assert instances["abs"].options["model"] == "/srv/model.tar.gz"
    assert instances["remote"].options["model"] == "s3://bucket/model.tar.gz"
    # The built-in file's relative paths are the current folder's, where `train` writes.
    assert instances["bio-local"].options["model"] == str(Path.cwd() / "artifacts/model")


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('[backends.a]\nkind = "http"\nurl = \n', 3, "malformed TOML"),
        ('\n[backends.a]\nurl = "http://x"\n', 2, "has no kind"),
        ('[backend.a]\nkind = "http"\n', 1, "unknown section 'backend'"),
        ("[backends]\na = 3\n", 2, "must be a table"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        registry.read_instances([path])
    assert caught.value.message.startswith(f"{path}:{line}: ")
    assert words in caught.value.message


def test_an_unknown_kind_fails_where_it_is_used_naming_file_and_line(tmp_path: Path) -> None:
    """A typo in a kind, or an uninstalled plugin, breaks that instance only."""
    path = tmp_path / "p.toml"
    path.write_text(
        '[backends.a]\nkind = "http"\nurl = "http://x/ask"\n\n[backends.b]\nkind = "htpp"\n'
    )
    instances = registry.read_instances([path])
    assert registry.kind_problem(instances["b"]) == "unknown kind 'htpp'"
    assert registry.kind_problem(instances["a"]) is None
    with pytest.raises(ConfigError) as caught:
        load("b", path)
    assert caught.value.message == f"{path}:5: backend 'b' has unknown kind 'htpp'"
    assert "http" in str(caught.value.hint)
    assert isinstance(load("a", path), HttpBackend)


def test_bad_options_name_file_and_line(tmp_path: Path) -> None:
    path = write_plugins(
        tmp_path / "p.toml", {"ok": {"kind": "http", "url": "http://x/ask"}, "b": {"kind": "http"}}
    )
    with pytest.raises(ConfigError) as caught:
        load("b", path)
    assert caught.value.message.startswith(f"{path}:5: backend 'b': ")
    assert "needs option 'url'" in caught.value.message
    assert isinstance(load("ok", path), HttpBackend)
    with pytest.raises(ConfigError, match="no backend instance named 'zz'"):
        load("zz", path)


def test_listing_hides_secret_values_by_name(tmp_path: Path) -> None:
    path = write_plugins(
        tmp_path / "p.toml",
        {"k": {"kind": "http", "url": "http://x", "api_key": "s3cr3t", "api_key_env": "VAR"}},
    )
    spec = registry.read_instances([path])["k"]
    assert spec.public_options() == {"url": "http://x", "api_key": "<hidden>", "api_key_env": "VAR"}


def test_reading_and_listing_import_no_backend_module() -> None:
    code = (
        "import sys\n"
        "from qa_console import registry\n"
        "registry.read_instances()\n"
        "statuses = [registry.kind_status(kind) for kind in registry.kinds().values()]\n"
        "print(sorted(m for m in sys.modules if m.startswith('qa_console.backends.')))\n"
        "print(sorted(m for m in ('torch', 'transformers', 'textual', 'httpx', 'boto3')"
        " if m in sys.modules))\n"
        "print(statuses[2])\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    modules, heavy, http_status = run.stdout.splitlines()
    assert modules == "[]"
    assert heavy == "[]"
    assert http_status == "None"  # the http module is found on disk without importing it


# ------------------------------------------------------------------- an installed plugin

PLUGIN_MODULE = '''
"""A third-party backend kind, installed by the test as a distribution with an entry point."""
import os
from pathlib import Path

from qa_console.backends.base import Answer, Backend, BackendOption, Health

Path(os.environ["QA_TEST_MARKERS"], "echo_plugin").touch()


class EchoBackend(Backend):
    kind = "echo"
    options = (BackendOption("prefix", "what to put before the question", default="echo"),)

    def ask(self, question, parameters=None):
        return Answer(f"{self.settings['prefix']}: {question}", self.name, 0.1)

    def health(self):
        return Health(True, "echoing", 0.1)


not_a_backend = 42
'''

BROKEN_MODULE = """
import os
from pathlib import Path

Path(os.environ["QA_TEST_MARKERS"], "broken_plugin").touch()
raise RuntimeError("boom: this plugin is broken")
"""

ENTRY_POINTS = """
[qa_console.backends]
echo = echo_plugin:EchoBackend
broken = broken_plugin:Broken
notaclass = echo_plugin:not_a_backend
missing = no_such_module_xyz:Thing
http = echo_plugin:EchoBackend
"""


@pytest.fixture
def installed_plugin(tmp_path: Path, fake_api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A distribution `qa-console-echo-plugin` (dist-info with entry points) on PYTHONPATH, and a
    plugins file using its kinds next to a working http instance. Returns the markers folder,
    where each plugin module leaves a file when it is imported."""
    site = tmp_path / "site"
    dist_info = site / "qa_console_echo_plugin-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: qa-console-echo-plugin\nVersion: 0.1\n"
    )
    (dist_info / "entry_points.txt").write_text(ENTRY_POINTS)
    (site / "echo_plugin.py").write_text(PLUGIN_MODULE)
    (site / "broken_plugin.py").write_text(BROKEN_MODULE)
    markers = tmp_path / "markers"
    markers.mkdir()
    plugins = write_plugins(
        tmp_path / "plugins.toml",
        {
            "e1": {"kind": "echo", "prefix": "ECHO"},
            "b1": {"kind": "broken"},
            "u1": {"kind": "uninstalled"},
            "t": {"kind": "http", "url": fake_api.url()},
        },
    )
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv("QA_TEST_MARKERS", str(markers))
    monkeypatch.setenv("QA_CONSOLE_PLUGINS", str(plugins))
    return markers


def test_entry_point_kinds_are_listed_without_importing_them(installed_plugin: Path) -> None:
    run = run_cli("backends", "list", "--json")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    kinds = {kind["name"]: kind for kind in data["kinds"]}
    assert kinds["echo"]["origin"] == "entry point (qa-console-echo-plugin)"
    assert kinds["echo"]["target"] == "echo_plugin:EchoBackend"
    assert kinds["echo"]["status"] == "installed"
    assert "not installed" in kinds["missing"]["error"]
    assert kinds["http"]["origin"] == "built-in"
    assert "built-in" in kinds["http (qa-console-echo-plugin)"]["error"]
    instances = {instance["name"]: instance for instance in data["instances"]}
    assert {"e1", "b1", "u1", "t"} <= set(instances)
    assert instances["e1"]["error"] is None
    assert instances["u1"]["error"] == "unknown kind 'uninstalled'"
    assert list(installed_plugin.iterdir()) == []  # no plugin module was imported

    human = run_cli("backends", "list")
    assert human.returncode == 0, human.stderr
    assert "echo" in human.stdout
    assert list(installed_plugin.iterdir()) == []


def test_list_load_reports_each_broken_plugin(installed_plugin: Path) -> None:
    run = run_cli("backends", "list", "--json", "--load")
    assert run.returncode == 0, run.stderr
    kinds = {kind["name"]: kind for kind in json.loads(run.stdout)["kinds"]}
    assert kinds["echo"]["status"] == "loads"
    assert "boom: this plugin is broken" in kinds["broken"]["error"]
    assert "not a qa_console Backend" in kinds["notaclass"]["error"]
    assert kinds["http"]["status"] == "loads"


def test_a_broken_plugin_fails_alone(installed_plugin: Path, fake_api: FakeApi) -> None:
    echo = run_cli("ask", "--backend", "e1", "hello")
    assert echo.returncode == 0, echo.stderr
    assert echo.stdout == "ECHO: hello\n"

    broken = run_cli("ask", "--backend", "b1", "hello")
    assert broken.returncode == 1
    assert "backend kind 'broken' (broken_plugin:Broken) failed to load" in broken.stderr
    assert "RuntimeError: boom: this plugin is broken" in broken.stderr
    assert "Traceback" not in broken.stderr

    http = run_cli("ask", "--backend", "t", "hello")
    assert http.returncode == 0
    assert http.stdout == "answer to: hello\n"

    uninstalled = run_cli("ask", "--backend", "u1", "hello")
    assert uninstalled.returncode == 2
    assert "has unknown kind 'uninstalled'" in uninstalled.stderr

    check = run_cli("backends", "check", "e1", "b1", "u1", "t", "--json")
    assert check.returncode == 1
    rows = {row["name"]: row for row in json.loads(check.stdout)["backends"]}
    assert rows["e1"]["ok"] and rows["t"]["ok"]
    assert not rows["b1"]["ok"] and "boom" in rows["b1"]["detail"]
    assert not rows["u1"]["ok"] and "unknown kind" in rows["u1"]["detail"]
    assert rows["t"]["latency_ms"] > 0

    healthy = run_cli("backends", "check", "e1", "t")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
