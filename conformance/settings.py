"""Where a flag's value comes from when the command line does not give it.

Order, highest first: the flag, the environment (`CHATCONF_<FLAG>`, e.g. CHATCONF_BASE_URL), the config
file (`chatconf.toml`, or `[tool.chatconf]` in `pyproject.toml`, found from the working directory
upwards, or named by `--config` / CHATCONF_CONFIG), the built-in default. The sources become argparse
defaults of each subcommand before parsing, so a flag always wins and `--help` can say where each
current default came from. A bad value is a usage error naming its source, found before any work.

A config file holds settings for every command at its top level and per command in tables:

    [tool.chatconf]                # or, in chatconf.toml, the same keys at the top level
    profile = "dashscope"
    model = "qwen-plus"
    [tool.chatconf.run]
    report-dir = "reports/run"
    fail-on = "must"
    [tool.chatconf.load]
    users = 20
    run-time = "30s"

Keys are the long flags without their dashes (`base-url` or `base_url`). An API key never belongs in
a file: name its variable with `api-key-env`.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError

ENV_PREFIX = "CHATCONF_"
CONFIG_ENV = "CHATCONF_CONFIG"
# One-shot modes and secrets: never a standing default (a key in a file is a leak waiting to happen).
NOT_SETTINGS = frozenset({"help", "version", "dry_run", "list_faults", "config"})
SECRETS = frozenset({"api_key", "control_token"})
ORDER = ("flag > environment (CHATCONF_<FLAG>) > config file (chatconf.toml, or [tool.chatconf] in "
         "pyproject.toml, searched upwards from the working directory; --config FILE) > built-in default")


@dataclass(frozen=True)
class ConfigFile:
    """The settings a config file holds: for every command, and per command."""

    path: Path
    common: Mapping[str, Any] = field(default_factory=dict)
    commands: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def for_command(self, command: str) -> dict[str, Any]:
        return {**self.common, **self.commands.get(command, {})}


def find_config(start: Path, explicit: str | None) -> ConfigFile | None:
    """The config file in force: the one named, else the nearest chatconf.toml or pyproject.toml
    with a [tool.chatconf] table in `start` or above it."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise UsageError(f"config file {explicit!r} does not exist")
        return _read(path, require_table=path.name == "pyproject.toml")
    for directory in (start, *start.parents):
        own = directory / "chatconf.toml"
        if own.is_file():
            return _read(own, require_table=False)
        project = directory / "pyproject.toml"
        if project.is_file():
            found = _read(project, require_table=True, quiet=True)
            if found is not None:
                return found
    return None


def _read(path: Path, *, require_table: bool, quiet: bool = False) -> ConfigFile | None:
    text = ""
    try:
        text = path.read_text(encoding="utf-8")
        if quiet and "chatconf" not in text:
            return None  # a project's pyproject.toml without our table is not even parsed (start-up)
        import tomllib  # here: most commands start outside any config file

        data = tomllib.loads(text)
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and TOMLDecodeError are ValueErrors
        if quiet and "tool.chatconf" not in text:
            return None  # somebody else's broken pyproject.toml: not ours to judge
        raise UsageError(f"config file {path}: {exc}") from None
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("chatconf")
        if data is None:
            if require_table and not quiet:
                raise UsageError(f"config file {path} has no [tool.chatconf] table")
            return None
    if not isinstance(data, dict):
        raise UsageError(f"config file {path}: [tool.chatconf] must be a table")
    common = {k: v for k, v in data.items() if not isinstance(v, dict)}
    commands = {k: v for k, v in data.items() if isinstance(v, dict)}
    return ConfigFile(path=path, common=common, commands=commands)


@dataclass
class Sources:
    """What each subcommand's defaults were set from, for --help and for errors found late."""

    origin: dict[str, dict[str, str]] = field(default_factory=dict)  # command -> dest -> "CHATCONF_X" / file
    errors: dict[str, str] = field(default_factory=dict)  # command -> first bad environment value


def apply(commands: Mapping[str, argparse.ArgumentParser], environ: Mapping[str, str],
          config: ConfigFile | None) -> Sources:
    """Make environment and config-file values the defaults of each subcommand's parser.

    A config file must be right as a whole (a typo anywhere is found at once); a bad environment value
    only matters to the commands that read it, so it is kept and raised for the command that runs."""
    sources = Sources()
    if config is not None:
        _check_keys(config, commands)
    for name, parser in commands.items():
        settable = _settable(parser)
        defaults: dict[str, Any] = {}
        origin: dict[str, str] = {}
        for key, raw in (config.for_command(name) if config else {}).items():
            dest = key.replace("-", "_")
            if dest not in settable:
                continue  # a top-level key for another command
            defaults[dest] = _convert(settable[dest], raw, f"{config.path}: {key}")  # type: ignore[union-attr]
            origin[dest] = str(config.path)  # type: ignore[union-attr]
        for dest, action in settable.items():
            variable = ENV_PREFIX + dest.upper()
            if variable not in environ:
                continue
            try:
                defaults[dest] = _convert(action, environ[variable], variable, from_env=True)
            except UsageError as exc:
                sources.errors.setdefault(name, str(exc))
                continue
            origin[dest] = variable
        parser.set_defaults(**defaults)
        sources.origin[name] = origin
    return sources


def _settable(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    out = {}
    for action in parser._actions:
        longs = [o for o in action.option_strings if o.startswith("--")]
        if longs and action.dest not in NOT_SETTINGS and action.help != argparse.SUPPRESS:
            out[action.dest] = action
    return out


def _check_keys(config: ConfigFile, commands: Mapping[str, argparse.ArgumentParser]) -> None:
    known = {name: set(_settable(parser)) for name, parser in commands.items()}
    everywhere = set().union(*known.values())
    for table in config.commands:
        if table not in commands:
            raise UsageError(f"config file {config.path}: unknown table [{table}] "
                             f"(commands: {', '.join(sorted(commands))})")
    scopes = [(None, config.common), *config.commands.items()]
    for table, settings in scopes:
        allowed = everywhere if table is None else known[table]
        for key in settings:
            dest = key.replace("-", "_")
            if dest in SECRETS:
                raise UsageError(f"config file {config.path}: {key!r} does not belong in a file "
                                 "(name the variable that holds it with api-key-env)")
            if dest not in allowed:
                where = "any command" if table is None else f"chatconf {table}"
                raise UsageError(f"config file {config.path}: unknown setting {key!r} for {where}")


def _convert(action: argparse.Action, raw: Any, source: str, *, from_env: bool = False) -> Any:
    """One value, typed as its flag would type it; a bad one is a one-line usage error."""
    if isinstance(action, argparse._StoreTrueAction):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if from_env and text in ("1", "true", "yes", "on"):
            return True
        if from_env and text in ("", "0", "false", "no", "off"):
            return False
        raise UsageError(f"{source}: expected true or false, got {raw!r}")
    if isinstance(action, argparse._AppendAction):
        items = [s.strip() for s in raw.split(",") if s.strip()] if isinstance(raw, str) else raw
        if not isinstance(items, list):
            raise UsageError(f"{source}: expected a list, got {raw!r}")
        return [_scalar(action, item, source) for item in items]
    return _scalar(action, raw, source)


def _scalar(action: argparse.Action, raw: Any, source: str) -> Any:
    if isinstance(raw, bool | list | dict):
        raise UsageError(f"{source}: expected a single value, got {raw!r}")
    kind = action.type if callable(action.type) else str
    try:
        value = kind(raw if kind is not str else str(raw))
    except (TypeError, ValueError):
        name = getattr(kind, "__name__", "value")
        raise UsageError(f"{source}: expected {'an' if name == 'int' else 'a'} {name}, got {raw!r}") from None
    if action.choices is not None and value not in action.choices:
        raise UsageError(f"{source}: {value!r} is not one of {', '.join(map(str, action.choices))}")
    return value


def describe(value: Any, dest: str, origin: str) -> str:
    """How --help shows a default that came from the environment or a file (never a secret's value)."""
    if dest in SECRETS:
        return f"[set from {origin}]"
    shown = ",".join(map(str, value)) if isinstance(value, list) else value
    return f"[now {shown} from {origin}]"



def command_defaults(command: str, start: Path, environ: Mapping[str, str]) -> dict[str, Any]:
    """The environment and config-file defaults of one `chatconf` command, for callers that are not
    the command line (the pytest plugin takes those of `run`)."""
    from .cli import build_parser, commands_of

    parsers = commands_of(build_parser())
    config = find_config(start, environ.get(CONFIG_ENV) or None)
    sources = apply({command: parsers[command]}, environ, config)
    if command in sources.errors:
        raise UsageError(sources.errors[command])
    return {dest: parsers[command].get_default(dest) for dest in sources.origin[command]}
