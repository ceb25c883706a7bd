"""Doc-vs-production drift points: what the target does is reported as `observed`, never failed."""

from __future__ import annotations

import pytest

from .catalog import Check
from .context import SuiteContext
from .scenarios import base
from .test_probes import observed_outcome


@pytest.mark.chatconf_kind("drift")
def test_drift(check: Check, chatconf: SuiteContext) -> None:
    ctx = chatconf
    if check.id == "drift.top_p-one":
        ex = ctx.client.chat(base(ctx, top_p=1.0))
        observed_outcome(ctx, ex, "top_p = 1.0")
    elif check.id == "drift.seed-above-int31":
        ex = ctx.client.chat(base(ctx, seed=2**31))
        observed_outcome(ctx, ex, "seed = 2^31")
    elif check.id == "drift.tools-with-stream":
        if not ctx.supports("tools"):
            pytest.skip(f"profile says {ctx.model} has no tools")
        ex = ctx.traffic.run("stream-tools")[0]
        observed_outcome(ctx, ex, "tools with stream=true")
    elif check.id == "drift.n-on-other-models":
        others = [m for m in ctx.profile.model_names if not ctx.profile.model(m).n and m != ctx.model
                  and ctx.profile.model(m).thinking != "always"]
        if not others:
            pytest.skip("the profile lists no model without n support")
        ex = ctx.client.chat({**base(ctx, n=2, max_tokens=8), "model": others[0]})
        observed_outcome(ctx, ex, f"n = 2 on {others[0]}")
    elif check.id == "drift.thinking-non-stream":
        if not ctx.supports("thinking"):
            pytest.skip(f"profile says {ctx.model} has no thinking mode")
        ex = ctx.client.chat(base(ctx, enable_thinking=True, max_tokens=16))
        observed_outcome(ctx, ex, f"enable_thinking on a non-stream call to {ctx.model}")
    else:
        pytest.skip(f"no probe for drift point {check.id}")
