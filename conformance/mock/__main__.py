"""Child-process entry of MockServer: `python -m conformance.mock`.

Protocol: the parent writes one line of MockConfig JSON to stdin; the child binds, prints
`CHATCONF-MOCK-READY <port>` on stdout and serves until stdin closes (the parent stopped or died),
then shuts down cleanly. Errors are one line on stdout and exit code 2.
"""

from __future__ import annotations

import sys
import threading

from .config import MockConfig
from .server import READY, MockStartError, bind_socket, prepare_process, serve, uvicorn_server


def main() -> int:
    line = sys.stdin.readline()
    try:
        config = MockConfig.from_json(line)
        from .app import MockApp

        app = MockApp(config)
        sock = bind_socket(config.host, config.port)
    except (MockStartError, ValueError, TypeError, OSError) as exc:
        print(f"ERROR {exc}", flush=True)
        return 2
    server = uvicorn_server(app)
    prepare_process()   # before the watcher thread exists

    def watch_parent() -> None:
        try:
            while sys.stdin.readline():
                pass
        except (OSError, ValueError):
            pass
        server.should_exit = True

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    print(f"{READY} {sock.getsockname()[1]}", flush=True)
    serve(server, sock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
