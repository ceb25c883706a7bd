"""Profiles and latency presets are YAML mappings; a file that is missing, malformed or holds
something else gets a one-line error of the loader's own type, naming the file."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from conformance.mock.latency import LatencyError, load_latency
from conformance.profiles import ProfileError, load_profile

LOADERS: list[tuple[Callable[[str], object], type[Exception], str]] = [
    (load_latency, LatencyError, "latency profile"),
    (load_profile, ProfileError, "profile"),
]


@pytest.mark.parametrize(("text", "expect"), [
    ("- a list\n- not a mapping\n", "is not a YAML mapping"),
    ("key: [unclosed\n", "cannot read"),
])
@pytest.mark.parametrize(("loader", "error", "what"), LOADERS, ids=["latency", "profile"])
def test_bad_yaml_files_get_one_line_errors(tmp_path: Path, text: str, expect: str,
                                            loader: Callable[[str], object], error: type[Exception],
                                            what: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(error) as caught:
        loader(str(path))
    message = str(caught.value)
    assert expect in message and what in message and str(path) in message and "\n" not in message


def test_missing_files_are_named() -> None:
    with pytest.raises(LatencyError, match=re.escape("cannot read latency profile /nonexistent.yaml")):
        load_latency("/nonexistent.yaml")
    with pytest.raises(ProfileError, match=re.escape("unknown profile '/nonexistent.yaml'")):
        load_profile("/nonexistent.yaml")


def test_good_yaml_files_still_load() -> None:
    assert load_latency("singapore").ttft_ms > 0
    assert load_profile("dashscope").name == "dashscope"
