"""Every rule proves itself on fixtures: silent on all known-good traffic, and each known-bad file
(fixtures/bad/<rule-id>[--variant].jsonl) triggers exactly its rule, at the event index and JSON
pointer its `notes` ("expect event=N pointer=/p") record. Good traffic is the seed 001 samples and
the real-world DashScope shapes F1-F13 (research/dashscope-realworld.md s2).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conformance.exchange import Exchange
from conformance.jsonutil import loads
from conformance.profiles import load_profile
from conformance.recording import iter_recording
from conformance.resources import fixtures_dir
from conformance.rules import REGISTRY, check_exchange
from conformance.sse import decode_bytes

GOOD = fixtures_dir() / "good"
BAD = fixtures_dir() / "bad"
PROFILE = load_profile("dashscope")

# Rules that default `validate` cannot show on a file: strict-mode warnings, and the model list
# check that only `chatconf run`/the mock ask for. Both are covered in test_rules_request/stream.
NO_FILE = {"schema.unknown-field", "request.model-unknown"}


def load(path: Path) -> list[Exchange]:
    """Local reader (.jsonl recordings, bare .sse transcripts, .json bodies); HAR via captures."""
    if path.suffix == ".jsonl":
        return list(iter_recording(path.read_text(encoding="utf-8").splitlines(), source=str(path)))
    if path.suffix == ".sse":
        return [Exchange(events=decode_bytes(path.read_bytes()), source=str(path))]
    if path.suffix == ".json":
        return [Exchange(body=loads(path.read_bytes()), source=str(path))]
    from conformance.captures import read_path
    return list(read_path(path))


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def _rule_of(path: Path) -> str:
    return path.name.removesuffix(path.suffix).split("--")[0]


def _expectation(ex: Exchange) -> tuple[int | None, str]:
    for note in ex.notes:
        m = re.fullmatch(r"expect event=(\S+) pointer=(\S*)", note)
        if m:
            return (None if m.group(1) == "None" else int(m.group(1))), m.group(2)
    raise AssertionError("bad fixture without an 'expect event=.. pointer=..' note")


@pytest.mark.parametrize("path", _files(GOOD), ids=lambda p: str(p.relative_to(GOOD)))
def test_good_fixture_is_silent(path: Path) -> None:
    found = [v for ex in load(path) for v in check_exchange(ex, PROFILE)]
    assert found == []


@pytest.mark.parametrize("path", _files(GOOD), ids=lambda p: str(p.relative_to(GOOD)))
def test_good_fixture_is_silent_in_strict_mode_except_unknown_fields(path: Path) -> None:
    found = [v for ex in load(path) for v in check_exchange(ex, PROFILE, strict=True)]
    assert {v.rule for v in found} <= {"schema.unknown-field"}
    assert all(v.level == "warning" for v in found)


@pytest.mark.parametrize("path", _files(BAD), ids=lambda p: p.name)
def test_bad_fixture_fires_exactly_its_rule(path: Path) -> None:
    rule_id = _rule_of(path)
    assert rule_id in REGISTRY, f"{path.name} names no registered rule"
    (ex,) = load(path)
    found = list(check_exchange(ex, PROFILE))
    assert {v.rule for v in found} == {rule_id}, [v.as_dict() for v in found]
    event, pointer = _expectation(ex)
    assert (found[0].event, found[0].pointer) == (event, pointer)
    assert found[0].message.startswith("expected ") or found[0].rule.startswith("schema.") \
        or found[0].rule == "request.schema"
    want_level = "warning" if REGISTRY[rule_id].severity == "should" else "error"
    assert {v.level for v in found} == {want_level}


def test_every_rule_has_a_bad_fixture() -> None:
    covered = {_rule_of(p) for p in _files(BAD)}
    assert set(REGISTRY) - covered - NO_FILE == set()


def test_registry_entries_carry_title_severity_and_source() -> None:
    for rule_id, entry in REGISTRY.items():
        assert entry.title and entry.source, rule_id
        assert rule_id.split(".", 1)[0] == entry.kind or entry.kind == "schema", rule_id


def test_one_shot_event_iterator_is_consumed_once() -> None:
    """Large captures hand over a generator; check_exchange must not need a second pass."""
    (ex,) = load(GOOD / "f03-stream-usage.jsonl")
    events = list(ex.events or [])
    ex.events = iter(events)
    assert list(check_exchange(ex, PROFILE)) == []
    ex.events = iter(events[:-1])  # [DONE] missing: still found in one pass
    assert [v.rule for v in check_exchange(ex, PROFILE)] == ["stream.done-last"]
