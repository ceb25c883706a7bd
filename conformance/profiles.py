"""Profiles: what varies between providers and doc versions, as YAML (schemas/profiles/*.yaml).

A profile holds parameter ranges (as JSON Schema fragments), allowed roles, rule parameters, model
capabilities, drift points and the documented error table. `extends` inherits from another profile
(mappings merge, everything else replaces), so adding a provider is adding one YAML file.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .resources import profiles_dir, read_yaml_mapping

DEFAULT_PROFILE = "dashscope"


class ProfileError(ValueError):
    """Unknown profile name or unreadable profile file."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    n: bool = False
    tools: bool = True
    thinking: str = "none"          # none | hybrid | always
    thinking_default: bool = False
    thinking_non_stream: bool = True
    stream_only: bool = False
    max_output_tokens: int | None = None
    known: bool = True


@dataclass(frozen=True)
class ErrorSpec:
    """The documented error answer for one broken rule."""

    status: int
    code: str | None
    type: str | None
    message: str
    param: str | None = None

    def render(self, **values: Any) -> str:
        try:
            return self.message.format(**values)
        except (KeyError, IndexError, ValueError):
            return self.message


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    data: dict[str, Any] = field(repr=False)
    _models: dict[str, ModelInfo] = field(default_factory=dict, init=False, repr=False, compare=False)
    """ModelInfo of the listed models, built once: the request rules ask for every request (the proxy:
    ~30 us a request). Names the profile does not list are not kept (a client chooses them)."""

    # -- plain accessors ----------------------------------------------------------------------
    @property
    def regions(self) -> dict[str, str]:
        return dict(self.data.get("regions") or {})

    @property
    def default_model(self) -> str:
        return str(self.data.get("default_model") or "qwen-plus")

    @property
    def api_key_env(self) -> str:
        return str(self.data.get("api_key_env") or "DASHSCOPE_API_KEY")

    @property
    def params(self) -> dict[str, dict[str, Any]]:
        return dict(self.data.get("params") or {})

    @property
    def roles(self) -> list[str]:
        return list(self.data.get("roles") or [])

    @property
    def drift(self) -> dict[str, dict[str, Any]]:
        return dict(self.data.get("drift") or {})

    @property
    def schema_overlay(self) -> dict[str, Any]:
        return dict(self.data.get("schema_overlay") or {})

    def rule(self, key: str, default: Any = None) -> Any:
        return (self.data.get("rules") or {}).get(key, default)

    def model(self, name: str | None) -> ModelInfo:
        info = self._models.get(name) if isinstance(name, str) else None
        if info is not None:
            return info
        models = self.data.get("models") or {}
        if isinstance(name, str) and name in models:
            spec = dict(models[name] or {})
            info = ModelInfo(name=name, **{k: v for k, v in spec.items() if k in ModelInfo.__dataclass_fields__})
            self._models[name] = info
            return info
        return ModelInfo(name=str(name), known=False)

    @property
    def model_names(self) -> list[str]:
        return list((self.data.get("models") or {}).keys())

    def error(self, key: str) -> ErrorSpec | None:
        spec = (self.data.get("errors") or {}).get(key)
        if not spec:
            return None
        return ErrorSpec(status=int(spec["status"]), code=spec.get("code"), type=spec.get("type"),
                         message=str(spec.get("message", "")), param=spec.get("param"))

    @property
    def error_keys(self) -> list[str]:
        return list((self.data.get("errors") or {}).keys())

    def types_for_status(self, status: int) -> list[str] | None:
        """Allowed error `type` values for a status (None: not constrained by this profile)."""
        table = self.data.get("status_types") or {}
        key = str(status) if str(status) in table else (f"{str(status)[0]}xx")
        if key not in table:
            return None
        return list(table[key] or [])

    def param_bound(self, param: str, keyword: str) -> Any:
        return (self.params.get(param) or {}).get(keyword)


CAPABILITY_WORDS = {
    "n": {"n": True}, "no-n": {"n": False},
    "tools": {"tools": True}, "no-tools": {"tools": False},
    "thinking": {"thinking": "hybrid", "thinking_non_stream": True},
    "thinking-stream-only": {"thinking": "hybrid", "thinking_non_stream": False},
    "thinking-always": {"thinking": "always"}, "no-thinking": {"thinking": "none"},
    "stream-only": {"stream_only": True},
}
"""`--model-caps` words: what a model the profile does not list can do (default: tools only)."""


def parse_model_caps(spec: str) -> dict[str, Any]:
    """'n,tools,max-output=8192' -> ModelInfo fields; ProfileError names the word it does not know."""
    out: dict[str, Any] = {"n": False, "tools": True, "thinking": "none"}
    for word in (w.strip() for w in spec.split(",")):
        if not word:
            continue
        if word.startswith("max-output="):
            value = word.partition("=")[2]
            if not value.isdigit() or int(value) < 1:
                raise ProfileError(f"--model-caps: max-output needs a positive integer, got {value!r}")
            out["max_output_tokens"] = int(value)
        elif word in CAPABILITY_WORDS:
            out.update(CAPABILITY_WORDS[word])
        else:
            known = ", ".join([*CAPABILITY_WORDS, "max-output=N"])
            raise ProfileError(f"--model-caps: unknown capability {word!r} (known: {known})")
    return out


def with_model(profile: Profile, name: str, caps: dict[str, Any]) -> Profile:
    """The profile plus one declared model (the target's own, say), without writing a YAML file."""
    data = dict(profile.data)
    data["models"] = {**(data.get("models") or {}), name: dict(caps)}
    return Profile(name=profile.name, title=profile.title, data=data)


ENTRY_TABLES = frozenset({"params", "errors", "models", "drift", "regions", "status_types"})
"""Top-level tables whose entries a child replaces whole (a param's bounds, one error spec)."""


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge recursively; any other value (lists included) replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def merge_profiles(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Child over parent: entry tables merge one level deep (null clears a table), the rest deeply."""
    out = dict(parent)
    for key, value in child.items():
        if key in ENTRY_TABLES and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def available_profiles() -> list[str]:
    return sorted(p.stem for p in profiles_dir().glob("*.yaml"))


def _read(path: Path) -> dict[str, Any]:
    """A packaged profile is read from its parsed twin when that is fresh (resources.PARSED_SUFFIX)."""
    return read_yaml_mapping(path, f"profile {path}", ProfileError, twin=path.parent == profiles_dir())


def _resolve(name_or_path: str, seen: tuple[str, ...]) -> dict[str, Any]:
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") and candidate.exists():
        path = candidate
    else:
        path = profiles_dir() / f"{name_or_path}.yaml"
        if not path.exists():
            raise ProfileError(
                f"unknown profile {name_or_path!r} (available: {', '.join(available_profiles())})")
    if str(path) in seen:
        raise ProfileError(f"profile {name_or_path!r} extends itself")
    data = _read(path)
    parent = data.get("extends")
    if parent:
        data = merge_profiles(_resolve(str(parent), (*seen, str(path))), data)
    return data


@functools.lru_cache(maxsize=32)
def load_profile(name_or_path: str = DEFAULT_PROFILE) -> Profile:
    """Load a packaged profile by name, or a YAML file by path (ProfileError when its shape is wrong)."""
    from .profile_check import profile_problem

    data = _resolve(name_or_path, ())
    problem = profile_problem(data)
    if problem is not None:
        raise ProfileError(f"profile {name_or_path}: {problem}")
    return Profile(name=str(data.get("name") or name_or_path), title=str(data.get("title") or ""), data=data)
