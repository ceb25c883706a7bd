"""Where packaged data lives: an installed wheel carries schemas/, fixtures/ and docs/ inside the
package as conformance/_schemas, conformance/_fixtures and conformance/_docs (see pyproject); an
editable install or a source checkout uses the top-level folders."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

from .jsonutil import JSONError, dumps, loads

PARSED_SUFFIX = ".parsed.json"
"""A packaged profile's parsed twin: `dashscope.yaml.parsed.json` holds what `dashscope.yaml` parses
to, with the length and CRC-32 of the YAML bytes it came from (zlib is loaded anyway; hashlib would
load OpenSSL, ~8 ms). Importing PyYAML (~17 ms) and parsing a profile (~8
ms) were a sixth of every command's start-up; a twin is read in well under 1 ms. A twin
whose hash does not match the YAML beside it is ignored (the YAML is parsed), and a test fails until
`python scripts/write_profile_twins.py` writes it again."""

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


def read_yaml_mapping(path: Path, what: str, error: type[Exception], *, twin: bool = False) -> dict[str, Any]:
    """A YAML file that must hold a mapping (profiles, latency presets); anything else raises `error`
    with a one-line message naming `what`. `twin`: use a fresh parsed twin when there is one (only for
    chatconf's own files: see PARSED_SUFFIX)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read {what}: {str(exc).splitlines()[0]}") from exc
    if twin:
        parsed = _fresh_twin(path, raw)
        if parsed is not None:
            return parsed
    data = parse_yaml(raw, what, error)
    if not isinstance(data, dict):
        raise error(f"{what} is not a YAML mapping")
    return data


def parse_yaml(raw: bytes, what: str, error: type[Exception]) -> Any:
    """YAML bytes parsed safely, with libyaml's loader where PyYAML was built with it (4x faster)."""
    import yaml  # here: a command that reads only packaged profiles never imports it (PARSED_SUFFIX)

    try:
        return yaml.load(raw.decode("utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise error(f"cannot read {what}: {str(exc).splitlines()[0]}") from exc


def source_stamp(raw: bytes) -> str:
    """What a twin records of the YAML it was made from: enough to notice any edit."""
    return f"{len(raw)}:{zlib.crc32(raw):08x}"


def twin_path(path: Path) -> Path:
    return path.with_name(path.name + PARSED_SUFFIX)


def _fresh_twin(path: Path, raw: bytes) -> dict[str, Any] | None:
    """The twin's mapping if it was made from exactly these bytes, else None (parse the YAML)."""
    try:
        twin = loads(twin_path(path).read_bytes())
    except (OSError, JSONError):
        return None
    if not isinstance(twin, dict) or twin.get("source") != source_stamp(raw):
        return None
    data = twin.get("data")
    return data if isinstance(data, dict) else None


def write_twin(path: Path) -> Path:
    """Parse `path` and write its twin; refuses a document JSON cannot hold exactly (dates, int keys)."""
    raw = path.read_bytes()
    data = parse_yaml(raw, str(path), ValueError)
    if not isinstance(data, dict) or loads(dumps(data)) != data:
        raise ValueError(f"{path}: not a mapping that JSON holds exactly; it cannot have a twin")
    out = twin_path(path)
    out.write_text(dumps({"source": source_stamp(raw), "data": data}, indent=True) + "\n",
                   encoding="utf-8")
    return out
