"""The preflight's pure parts: base-URL hints and the unknown-model test on error bodies."""

from __future__ import annotations

import json

import pytest

from conformance.errors import UsageError
from conformance.preflight import check_keyword, keyword_matches, model_unknown, suggest_base_url


@pytest.mark.parametrize("base, hint", [
    ("https://dashscope-intl.aliyuncs.com", "did you mean https://dashscope-intl.aliyuncs.com/compatible-mode/v1?"),
    ("https://dashscope.aliyuncs.com/api/v1", "did you mean https://dashscope.aliyuncs.com/compatible-mode/v1?"),
    ("http://gw:8080", "did you mean http://gw:8080/v1?"),
    ("http://gw:8080/v1/chat/completions", "pass the base URL without /chat/completions (e.g. http://gw:8080/v1)"),
    ("http://gw:8080/v1", "check --base-url"),
])
def test_base_url_hints(base, hint):
    assert suggest_base_url(base) == hint


@pytest.mark.parametrize("body, strict, expected", [
    ({"error": {"code": "model_not_found", "message": "The model `x` does not exist."}}, False, "model_not_found"),
    ({"object": "error", "message": "The model `x` does not exist.", "type": "NotFoundError", "code": 404},
     False, "404"),
    ({"code": "InvalidParameter", "message": "Model not exist."}, True, "InvalidParameter"),
    ({"error": {"message": "Not Found"}}, False, None),
    ({"error": {"code": "invalid_parameter_error", "message": "This model only supports stream mode"}}, True, None),
])
def test_model_unknown(body, strict, expected):
    assert model_unknown(json.dumps(body), "x", strict=strict) == expected


def test_model_unknown_needs_a_json_envelope():
    assert model_unknown("<html>404 Not Found: model</html>", "x") is None


def test_keyword_expressions_match_like_pytest():
    expr = check_keyword("stream and not usage")
    assert keyword_matches(expr, ["stream.done-last", "rule"])
    assert not keyword_matches(expr, ["stream.usage-last", "rule"])
    assert keyword_matches(check_keyword("PROBE"), ["auth.invalid-key", "probe"])
    with pytest.raises(UsageError, match="invalid -k expression"):
        check_keyword("stream or")
