"""Settings come from the flag, then CHATCONF_* variables, then the config file, then the default; a
bad value anywhere is one line and exit 2, before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.cli import main


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CHATCONF_MODEL", "CHATCONF_EXAMPLES", "CHATCONF_CONFIG", "CHATCONF_BASE_URL", "CHATCONF_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "app"\n[tool.chatconf]\nmodel = "qwen-max"\n[tool.chatconf.run]\nexamples = 3\n',
        encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def plan(capsys: pytest.CaptureFixture[str], *flags: str) -> str:
    assert main(["run", "--dry-run", *flags]) == 0
    return capsys.readouterr().out


def test_the_config_file_sets_defaults(project: Path, capsys: pytest.CaptureFixture[str]):
    out = plan(capsys)
    assert "model qwen-max" in out
    assert "3 per property" in out


def test_the_environment_beats_the_file_and_the_flag_beats_both(project: Path, capsys, monkeypatch):
    monkeypatch.setenv("CHATCONF_MODEL", "qwen-turbo")
    monkeypatch.setenv("CHATCONF_EXAMPLES", "4")
    out = plan(capsys)
    assert "model qwen-turbo" in out and "4 per property" in out
    out = plan(capsys, "--model", "qwen-plus", "--examples", "2")
    assert "model qwen-plus" in out and "2 per property" in out


def test_the_nearest_file_is_found_from_a_subdirectory_and_chatconf_toml_wins(project: Path, capsys, monkeypatch):
    sub = project / "src" / "deep"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert "model qwen-max" in plan(capsys)
    (sub / "chatconf.toml").write_text('[run]\nmodel = "qwen-turbo"\n', encoding="utf-8")
    assert "model qwen-turbo" in plan(capsys)


def test_an_explicit_config_file_is_used(project: Path, capsys, tmp_path_factory):
    other = tmp_path_factory.mktemp("elsewhere") / "ci.toml"
    other.write_text('model = "qwen-turbo"\n', encoding="utf-8")
    assert "model qwen-turbo" in plan(capsys, "--config", str(other))
    assert main(["--config", str(other.with_name("missing.toml")), "run", "--dry-run"]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "message"), [
    ('[tool.chatconf]\nbse-url = "x"\n', "unknown setting 'bse-url'"),
    ('[tool.chatconf.run]\nusers = 3\n', "unknown setting 'users' for chatconf run"),
    ('[tool.chatconf.runn]\nmodel = "x"\n', "unknown table [runn]"),
    ('[tool.chatconf.mock]\napi-key = "sk-secret"\n', "does not belong in a file"),
    ('[tool.chatconf.run]\nexamples = "many"\n', "examples: expected an int"),
    ('[tool.chatconf.run]\nfail-on = "never"\n', "'never' is not one of must, should"),
    ('[tool.chatconf\n', "config file"),
])
def test_a_bad_config_file_is_one_line_and_exit_2(project: Path, capsys, text: str, message: str):
    (project / "pyproject.toml").write_text(text, encoding="utf-8")
    assert main(["run", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert "sk-secret" not in err


def test_a_bad_variable_stops_only_the_command_that_reads_it(project: Path, capsys, monkeypatch):
    monkeypatch.setenv("CHATCONF_EXAMPLES", "lots")
    assert main(["run", "--dry-run"]) == 2
    assert "CHATCONF_EXAMPLES: expected an int, got 'lots'" in capsys.readouterr().err
    assert main(["mock", "--list-faults"]) == 0  # mock has no --examples


def test_help_shows_defaults_sources_examples_and_exit_codes(project: Path, capsys, monkeypatch):
    monkeypatch.setenv("CHATCONF_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("CHATCONF_API_KEY", "sk-live-secret")
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "[now http://127.0.0.1:9/v1 from CHATCONF_BASE_URL]" in text
    assert "[now qwen-max from /" in text and "pyproject.toml]" in text
    assert "examples:" in text and "exit codes: 0" in text and "flag > environment" in text
    with pytest.raises(SystemExit):
        main(["mock", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "[set from CHATCONF_API_KEY]" in text and "sk-live-secret" not in text
    assert "(default: 8000)" in text


def test_a_config_file_is_checked_whole_whichever_command_runs(project: Path, capsys):
    """Only the running command's arguments are built when there is no config file (start-up); with
    one, every command's are, so a typo in another command's table is still found at once."""
    (project / "pyproject.toml").write_text('[tool.chatconf.load]\nuserz = 3\n', encoding="utf-8")
    assert main(["validate", str(project / "pyproject.toml")]) == 2
    assert "unknown setting 'userz' for chatconf load" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "name"), [(["validate", "x.sse"], "validate"), (["--config", "run", "load"], "load"),
                                           (["-q", "mock"], "mock")])
def test_the_command_alone_parses_and_helps_as_in_the_whole_parser(argv: list[str], name: str):
    from conformance.cli import build_parser, command_named, commands_of

    assert command_named(argv) == name
    alone, whole = commands_of(build_parser(name))[name], commands_of(build_parser())[name]
    assert alone.format_help() == whole.format_help()
    assert command_named(["--version"]) is None and command_named(["valdate"]) is None
