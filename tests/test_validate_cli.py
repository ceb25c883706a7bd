"""`chatconf validate` end to end on the shipped fixtures and on hostile input (DESIGN.md contract).

Every fixtures/good file is valid, every fixtures/bad/<rule-id>[--variant].<ext> file reports that
rule id and no other, every fixtures/unreadable entry is unreadable with exit 2; `--json` prints
exactly one object of the fixed shape; secrets in captures are never echoed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance.cli import main
from conformance.resources import fixtures_dir
from conformance.rules import REGISTRY

FIXTURES = fixtures_dir()
BAD = sorted(p for p in (FIXTURES / "bad").iterdir() if not p.name.startswith("."))
UNREADABLE = sorted(p for p in (FIXTURES / "unreadable").iterdir() if not p.name.startswith("."))
CHATCONF = Path(sys.executable).with_name("chatconf")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["validate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = run(capsys, "--json", *argv)
    assert out.count("\n") == 1, "exactly one JSON object on one line"
    return code, json.loads(out)


def rule_of(path: Path) -> str:
    """fixtures/bad/<rule-id>[--variant].<ext> -> rule-id."""
    return path.name.split("--", 1)[0] if "--" in path.name else path.name.rsplit(".", 1)[0]


@pytest.fixture(scope="module")
def bad_results() -> dict[str, dict[str, Any]]:
    """One real CLI run over fixtures/bad (module-scoped: parametrized asserts read from it)."""
    proc = subprocess.run([str(CHATCONF), "validate", "--json", str(FIXTURES / "bad")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == ""
    return {Path(f["path"]).name: f for f in json.loads(proc.stdout)["files"]}


# Good *server* traffic whose captured request is itself invalid (the server rightly refused it):
# validate judges every captured request, so these files are invalid, and only by the client's fault.
REFUSED_INVALID_REQUESTS = {"f08-error-stream-request-sse-body.jsonl": "request.role-allowed"}
# A refused request that breaks only a production (should) rule: valid, with the client's warning.
REFUSED_SHOULD_REQUESTS = {"f07-error-thinking-non-stream.jsonl": "request.thinking-non-stream"}


def test_every_good_fixture_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run_json(capsys, str(FIXTURES / "good"))
    files = {Path(f["path"]).name: f for f in doc["files"]}
    problems = {name: f["violations"] or f.get("error") for name, f in files.items()
                if f["status"] != "valid" and name not in REFUSED_INVALID_REQUESTS}
    assert problems == {}
    assert code == 1 and len(doc["files"]) >= 10
    assert any(f["path"].endswith(".har") for f in doc["files"])
    for name, rule in REFUSED_SHOULD_REQUESTS.items():
        assert [(w["rule"], w["blame"]) for w in files[name]["warnings"]] == [(rule, "client")]
    for name, rule in REFUSED_INVALID_REQUESTS.items():
        f = files[name]
        assert f["status"] == "invalid"
        assert [(v["rule"], v["blame"]) for v in f["violations"]] == [(rule, "client")]
        assert f["violations"][0]["message"].startswith(
            "client sent an invalid request (the server rightly refused it: HTTP 400): expected ")


@pytest.mark.parametrize("path", BAD, ids=[p.name for p in BAD])
def test_bad_fixture_reports_exactly_its_rule(bad_results: dict[str, dict[str, Any]], path: Path) -> None:
    result = bad_results[path.name]
    rule = rule_of(path)
    assert rule in REGISTRY, f"fixture named after an unknown rule id {rule!r}"
    found = {v["rule"] for v in result["violations"]} | {w["rule"] for w in result.get("warnings", [])}
    assert found == {rule}, result
    if REGISTRY[rule].severity == "must":
        assert result["status"] == "invalid"
    else:  # should-level advice is a warning: it never makes a file invalid
        assert result["status"] == "valid" and {w["rule"] for w in result["warnings"]} == {rule}


@pytest.mark.parametrize("path", UNREADABLE, ids=[p.name for p in UNREADABLE])
def test_unreadable_fixture_exits_2_with_one_line(capsys: pytest.CaptureFixture[str], path: Path) -> None:
    code, out, err = run(capsys, str(path))
    assert code == 2 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith(f"{path}: UNREADABLE: ") and len(lines[0]) < 200
    assert "Traceback" not in out
    code, doc = run_json(capsys, str(path))
    (entry,) = doc["files"]
    assert code == 2 and entry["status"] == "unreadable" and entry["violations"] == []
    assert entry["error"] and "\n" not in entry["error"]


def test_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run_json(capsys, str(FIXTURES / "bad" / "stream.done-last.jsonl"),
                         str(FIXTURES / "good" / "har"), str(FIXTURES / "unreadable" / "empty.json"))
    assert code == 2 and set(doc) == {"files"}
    statuses = [f["status"] for f in doc["files"]]
    assert statuses[0] == "invalid" and statuses[-1] == "unreadable" and "valid" in statuses
    for f in doc["files"]:
        assert {"path", "status", "violations"} <= set(f)
        for v in f["violations"]:
            assert set(v) == {"rule", "entry", "event", "pointer", "message", "blame"}
            assert v["blame"] == ("client" if v["rule"].startswith("request.") else "server")
            assert isinstance(v["entry"], int) and (v["event"] is None or isinstance(v["event"], int))
    assert doc["files"][0]["violations"][0]["rule"] == "stream.done-last"


def test_text_report_is_greppable(capsys: pytest.CaptureFixture[str]) -> None:
    bad = FIXTURES / "bad" / "request.temperature-range.jsonl"
    code, out, _ = run(capsys, str(bad), str(FIXTURES / "good" / "har"))
    lines = out.splitlines()
    assert code == 1
    assert f"{bad}:0:-: request.temperature-range: " in lines[0] and "[at /temperature]" in lines[0]
    assert lines[1] == f"{bad}: INVALID (1 violation, 1 exchange)"
    assert any(line.endswith("devtools-session.har: VALID (2 exchanges)") for line in lines)
    assert any(": note: entry 1 skipped: GET" in line for line in lines)
    assert lines[-1] == "3 files: 2 valid, 1 invalid (1 violation), 0 unreadable"


def test_strict_reports_unknown_fields_as_warnings_only(capsys: pytest.CaptureFixture[str],
                                                        tmp_path: Path) -> None:
    doc = json.loads((FIXTURES / "good" / "f01-nonstream-text.json").read_text())
    doc["x_vendor_extension"] = {"a": 1}
    path = tmp_path / "extra.json"
    path.write_text(json.dumps(doc))
    code, plain = run_json(capsys, str(path))
    assert code == 0 and "warnings" not in plain["files"][0]
    code, strict = run_json(capsys, "--strict", str(path))
    (f,) = strict["files"]
    assert code == 0 and f["status"] == "valid" and f["violations"] == []
    assert [w["rule"] for w in f["warnings"]] == ["schema.unknown-field"]
    assert "x_vendor_extension" in f["warnings"][0]["message"]


def test_lone_chunk_document_is_schema_checked_only(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    chunk = {"choices": [{"delta": {"content": "hi"}, "finish_reason": None, "index": 0}],
             "object": "chat.completion.chunk", "created": 1, "model": "qwen-plus", "id": "chatcmpl-1"}
    good, bad = tmp_path / "chunk.json", tmp_path / "bad-chunk.json"
    good.write_text(json.dumps(chunk))
    bad.write_text(json.dumps({**chunk, "created": "yesterday"}))
    code, doc = run_json(capsys, str(good), str(bad))
    assert code == 1 and [f["status"] for f in doc["files"]] == ["valid", "invalid"]
    assert {v["rule"] for v in doc["files"][1]["violations"]} == {"schema.chunk"}


def test_secrets_in_captures_are_never_echoed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A key in headers, in the URL and in values that violation messages quote."""
    key = "sk-live0a1b2c3d4e5f6a7b8c9d"
    request = {"model": "qwen-plus", "messages": [{"role": key, "content": f"my key is {key}"}]}
    har = {"log": {"version": "1.2", "entries": [{
        "request": {"method": "POST", "url": f"https://x/compatible-mode/v1/chat/completions?api_key={key}",
                    "headers": [{"name": "Authorization", "value": f"Bearer {key}"}],
                    "postData": {"mimeType": "application/json", "text": json.dumps(request)}},
        "response": {"status": 200, "headers": [{"name": "Content-Type", "value": "text/event-stream"}],
                     "content": {"mimeType": "text/event-stream", "text": (
                         'data: {"choices":[{"delta":{"role":"assistant","content":""},"index":0}],'
                         f'"object":"chat.completion.chunk","created":1,"model":"{key}","id":"chatcmpl-{key}"}}'
                         "\n\ndata: [DONE]\n\n")}},
        "timings": {"wait": 1, "receive": 1}}]}}
    path = tmp_path / f"capture-{key[:5]}.har"
    path.write_text(json.dumps(har))
    code, out, err = run(capsys, str(path))
    assert code == 1 and "request.role-allowed" in out
    code2, out2, err2 = run(capsys, "--json", "--strict", str(path))
    assert code2 == 1
    for text in (out, err, out2, err2):
        assert key not in text and key[3:] not in text
    assert "[REDACTED]" in out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "--profile", "no-such-profile", str(FIXTURES / "good"))
    assert code == 2 and out == "" and err.count("\n") == 1 and "unknown profile" in err
    code, doc = run_json(capsys, str(tmp_path / "missing.har"))
    assert code == 2 and doc["files"][0]["error"] == "no such file or directory"
    empty = tmp_path / "empty"
    (empty / ".hidden").mkdir(parents=True)
    (empty / ".hidden" / "x.sse").write_text("data: [DONE]\n\n")
    code, doc = run_json(capsys, str(empty))
    assert code == 2 and doc["files"][0]["error"] == "no captures in this directory"
    with pytest.raises(SystemExit) as info:
        main(["validate", "--format", "xml", str(empty)])
    assert info.value.code == 2


def test_directory_walk_is_sorted_and_skips_hidden(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = (FIXTURES / "good" / "seed001-curl-stream.sse").read_bytes()
    for name in ("b.sse", "a.sse", "sub/c.sse", ".hidden.sse", ".git/d.sse"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(src)
    code, doc = run_json(capsys, str(tmp_path))
    assert code == 0
    assert [Path(f["path"]).relative_to(tmp_path).as_posix() for f in doc["files"]] == ["a.sse", "b.sse",
                                                                                          "sub/c.sse"]


# Peak RSS from VmHWM (this process's own memory map): ru_maxrss would also count a large parent,
# because Linux carries it across execve.
_HUGE_CHILD = r"""
import json, sys
from conformance.cli import main
codes = [main(["validate", "--json", "--format", fmt, sys.argv[1]]) for fmt in ("sse", "json", "jsonl", "auto")]
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"codes": codes, "rss_mb": hwm / 1024}), file=sys.stderr)
"""


def test_200mb_single_line_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    piece = b"x" * (1 << 20)
    with path.open("wb") as fh:
        fh.write(b'data: {"choices": "')
        for _ in range(200):
            fh.write(piece)
    proc = subprocess.run([sys.executable, "-c", _HUGE_CHILD, str(path)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    stats = json.loads(proc.stderr.strip().splitlines()[-1])
    errors = [json.loads(line)["files"][0]["error"] for line in proc.stdout.splitlines()]
    assert stats["codes"] == [2, 2, 2, 2]
    assert errors[0].startswith("SSE line longer than") and errors[3] == errors[0]
    assert errors[1].startswith("JSON document too large")
    assert errors[2].startswith("line 1 longer than")
    assert stats["rss_mb"] < 150, stats


def test_real_console_script_on_a_mixed_directory(tmp_path: Path) -> None:
    proc = subprocess.run([str(CHATCONF), "validate", str(FIXTURES / "good" / "har"),
                           str(FIXTURES / "unreadable" / "binary.sse")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr == ""
    assert proc.stdout.splitlines()[-1] == "3 files: 2 valid, 0 invalid (0 violations), 1 unreadable"


# -- documented members of the error envelope and null-only fields -------------------------------

ENVELOPE = {"message": "Incorrect API key provided. ", "type": "invalid_request_error", "param": None,
            "code": "invalid_api_key"}


def _envelope_without(*names: str, **values: Any) -> dict[str, Any]:
    err = {k: v for k, v in {**ENVELOPE, **values}.items() if k not in names}
    return {"error": err}


@pytest.mark.parametrize(("missing", "values", "status", "warned"), [
    ((), {}, "valid", []),
    ((), {"code": None}, "valid", []),                     # real servers send code: null
    (("param",), {}, "valid", ["param"]),                   # real DashScope omits param (C4)
    (("type", "param"), {}, "valid", ["type", "param"]),
    (("code",), {}, "invalid", []),                         # seed 001: "includes code and message fields"
    (("message",), {}, "invalid", []),
], ids=["complete", "code-null", "no-param", "no-type-no-param", "no-code", "no-message"])
def test_error_envelope_members(capsys: pytest.CaptureFixture[str], tmp_path: Path, missing: tuple[str, ...],
                                values: dict[str, Any], status: str, warned: list[str]) -> None:
    path = tmp_path / "error.json"
    path.write_text(json.dumps(_envelope_without(*missing, **values)))
    code, doc = run_json(capsys, str(path))
    (f,) = doc["files"]
    assert f["status"] == status and code == (1 if status == "invalid" else 0), f
    if status == "invalid":
        assert [(v["rule"], v["pointer"], v["blame"]) for v in f["violations"]] == [("schema.error", "/error",
                                                                                   "server")]
        assert repr(missing[0]) in f["violations"][0]["message"]
    assert [w["message"].split("`")[1] for w in f.get("warnings", [])] == warned
    assert all(w["rule"] == "schema.error" for w in f.get("warnings", []))


def test_null_only_fields(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """system_fingerprint is documented as null-only ("returns null"): an object is invalid in a
    completion and in a chunk. logprobs and function_call objects are what OpenAI sends: allowed."""
    completion = json.loads((FIXTURES / "good" / "f01-nonstream-text.json").read_text())
    fingerprint = tmp_path / "fingerprint.json"
    fingerprint.write_text(json.dumps({**completion, "system_fingerprint": {}}))
    chunk = tmp_path / "chunk.sse"
    chunk.write_text("data: " + json.dumps({
        "choices": [{"delta": {"content": "hi", "role": "assistant"}, "finish_reason": "stop", "index": 0}],
        "object": "chat.completion.chunk", "created": 1770285809, "model": "qwen-plus", "id": "chatcmpl-1",
        "system_fingerprint": {"v": 1}}) + "\n\ndata: [DONE]\n\n")
    choice = completion["choices"][0]
    objects = tmp_path / "objects.json"
    objects.write_text(json.dumps({**completion, "choices": [
        {**choice, "logprobs": {"content": []},
         "message": {**choice["message"], "function_call": {"name": "f", "arguments": "{}"}}}]}))
    code, doc = run_json(capsys, str(fingerprint), str(chunk), str(objects))
    assert code == 1
    assert [f["status"] for f in doc["files"]] == ["invalid", "invalid", "valid"]
    assert [(v["rule"], v["pointer"]) for v in doc["files"][0]["violations"]] == [
        ("schema.completion", "/system_fingerprint")]
    assert [(v["rule"], v["event"], v["pointer"]) for v in doc["files"][1]["violations"]] == [
        ("schema.chunk", 0, "/system_fingerprint")]


# -- files that are not chat traffic are skipped, never misread ----------------------------------

LOAD_SAMPLE = {"region": "singapore", "kind": "stream", "t": 1.5, "worker": 0, "ok": True, "status": 200,
               "error": None, "error_code": None, "ttft_ms": 180.2, "e2e_ms": 900.1, "itl_ms": [12.5],
               "completion_tokens": 12, "violations": 0, "violation_samples": [], "request_id": "x"}


def _report_dirs(root: Path) -> tuple[Path, Path]:
    """A `chatconf run --report-dir` and a `chatconf load --report-dir` as the tools write them."""
    from conformance.reports import write_run_reports
    from conformance.reports.junit import write_junit
    from conformance.results import CheckResult, RunSummary

    run_dir, load_dir = root / "run", root / "load"
    summary = RunSummary(target={"base_url": "http://127.0.0.1:1/v1", "model": "qwen-plus"},
                         checks=[CheckResult("stream.done-last", "[DONE] ends the stream", status="failed",
                                             message="no [DONE]", evidence={"error": {"message": "x"}}),
                                 CheckResult("request.temperature-range", "temperature bounds")])
    write_run_reports(summary, run_dir)
    write_junit(summary, run_dir / "junit.xml")
    (run_dir / "recording.jsonl").write_bytes((FIXTURES / "good" / "f03-stream-usage.jsonl").read_bytes())
    load_dir.mkdir()
    (load_dir / "summary.json").write_text(json.dumps({
        "tool": "chatconf", "version": "0.1.0", "target": {}, "duration_s": 10.0, "users": 2,
        "regions": {"singapore": {"requests": 2}}, "generator": {}}, indent=1))
    (load_dir / "samples.jsonl").write_text("".join(json.dumps(LOAD_SAMPLE) + "\n" for _ in range(3)))
    (load_dir / "report.html").write_text("\n<!DOCTYPE html>\n<html lang=en><body>load</body></html>\n")
    (load_dir / "locust.log").write_text("[2026-03-02 10:00:00,000] host/INFO/locust.main: Starting Locust\n")
    return run_dir, load_dir


def test_report_directories_skip_chatconf_own_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run_dir, load_dir = _report_dirs(tmp_path)
    code, out, _ = run(capsys, str(tmp_path))
    assert code == 0, out
    lines = out.splitlines()
    assert f"{load_dir / 'locust.log'}: SKIPPED (not a capture: log file (no SSE events or JSON objects))" in lines
    assert f"{load_dir / 'report.html'}: SKIPPED (not a capture: HTML document)" in lines
    assert f"{load_dir / 'samples.jsonl'}: SKIPPED (not a capture: chatconf load samples)" in lines
    assert f"{load_dir / 'summary.json'}: SKIPPED (not a capture: chatconf load summary)" in lines
    assert f"{run_dir / 'junit.xml'}: SKIPPED (not a capture: JUnit XML report)" in lines
    assert f"{run_dir / 'recording.jsonl'}: VALID (1 exchange)" in lines
    assert f"{run_dir / 'report.html'}: SKIPPED (not a capture: HTML document)" in lines
    assert f"{run_dir / 'summary.json'}: SKIPPED (not a capture: chatconf run summary)" in lines
    assert lines[-1] == "8 files: 1 valid, 0 invalid (0 violations), 0 unreadable, 7 skipped"
    code, doc = run_json(capsys, str(run_dir))
    assert code == 0
    by_name = {Path(f["path"]).name: f for f in doc["files"]}
    assert {n: f["status"] for n, f in by_name.items()} == {"junit.xml": "skipped", "recording.jsonl": "valid",
                                                           "report.html": "skipped", "summary.json": "skipped"}
    assert by_name["summary.json"] == {"path": str(run_dir / "summary.json"), "status": "skipped",
                                       "violations": [], "exchanges": 0,
                                       "notes": ["not a capture: chatconf run summary"]}


def test_skipped_files_leave_the_exit_code_alone(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run_dir, _ = _report_dirs(tmp_path)
    summary = str(run_dir / "summary.json")
    assert run(capsys, summary)[0] == 0  # named explicitly: skipped all the same
    bad = str(FIXTURES / "bad" / "stream.done-last.jsonl")
    assert run(capsys, summary, bad)[0] == 1
    code, out, _ = run(capsys, summary, str(FIXTURES / "unreadable" / "truncated.json"))
    assert code == 2 and out.splitlines()[-1] == "2 files: 0 valid, 0 invalid (0 violations), 1 unreadable, 1 skipped"


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("models.json", {"object": "list", "data": [{"id": "qwen-plus", "object": "model"}]}, "unrecognised JSON"),
    ("config.json", {"editor.fontSize": 12}, "unrecognised JSON"),
    ("list.json", [{"a": 1}, {"b": 2}], "unrecognised JSON"),
    ("page.txt", "  <html><head></head></html>", "HTML document"),
    ("page.htm", '{"model": "qwen-plus", "messages": []}', "HTML document"),
    ("feed.xml", '<?xml version="1.0"?><rss></rss>', "XML document"),
], ids=["models-listing", "config", "list-of-objects", "html-content", "htm-extension", "xml"])
def test_documents_of_no_capture_shape_are_skipped(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                   name: str, content: Any, reason: str) -> None:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    code, doc = run_json(capsys, str(path))
    (f,) = doc["files"]
    assert code == 0 and f["status"] == "skipped" and f["violations"] == [], f
    assert f["notes"][0].startswith(f"not a capture: {reason}")


@pytest.mark.parametrize(("name", "content"), [
    ("completion.json", {"id": "chatcmpl-1", "model": "qwen-plus", "created": 1}),   # lost its choices
    ("error.json", {"error": "boom"}),                                               # envelope without object
    ("request.json", {"model": "qwen-plus", "stream": True}),                        # lost its messages
])
def test_broken_captures_are_still_checked_not_skipped(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                       name: str, content: Any) -> None:
    path = tmp_path / name
    path.write_text(json.dumps(content))
    code, doc = run_json(capsys, str(path))
    assert code == 1 and doc["files"][0]["status"] == "invalid"


def test_untrusted_text_cannot_reach_the_terminal_raw(tmp_path: Path) -> None:
    """Issue 13 item 1: ESC/OSC/BEL/C1 in a file name or a server's text ran on the terminal, and a
    newline in a name forged a verdict line."""
    name = "evil\x1b]0;pwned\x07\nFAKE.sse: VALID (1 exchange)\x9b31m.sse"
    chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk\x1b[2J\x07", "created": 1770285809,
             "model": "qwen-plus\x1b]8;;http://x\x07", "choices": []}
    (tmp_path / name).write_text(f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "validate", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for bad in ("\x1b", "\x07", "\x9b"):
        assert bad not in proc.stdout + proc.stderr
    assert not any(line.startswith("FAKE.sse") for line in proc.stdout.splitlines())
    assert "\\x1b" in proc.stdout and "\\u000a" in proc.stdout.replace("\\x0a", "\\u000a")


# -- issue 13 item 7: totals count every violation, however few are listed ---------------------------

def _chunk(i: int, **over: Any) -> str:
    chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1770285809, "model": "qwen-plus",
             "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}], **over}
    return f"data: {json.dumps(chunk)}\n\n"


def test_totals_count_every_violation_when_listing_is_capped(capsys: pytest.CaptureFixture[str],
                                                             tmp_path: Path) -> None:
    """Before: a stream breaking 3 rules on each of 300 chunks reported "153 violations" (50 listed per
    rule plus one summary line each counted as one); the true count is 897."""
    first = _chunk(0, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
    body = [first] + [_chunk(i, id=f"chatcmpl-x{i}", model=f"m{i}", created=1770285809 + i) for i in range(1, 300)]
    body.append(_chunk(300, choices=[{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}]))
    path = tmp_path / "flood.sse"
    path.write_text("".join(body) + "data: [DONE]\n\n", encoding="utf-8")
    code, out, _ = run(capsys, str(path))
    lines = out.splitlines()
    assert code == 1
    assert lines[-2] == f"{path}: INVALID (897 violations (first 150 listed), 1 exchange)"
    assert lines[-1] == "1 file: 0 valid, 1 invalid (897 violations (first 150 listed)), 0 unreadable"
    assert f"{path}: ... 249 more stream.same-id finding(s) not listed" in lines
    code, doc = run_json(capsys, str(path))
    (f,) = doc["files"]
    assert f["violation_count"] == 897 and len(f["violations"]) == 150
    assert f["unlisted"] == {"stream.same-created": 249, "stream.same-id": 249, "stream.same-model": 249}


def test_schema_errors_beyond_the_per_object_cap_are_counted(capsys: pytest.CaptureFixture[str],
                                                             tmp_path: Path) -> None:
    """Before: the 21st and later schema errors of one object vanished from the total without a trace."""
    choices = [{"index": i, "message": {"role": "robot", "content": "x"}, "finish_reason": "stop"} for i in range(30)]
    completion = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1770285809, "model": "qwen-plus",
                  "choices": choices, "system_fingerprint": None,
                  "usage": {"prompt_tokens": 1, "completion_tokens": 30, "total_tokens": 31}}
    path = tmp_path / "completion.json"
    path.write_text(json.dumps(completion), encoding="utf-8")
    code, doc = run_json(capsys, str(path))
    (f,) = doc["files"]
    schema = [v for v in f["violations"] if v["rule"] == "schema.completion"]
    assert code == 1 and len(schema) == 20 and f["unlisted"] == {"schema.completion": 10}
    assert f["violation_count"] == len(f["violations"]) + 10


def _nul_capture(tmp_path: Path, fmt: str, at: int) -> Path:
    """A long clean capture (past the 64 KiB sniffed block) with one raw NUL inside record `at`."""
    if fmt == "sse":
        role = _chunk(0, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        records = [role] + [_chunk(i) for i in range(1, 600)]
        records.append(_chunk(600, choices=[{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}]))
        records[at] = records[at].replace('"content": "x"', '"content": "x\x00y"')
        text = "".join(records) + "data: [DONE]\n\n"
    else:
        line = json.dumps({"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}]})
        records = [line] * 1200
        records[at] = line.replace('"hi"', '"h\x00i"')
        text = "\n".join(records) + "\n"
    path = tmp_path / f"nul-{at}.{fmt}"
    path.write_text(text, encoding="utf-8")
    assert (len(text.split("\x00")[0]) < 1024) == (at < 3)   # early: inside the first block; late: past it
    return path


@pytest.mark.parametrize(("fmt", "status", "finding"), [("sse", "invalid", "stream.json"),
                                                        ("jsonl", "unreadable", "not JSON")])
def test_a_nul_byte_gets_one_verdict_wherever_it_sits(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                      fmt: str, status: str, finding: str) -> None:
    """Issue 13 item 7: a NUL in the first 64 KiB made a file UNREADABLE ("binary"), one after it INVALID.
    A NUL in a recognised capture is now the reader's to judge: in an SSE data frame it is a frame that
    is not JSON (stream.json), in a JSONL line a line that is not JSON (unreadable), at any offset."""
    verdicts = []
    for at in (1, 1000 if fmt == "jsonl" else 500):
        code, doc = run_json(capsys, str(_nul_capture(tmp_path, fmt, at)))
        (f,) = doc["files"]
        what = [v["rule"] for v in f["violations"]] if f["status"] == "invalid" else re.sub(r"\d+", "N", f["error"])
        verdicts.append((code, f["status"], what))
        assert f["status"] == status and finding in str(what), f
    assert verdicts[0] == verdicts[1]
