"""Where packaged data lives: an installed wheel carries schemas/, fixtures/ and docs/ inside the
package as conformance/_schemas, conformance/_fixtures and conformance/_docs (see pyproject); an
editable install or a source checkout uses the top-level folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's loader where PyYAML was built with it: the same documents, 4x faster (every command
reads the profile at start-up)."""

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent


class DataMissing(RuntimeError):
    """The install lacks chatconf's data files (a packaging bug, not a user error)."""


def _data_dir(installed: str, folder: str) -> Path:
    for path in (_PACKAGE / installed, _CHECKOUT / folder):
        if path.is_dir():
            return path
    raise DataMissing(f"chatconf's {folder}/ data is not installed (no {_PACKAGE / installed}); reinstall")


def schemas_dir() -> Path:
    return _data_dir("_schemas", "schemas")


def fixtures_dir() -> Path:
    return _data_dir("_fixtures", "fixtures")


def docs_dir() -> Path:
    return _data_dir("_docs", "docs")


def profiles_dir() -> Path:
    return schemas_dir() / "profiles"


def read_yaml_mapping(path: Path, what: str, error: type[Exception]) -> dict[str, Any]:
    """A YAML file that must hold a mapping (profiles, latency presets); anything else raises `error`
    with a one-line message naming `what`."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
    except (OSError, yaml.YAMLError) as exc:
        raise error(f"cannot read {what}: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise error(f"{what} is not a YAML mapping")
    return data
