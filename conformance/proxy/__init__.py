"""`chatconf proxy`: a validating, recording reverse proxy between an app and its Chat Completions API.

    from conformance.proxy import ProxyApp, ProxyConfig
    app = ProxyApp(ProxyConfig(upstream="http://127.0.0.1:8000/compatible-mode/v1", profile=profile))
    conformance.proxy.server.serve(app.handle, sock)   # until Ctrl-C; then app.close()
"""

from .app import ProxyApp, ProxyConfig
from .forwarding import Upstream, UpstreamError, parse_upstream

__all__ = ["ProxyApp", "ProxyConfig", "Upstream", "UpstreamError", "parse_upstream"]
