"""`chatconf proxy`: a validating, recording reverse proxy between an app and its Chat Completions API.

    from conformance.proxy import ProxyApp, ProxyConfig
    app = ProxyApp(ProxyConfig(upstream="http://127.0.0.1:8000/compatible-mode/v1", profile=profile))
"""

from .app import ProxyApp, ProxyConfig
from .forwarding import Upstream, UpstreamError, parse_upstream

__all__ = ["ProxyApp", "ProxyConfig", "Upstream", "UpstreamError", "parse_upstream"]
