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


# -- issue 13 item 7: a profile of the wrong shape is refused on load, not at the first request ------

BAD_PROFILES = [
    ("params:\n  temperature: 5\n", "params.temperature: 5 is not of type"),
    ("params: [1]\n", "params: [1] is not of type"),
    ("params:\n  temperature: {minimum: zero}\n", "params.temperature.minimum: not valid JSON Schema"),
    ("schema_overlay:\n  request: {properties: {temperature: 5}}\n", "schema_overlay.request.properties"),
    ("errors:\n  request.schema: {status: '400', message: x}\n", "errors.request.schema.status: '400'"),
    ("errors:\n  request.schema: {status: 10000000000000000000000000000000, message: x}\n",
     "errors.request.schema.status: 10000000000000000000000000000000 is greater than the maximum"),
    ("models:\n  qwen-plus: {n: maybe}\n", "models.qwen-plus.n: 'maybe' is not of type 'boolean'"),
    ("roles: user\n", "roles: 'user' is not of type"),
    ("rules:\n  last_message_roles: 3\n", "rules.last_message_roles: 3 is not of type"),
]


@pytest.mark.parametrize(("body", "expect"), BAD_PROFILES)
def test_a_profile_of_the_wrong_shape_is_one_line_naming_the_place(tmp_path: Path, body: str, expect: str) -> None:
    path = tmp_path / "custom.yaml"
    path.write_text("name: custom\nextends: dashscope\n" + body, encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        load_profile(str(path))
    message = str(caught.value)
    assert message.startswith(f"profile {path}: ") and expect in message and "\n" not in message


@pytest.mark.parametrize("command", [["validate", "{capture}"], ["run"], ["mock", "--port", "0"],
                                     ["load", "--run-time", "1s", "--max-requests", "1"]])
def test_every_command_refuses_a_malformed_profile_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                command: list[str]) -> None:
    """Before: exit 3 (TypeError) from validate and run, and a mock that served 500s. (Were the mock to
    start anyway, it would stop at once instead of serving forever.)"""
    from conformance.cli import main as cli_main
    from conformance.mock import server as mock_server

    monkeypatch.setattr(mock_server, "serve", lambda server, sock: sock.close())
    path = tmp_path / "custom.yaml"
    path.write_text("extends: dashscope\nparams:\n  temperature: 5\n", encoding="utf-8")
    capture = tmp_path / "request.json"
    capture.write_text('{"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}]}', encoding="utf-8")
    argv = [part.format(capture=capture) for part in command]
    assert cli_main([argv[0], "--profile", str(path), *argv[1:]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"chatconf {argv[0]}: error: profile {path}: params.temperature")


def test_the_mock_never_starts_on_a_malformed_profile(tmp_path: Path) -> None:
    from conformance.mock import MockConfig
    from conformance.mock.app import MockApp

    path = tmp_path / "custom.yaml"
    path.write_text("extends: dashscope\nparams: [1]\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="params"):
        MockApp(MockConfig(profile=str(path)))


def test_every_packaged_profile_has_the_right_shape() -> None:
    from conformance.profile_check import profile_problem
    from conformance.profiles import available_profiles

    for name in available_profiles():
        assert profile_problem(dict(load_profile(name).data)) is None, name
