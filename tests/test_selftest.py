"""The suite tested by mutation (issue 4): against the mock in every conformance fault mode, the
check that fault targets must notice; against the clean mock, nothing fails.
`python -m conformance.selftest` prints the same as a table with the mutation score."""

from __future__ import annotations

import pytest

from conformance.mock.faults import FAULTS
from conformance.profiles import load_profile
from conformance.selftest import check_for, run_fault, run_suite, shared_mock
from conformance.suite.catalog import by_id


@pytest.fixture(scope="module")
def mock():
    with shared_mock() as server:
        yield server


@pytest.fixture(scope="module")
def clean(mock):
    return run_suite(mock=mock)


def test_clean_mock_fails_no_check(clean):
    assert clean.failing("should") == [], [(c.id, c.message) for c in clean.failing("should")]


def test_every_fault_targets_a_catalog_check():
    catalog = by_id(load_profile("dashscope"))
    missing = [f for f in FAULTS if check_for(f) not in catalog]
    assert missing == []


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_is_detected_by_its_check(fault, mock, clean):
    result = run_fault(fault, mock, clean=clean)
    assert result.detected, f"{fault}: check {result.check} was {result.status}: {result.message}"
