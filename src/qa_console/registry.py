"""The backend registry: which backend instances a user has, which kinds exist, and loading one.

Instances are `[backends.NAME]` tables in plugins.toml files, read in this order, later wins:
the built-in one shipped inside the package (qa_console/plugins.toml), the user's (config dir),
the file named by QA_CONSOLE_PLUGINS. A later table for a name already declared overrides that
instance's options one by one (so a user file can set just `url` or `api_key` of the built-in
`bio-api`); a later table with a different `kind` replaces the instance.

Kinds are the built-ins, named here by "module:Class" strings, plus the entry-point group
`qa_console.backends`. Listing instances and kinds imports no backend module: a plugin's heavy
imports (torch, boto3, ...) cost nothing until it is used, and a broken plugin cannot break
`backends list`. `build(spec)` imports only the kind that instance needs; if that import fails
the error names the plugin and the cause, and every other instance keeps working.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa_console.errors import BackendError, ConfigError

if TYPE_CHECKING:
    from qa_console.backends.base import Backend

PLUGINS_ENV = "QA_CONSOLE_PLUGINS"
ENTRY_POINT_GROUP = "qa_console.backends"
PLUGINS_FILE = "plugins.toml"

BUILTIN_KINDS: dict[str, str] = {
    "local": "qa_console.backends.local:LocalBackend",
    "sagemaker": "qa_console.backends.sagemaker:SageMakerBackend",
    "http": "qa_console.backends.http:HttpBackend",
}

# Options whose values are paths, resolved against the folder of the file that declared them so
# that a plugins.toml means the same thing from any working directory.
PATH_OPTIONS = ("model", "api_key_file")

# Listings cannot ask a kind which of its options are secret without importing it, so values of
# options named like a secret are hidden by name. `*_env` options name a variable: not secret.
_SECRET_NAME = re.compile(r"(secret|password|passwd|token|api_?key|credential)", re.IGNORECASE)
HIDDEN = "<hidden>"


class PluginLoadError(BackendError):
    """A backend kind's module could not be imported, or does not hold a Backend class."""


@dataclass(frozen=True)
class KindSpec:
    """A backend kind, known by where its class lives; nothing is imported to know it."""

    name: str
    target: str  # "module:Class"
    origin: str  # "built-in" or "entry point (<distribution>)"
    shadowed_by_builtin: bool = False

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]


@dataclass(frozen=True)
class InstanceSpec:
    """One `[backends.NAME]` table after every file is merged."""

    name: str
    kind: str
    options: Mapping[str, Any]
    source: Path  # the last file that declared or changed it
    line: int  # the line of its table header in `source`
    option_sources: Mapping[str, str] = field(default_factory=dict)  # option -> "file:line"

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"

    def public_options(self) -> dict[str, Any]:
        """The options with secret-looking values hidden, for listings."""
        return {
            key: HIDDEN if is_secret_name(key) else value for key, value in self.options.items()
        }


def is_secret_name(option: str) -> bool:
    return bool(_SECRET_NAME.search(option)) and not option.endswith("_env")


# ---------------------------------------------------------------------------------- files


def plugin_files(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The plugins.toml files to read, lowest precedence first (only those that apply).

    The user's file is skipped when absent; the file named by QA_CONSOLE_PLUGINS must exist,
    since naming a missing file is a mistake worth reporting.
    """
    from qa_console.paths import config_dir

    env = os.environ if environ is None else environ
    files: list[Path] = [builtin_plugins_file()]
    user = config_dir() / PLUGINS_FILE
    if user.is_file():
        files.append(user)
    named = env.get(PLUGINS_ENV)
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"{path}: no such plugins file (named by {PLUGINS_ENV})",
                hint=f"create it or unset {PLUGINS_ENV}",
            )
        files.append(path)
    return files


def builtin_plugins_file() -> Path:
    """The plugins.toml shipped inside the package: the biography bot's backends."""
    from importlib import resources

    return Path(str(resources.files("qa_console").joinpath(PLUGINS_FILE)))


def read_instances(files: Iterable[Path] | None = None) -> dict[str, InstanceSpec]:
    """Every backend instance, merged over the files (default: `plugin_files()`), in first-declared
    order. Raises ConfigError naming file and line for malformed TOML or a table without a kind.

    A kind that no built-in or entry point provides is not an error here but where that instance
    is used (`kind_problem`, `build`): an uninstalled plugin must not break every other backend."""
    merged: dict[str, InstanceSpec] = {}
    for path in plugin_files() if files is None else files:
        for spec in _read_file(Path(path)):
            earlier = merged.get(spec.name)
            if earlier is not None and spec.kind in ("", earlier.kind):
                spec = InstanceSpec(
                    name=spec.name,
                    kind=earlier.kind,
                    options={**earlier.options, **spec.options},
                    source=spec.source,
                    line=spec.line,
                    option_sources={**earlier.option_sources, **spec.option_sources},
                )
            if not spec.kind:
                raise ConfigError(
                    f"{spec.where}: backend {spec.name!r} has no kind",
                    hint=f'add e.g. kind = "http"; known kinds: {", ".join(sorted(kinds()))}',
                )
            merged[spec.name] = spec
    return merged


def _read_file(path: Path) -> list[InstanceSpec]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read plugins file: {error}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        match = re.search(r"line (\d+)", str(error))
        line = match.group(1) if match else "1"
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(error))
        raise ConfigError(
            f"{path}:{line}: malformed TOML: {message}", hint="fix that line of the plugins file"
        ) from None

    unknown = sorted(set(data) - {"backends"})
    if unknown:
        raise ConfigError(
            f"{path}:{_line_of_table(text, unknown[0])}: unknown section {unknown[0]!r}",
            hint="a plugins file holds only [backends.NAME] tables",
        )
    tables = data.get("backends", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{path}:1: 'backends' must be a table of [backends.NAME] tables")
    specs = []
    for name, table in tables.items():
        line = _line_of_table(text, f"backends.{name}")
        if not isinstance(table, dict):
            line = _line_of_key(text, name, after=_line_of_table(text, "backends"))
            raise ConfigError(
                f"{path}:{line}: backends.{name} must be a table",
                hint=f'write it as [backends.{name}] with kind = "..." and options',
            )
        kind = table.get("kind", "")
        if not isinstance(kind, str):
            raise ConfigError(f"{path}:{line}: kind of backend {name!r} must be a string")
        options = {key: value for key, value in table.items() if key != "kind"}
        option_sources = {}
        for key in options:
            option_line = _line_of_key(text, key, after=line)
            option_sources[key] = f"{path}:{option_line}"
            if key in PATH_OPTIONS and isinstance(options[key], str):
                options[key] = resolve_path_option(options[key], _path_base(path))
        specs.append(InstanceSpec(name, kind, options, path, line, option_sources))
    return specs


def _path_base(path: Path) -> Path:
    """What relative paths in `path` are relative to: its own folder, except in the built-in file,
    whose `artifacts/model` means the current folder's, where `qa-console train` writes."""
    return Path.cwd() if path == builtin_plugins_file() else path.parent


def resolve_path_option(value: str, base: Path) -> str:
    """A relative path made absolute against `base`; URLs (s3://, hf://) and absolute paths kept."""
    if "://" in value:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def _line_of_table(text: str, dotted: str) -> int:
    parts = [re.escape(part) for part in dotted.split(".")]
    quoted = [rf"(?:{part}|\"{part}\"|'{part}')" for part in parts]
    pattern = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(quoted) + r"\s*\]")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return number
    return 1


def _line_of_key(text: str, key: str, after: int) -> int:
    pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
    for number, line in enumerate(text.splitlines(), start=1):
        if number > after and pattern.match(line):
            return number
        if number > after and line.lstrip().startswith("["):
            break
    return after


# ---------------------------------------------------------------------------------- kinds


def kinds() -> dict[str, KindSpec]:
    """Every kind: the built-ins, then entry points. Imports no backend module.

    A built-in name wins over an entry point of the same name; the entry point is still listed,
    marked shadowed, so its author can see why it is not used.
    """
    found = {name: KindSpec(name, target, "built-in") for name, target in BUILTIN_KINDS.items()}
    for entry in _entry_points():
        dist = getattr(getattr(entry, "dist", None), "name", None) or "unknown distribution"
        spec = KindSpec(
            entry.name,
            entry.value,
            f"entry point ({dist})",
            shadowed_by_builtin=entry.name in BUILTIN_KINDS,
        )
        if spec.shadowed_by_builtin:
            found[f"{entry.name} ({dist})"] = spec
        else:
            found.setdefault(entry.name, spec)
    return found


def _entry_points() -> list[Any]:
    from importlib.metadata import entry_points

    return list(entry_points(group=ENTRY_POINT_GROUP))


def kind_status(kind: KindSpec) -> str | None:
    """Why this kind cannot load, found without importing it (None when its module is present).

    Looks the module up on disk (top-level spec, then each sub-package's search path) instead of
    calling importlib.util.find_spec on the dotted name, which would import the parent packages.
    """
    import importlib.util
    from importlib.machinery import PathFinder

    if kind.shadowed_by_builtin:
        return f"not used: the built-in kind {kind.name!r} has this name"
    module, _, attribute = kind.target.partition(":")
    if not module or not attribute:
        return f"bad entry point {kind.target!r}: expected 'module:Class'"
    parts = module.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])
        for depth in range(1, len(parts)):
            if spec is None or not spec.submodule_search_locations:
                break
            spec = PathFinder.find_spec(
                ".".join(parts[: depth + 1]), list(spec.submodule_search_locations)
            )
    except (ImportError, ValueError) as error:
        return f"cannot locate module {module!r}: {error}"
    if spec is None:
        return f"module {module!r} is not installed"
    return None


def load_kind(name: str) -> type[Backend]:
    """Import one kind's class. Raises ConfigError for an unknown kind, PluginLoadError when the
    plugin's module fails to import or holds no Backend class."""
    import importlib

    from qa_console.backends.base import Backend

    target = BUILTIN_KINDS.get(name)
    if target is None:
        spec = kinds().get(name)
        if spec is None or spec.shadowed_by_builtin:
            raise ConfigError(
                f"unknown backend kind {name!r}", hint=f"known kinds: {', '.join(sorted(kinds()))}"
            )
        target = spec.target
    module_name, _, attribute = target.partition(":")
    try:
        value: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            value = getattr(value, part)
    except Exception as error:  # a plugin may fail in any way while importing; report, not crash
        raise PluginLoadError(
            f"backend kind {name!r} ({target}) failed to load: {type(error).__name__}: {error}",
            hint=_load_hint(name, module_name, error),
        ) from error
    if not (isinstance(value, type) and issubclass(value, Backend)):
        raise PluginLoadError(
            f"backend kind {name!r} ({target}) is not a qa_console Backend class",
            hint="a plugin's entry point must name a subclass of qa_console.backends.base.Backend",
        )
    return value


def _load_hint(name: str, module: str, error: Exception) -> str:
    missing = getattr(error, "name", None) if isinstance(error, ModuleNotFoundError) else None
    if name in BUILTIN_KINDS:
        if missing == module:
            return "this qa-console install lacks that backend module: update or reinstall it"
        if name == "local" and missing is not None:
            return "the local backend needs the model extra: pip install 'qa-console[model]'"
        return "this qa-console install is incomplete or broken: reinstall it"
    return "fix or uninstall the plugin that provides this kind; other backends still work"


# ------------------------------------------------------------------------------- instances


def first_instance(instances: Mapping[str, InstanceSpec]) -> str:
    """The first declared instance's name. Raises ConfigError when none is declared."""
    if not instances:
        raise ConfigError(
            "no backend instances are declared",
            hint=f"add a [backends.NAME] table to {PLUGINS_FILE} or name one with --backend",
        )
    return next(iter(instances))


def pick(instances: Mapping[str, InstanceSpec], name: str) -> InstanceSpec:
    """`name` from instances already read, so a command reads the plugins files once."""
    if name not in instances:
        raise ConfigError(
            f"no backend instance named {name!r}",
            hint=f"known instances: {', '.join(instances) or 'none'} (qa-console backends list)",
        )
    return instances[name]


def kind_problem(spec: InstanceSpec, known: Mapping[str, KindSpec] | None = None) -> str | None:
    """Why this instance's kind is unusable, without importing anything (None when it is known)."""
    if spec.kind in BUILTIN_KINDS:
        return None
    known = kinds() if known is None else known
    kind = known.get(spec.kind)
    if kind is None or kind.shadowed_by_builtin:
        return f"unknown kind {spec.kind!r}"
    return None


def build(spec: InstanceSpec, defaults: Mapping[str, Any] | None = None) -> Backend:
    """Import the instance's kind and construct it. An unknown kind or a bad option is a
    ConfigError naming the plugins file and line; a kind that fails to import, PluginLoadError.

    defaults: the effective settings (e.g. target, region). An option the kind declares under
    the same name and the instance leaves unset takes its value from there, so `--target` and
    `--region` reach a backend without backends reading the settings themselves.
    """
    problem = kind_problem(spec)
    if problem is not None:
        raise ConfigError(
            f"{spec.where}: backend {spec.name!r} has {problem}",
            hint=f"known kinds: {', '.join(sorted(kinds()))} (plugins add kinds via the "
            f"{ENTRY_POINT_GROUP!r} entry-point group)",
        )
    cls = load_kind(spec.kind)
    options = dict(spec.options)
    for option in cls.options:
        value = (defaults or {}).get(option.name)
        if option.name not in options and value is not None:
            options[option.name] = value
    try:
        return cls(spec.name, **options)
    except ConfigError as error:
        raise ConfigError(
            f"{spec.where}: backend {spec.name!r}: {error.message}", hint=error.hint
        ) from None
