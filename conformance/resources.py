"""Where packaged data lives: schemas/ and fixtures/ ship inside the package as
`conformance._schemas` and `conformance._fixtures` (see pyproject); in a source checkout they are
the top-level folders."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


def _data_dir(package: str, folder: str) -> Path:
    try:
        path = Path(str(resources.files(package)))
        if path.is_dir():
            return path
    except (ModuleNotFoundError, TypeError):
        pass
    return _CHECKOUT / folder


def schemas_dir() -> Path:
    return _data_dir("conformance._schemas", "schemas")


def fixtures_dir() -> Path:
    return _data_dir("conformance._fixtures", "fixtures")


def profiles_dir() -> Path:
    return schemas_dir() / "profiles"
