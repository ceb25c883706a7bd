"""conformance/resources.py: packaged profiles are read from parsed twins that must stay fresh, and a
stale or foreign twin is never trusted over the YAML beside it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from conformance.jsonutil import dumps, loads
from conformance.profiles import ProfileError, load_profile
from conformance.resources import profiles_dir, read_yaml_mapping, source_stamp, twin_path, write_twin


@pytest.mark.parametrize("path", sorted(profiles_dir().glob("*.yaml")), ids=lambda p: p.name)
def test_every_packaged_profile_has_a_fresh_twin(path: Path) -> None:
    twin = twin_path(path)
    assert twin.exists(), f"no {twin.name}: run python scripts/write_profile_twins.py"
    stored = loads(twin.read_bytes())
    assert stored["source"] == source_stamp(path.read_bytes()), (
        f"{twin.name} is stale: run python scripts/write_profile_twins.py")
    assert stored["data"] == yaml.safe_load(path.read_text(encoding="utf-8"))


def _twin(path: Path, data: dict, source: bytes) -> None:
    twin_path(path).write_text(dumps({"source": source_stamp(source), "data": data}))


def test_a_twin_made_from_these_bytes_is_used_and_any_other_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: from-yaml\n")
    _twin(path, {"name": "from-twin"}, path.read_bytes())
    assert read_yaml_mapping(path, "p", ValueError, twin=True) == {"name": "from-twin"}
    assert read_yaml_mapping(path, "p", ValueError) == {"name": "from-yaml"}  # only where asked for
    path.write_text("name: edited\n")  # the YAML changed after the twin was written
    assert read_yaml_mapping(path, "p", ValueError, twin=True) == {"name": "edited"}
    twin_path(path).write_text("{not json")
    assert read_yaml_mapping(path, "p", ValueError, twin=True) == {"name": "edited"}


def test_a_user_profile_beside_a_twin_is_read_from_its_yaml(tmp_path: Path) -> None:
    """Twins are chatconf's own: a file a user points --profile at is always parsed."""
    path = tmp_path / "mine.yaml"
    shutil.copy(profiles_dir() / "qwen-reference.yaml", path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    _twin(path, {**data, "title": "smuggled"}, path.read_bytes())
    assert load_profile(str(path)).title != "smuggled"


def test_write_twin_refuses_what_json_cannot_hold(tmp_path: Path) -> None:
    path = tmp_path / "dated.yaml"
    path.write_text("released: 2026-12-03\n")
    with pytest.raises(ValueError, match="JSON"):
        write_twin(path)
    path.write_text("name: x\nn: 3\n")
    assert read_yaml_mapping(path, "p", ValueError, twin=True) == {"name": "x", "n": 3}
    write_twin(path)
    assert read_yaml_mapping(path, "p", ValueError, twin=True) == {"name": "x", "n": 3}


def test_yaml_that_is_not_utf8_is_a_one_line_error(tmp_path: Path) -> None:
    """It used to escape the loader as a UnicodeDecodeError (an internal error, exit 3)."""
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ProfileError, match="cannot read profile"):
        load_profile(str(bad))
