"""`chatconf validate` judges every captured request, and keeps the client's fault apart from the server's.

A bare request document, a JSONL line or list element that is a request, and a request the server
answered (whether it refused it with a 4xx or accepted it) all go through the request rules. Those
findings carry `blame: "client"` in --json and a message prefix saying how the server took the
request; every other finding is the server's. fixtures/validate/invalid/<rule-id>--<what>.<ext>
each report exactly their rule and are invalid (exit 1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conformance.cli import main
from conformance.exchange import Exchange, HTTPRequest
from conformance.profiles import load_profile
from conformance.resources import fixtures_dir
from conformance.rules import check_exchange

INVALID = sorted((fixtures_dir() / "validate" / "invalid").iterdir())
PROFILE = load_profile("dashscope")
REQUEST = {"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}], "temperature": 2}
ENVELOPE = {"error": {"code": "invalid_parameter_error", "param": None, "type": "invalid_request_error",
                      "message": "<400> InternalError.Algo.InvalidParameter: Temperature should be in [0.0, 2.0)"}}
COMPLETION = json.loads((fixtures_dir() / "good" / "f01-nonstream-text.json").read_text())


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["validate", *argv])
    out, err = capsys.readouterr()
    assert err == ""
    return code, out


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]]]:
    code, out = run(capsys, "--json", *argv)
    return code, json.loads(out)["files"]


def write(tmp_path: Path, name: str, doc: Any) -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


@pytest.mark.parametrize("path", INVALID, ids=[p.name for p in INVALID])
def test_validate_fixture_reports_exactly_its_rule(capsys: pytest.CaptureFixture[str], path: Path) -> None:
    code, (f,) = run_json(capsys, str(path))
    rule = path.name.split("--", 1)[0]
    assert code == 1 and f["status"] == "invalid", f
    assert {v["rule"] for v in f["violations"]} == {rule} and "warnings" not in f, f
    assert {v["blame"] for v in f["violations"]} == {"client" if rule.startswith("request.") else "server"}


def test_bare_invalid_request_json_is_invalid(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, "request.json", REQUEST)
    code, out = run(capsys, str(path))
    assert code == 1
    assert out.splitlines()[0] == (f"{path}:0:-: request.temperature-range: invalid request (no response in the "
                                   "capture): expected temperature in [0, 2), received 2 [at /temperature]")
    assert out.splitlines()[1] == f"{path}: INVALID (1 violation, 1 exchange)"
    code, (f,) = run_json(capsys, str(path))
    assert code == 1 and f["status"] == "invalid"
    assert [(v["rule"], v["blame"], v["pointer"]) for v in f["violations"]] == [
        ("request.temperature-range", "client", "/temperature")]


def test_bare_valid_request_json_is_valid(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, (f,) = run_json(capsys, str(write(tmp_path, "request.json", {**REQUEST, "temperature": 1.5})))
    assert code == 0 and f["status"] == "valid" and f["exchanges"] == 1


def test_request_in_a_list_and_in_a_jsonl_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    listed = write(tmp_path, "list.json", [COMPLETION, REQUEST])
    lines = write(tmp_path, "lines.jsonl", json.dumps({**REQUEST, "temperature": 1}) + "\n\n" + json.dumps(REQUEST)
                  + "\n")
    code, files = run_json(capsys, str(listed), str(lines))
    assert code == 1
    for f in files:
        assert f["status"] == "invalid" and f["exchanges"] == 2
        assert [(v["rule"], v["entry"], v["blame"]) for v in f["violations"]] == [
            ("request.temperature-range", 1, "client")]


def test_jsonl_of_lines_that_are_no_capture_shape_stays_unreadable(capsys: pytest.CaptureFixture[str],
                                                                    tmp_path: Path) -> None:
    path = write(tmp_path, "x.jsonl", '{"model": "qwen-plus"}\n{"model": "qwen-max"}\n')
    code, (f,) = run_json(capsys, str(path))
    assert code == 2 and f["status"] == "unreadable" and f["error"].startswith("not a chatconf recording: line 1")


def har(request: Any, status: int, body: Any) -> dict[str, Any]:
    return {"log": {"version": "1.2", "entries": [{
        "request": {"method": "POST", "url": "https://x/compatible-mode/v1/chat/completions", "headers": [],
                    "postData": {"mimeType": "application/json", "text": json.dumps(request)}},
        "response": {"status": status, "headers": [{"name": "Content-Type", "value": "application/json"}],
                     "content": {"mimeType": "application/json", "text": json.dumps(body)}}}]}}


def test_har_invalid_request_refused_with_400_is_the_clients_fault(capsys: pytest.CaptureFixture[str],
                                                                     tmp_path: Path) -> None:
    path = write(tmp_path, "refused.har", har(REQUEST, 400, ENVELOPE))
    code, out = run(capsys, str(path))
    assert code == 1
    assert (f"{path}:0:-: request.temperature-range: client sent an invalid request (the server rightly refused "
            "it: HTTP 400): expected temperature in [0, 2)") in out.splitlines()[0]
    code, (f,) = run_json(capsys, str(path))
    assert code == 1 and f["status"] == "invalid"
    (v,) = f["violations"]
    assert v["rule"] == "request.temperature-range" and v["blame"] == "client"
    assert v["message"].startswith("client sent an invalid request (the server rightly refused it: HTTP 400): ")
    assert set(v) == {"rule", "entry", "event", "pointer", "message", "blame"}


def test_invalid_request_accepted_with_200_says_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pair = write(tmp_path, "pair.json", {"request": {"body": REQUEST}, "response": {"status": 200, "body": COMPLETION}})
    code, (f,) = run_json(capsys, str(pair))
    assert code == 1
    (v,) = f["violations"]
    assert v["blame"] == "client" and v["message"].startswith(
        "client sent an invalid request and the server accepted it (HTTP 200): expected temperature")


def test_server_findings_next_to_client_findings_keep_their_blame(capsys: pytest.CaptureFixture[str],
                                                                  tmp_path: Path) -> None:
    """The server answered an invalid request with 200 and a broken body: both faults, told apart."""
    broken = {**COMPLETION, "system_fingerprint": {}}
    path = write(tmp_path, "both.har", har(REQUEST, 200, broken))
    code, (f,) = run_json(capsys, str(path))
    assert code == 1
    assert [(v["rule"], v["blame"]) for v in f["violations"]] == [("request.temperature-range", "client"),
                                                                   ("schema.completion", "server")]


def test_valid_request_refused_is_not_the_clients_fault(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, "ok.har", har({**REQUEST, "temperature": 1}, 400, ENVELOPE))
    code, (f,) = run_json(capsys, str(path))
    assert code == 0 and f["status"] == "valid"


def test_model_list_rule_stays_off_for_captures(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """request.model-unknown needs the live model list: a profile never lists every model."""
    path = write(tmp_path, "model.json", {**REQUEST, "model": "qwen-next-preview", "temperature": 1})
    code, (f,) = run_json(capsys, str(path))
    assert code == 0 and f["status"] == "valid"


def test_check_exchange_still_skips_refused_requests_by_default() -> None:
    """`chatconf run` and the mock send invalid requests on purpose: a 4xx is the right answer there."""
    ex = Exchange(request=HTTPRequest(body=REQUEST), status=400, body=ENVELOPE,
                  headers={"content-type": "application/json"})
    assert list(check_exchange(ex, PROFILE)) == []
    ok = Exchange(request=HTTPRequest(body=REQUEST), status=200, body=COMPLETION,
                  headers={"content-type": "application/json"})
    assert [v.rule for v in check_exchange(ok, PROFILE)] == ["request.temperature-range"]
    assert list(check_exchange(ok, PROFILE, request_rules=False)) == []
