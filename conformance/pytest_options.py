"""The `pytest11` entry point: chatconf's command-line options, and nothing else.

pytest loads every installed plugin into every session, so this module must be cheap and harmless in
projects that never run the suite: each option is namespaced `--chatconf-...` (a bare `--base-url`
would clash with pytest-base-url, which pytest-playwright and pytest-selenium install), it imports
nothing of chatconf, and it defines no hook that acts. Options left unset take chatconf's environment
and config-file settings (conformance/settings.py) once the suite runs; `chatconf run`, which has
resolved them already, says so with the hidden `--chatconf-settled`. The suite's behaviour lives in
`conformance/suite/conftest.py`, which pytest loads only when it collects `conformance.suite`.
"""

from __future__ import annotations

import argparse

import pytest

FAIL_ON = ("must", "should")  # conformance.results.FAIL_ON, repeated to keep this import-free (a test pins them)

OPTIONS: tuple[tuple[str, dict[str, object]], ...] = (
    ("base-url", {"help": "target base URL ending in /v1, e.g. http://127.0.0.1:8080/v1 (default: the embedded mock)"}),
    ("region", {"help": "documented region instead of a URL: singapore, virginia or beijing"}),
    ("api-key-env", {"help": "environment variable holding the API key (default: the profile's, DASHSCOPE_API_KEY)"}),
    ("model", {"help": "model id (default: the profile's default model)"}),
    ("profile", {"help": "contract profile: dashscope, openai or a YAML path (default: dashscope)"}),
    ("max-requests", {"type": int, "help": "hard request budget; checks beyond it are skipped"}),
    ("examples", {"type": int, "help": "Hypothesis examples per property (default 25 on the mock, 5 live)"}),
    ("report-dir", {"help": "write summary.json, recording.jsonl and report.html here"}),
    ("junit", {"help": "write JUnit XML here"}),
    ("timeout", {"type": float, "help": "seconds without data before a response counts as hung"}),
    ("fault", {"dest": "chatconf_faults", "action": "append", "default": [],
               "help": "fault mode for the embedded mock (self-test); repeatable"}),
    ("console", {"action": "store_true", "default": False,
                 "help": "print check-by-check progress (used by `chatconf run`)"}),
    ("settled", {"action": "store_true", "default": False, "help": argparse.SUPPRESS}),
    ("run-timeout", {"type": float,
                     "help": "whole-run deadline in seconds (default 900); checks still to come are skipped"}),
    ("model-caps", {"help": "what a model the profile does not list can do, e.g. 'n,tools,thinking,max-output=8192'"}),
    ("hypothesis-seed", {"type": int, "help": "draw another reproducible set of Hypothesis examples (default: "
                                              "the same set every run)"}),
    ("fail-on", {"choices": FAIL_ON,
                 "help": "fail the session on broken `must` checks only (default) or on `should` ones too"}),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chatconf", "chatconf conformance suite (pytest --pyargs conformance.suite)")
    for name, spec in OPTIONS:
        kwargs = {"dest": "chatconf_" + name.replace("-", "_"), "default": None, **spec}
        group.addoption(f"--chatconf-{name}", **kwargs)  # type: ignore[arg-type]
