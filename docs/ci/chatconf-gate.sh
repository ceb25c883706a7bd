#!/usr/bin/env bash
# chatconf as a CI gate: the conformance suite on the built-in mock (the harness itself works), then
# against your gateway (conformance, then a short load smoke test), then one HTML page of everything.
# Runs the same in GitHub Actions (docs/ci.md) and in a plain shell.
#
#   GATEWAY_URL=https://gw.example.com/v1 GATEWAY_KEY=sk-... docs/ci/chatconf-gate.sh
#
# Settings not given here come from CHATCONF_* variables or chatconf.toml (see README, "Settings").
# Exit status: the first failing step's (1: a `must` check failed, or the load run missed an objective
# of $LOAD_SLO or failed; 2: bad input).
set -euo pipefail

REPORTS="${REPORTS:-reports}"
LOAD_TIME="${LOAD_TIME:-30s}"
LOAD_USERS="${LOAD_USERS:-4}"
LOAD_SLO="${LOAD_SLO:-ttft_p99<=2s,error_rate<=1%}"

echo "::group::conformance on the built-in mock"
chatconf run --report-dir "$REPORTS/mock" --junit "$REPORTS/junit-mock.xml"
echo "::endgroup::"

if [[ -n "${GATEWAY_URL:-}" ]]; then
  echo "::group::conformance against $GATEWAY_URL"
  chatconf run --base-url "$GATEWAY_URL" --api-key-env GATEWAY_KEY \
    --report-dir "$REPORTS/gateway" --junit "$REPORTS/junit-gateway.xml"
  echo "::endgroup::"

  echo "::group::load smoke test against $GATEWAY_URL"
  chatconf load --base-url "$GATEWAY_URL" --api-key-env GATEWAY_KEY --label gateway \
    --users "$LOAD_USERS" --run-time "$LOAD_TIME" --slo "$LOAD_SLO" --report-dir "$REPORTS/load"
  echo "::endgroup::"
fi

chatconf report "$REPORTS" -o "$REPORTS/index.html"
