"""reserve_descriptors grows the descriptor table once (so accept() never has to, mid-load), within
RLIMIT_NOFILE, without leaking a descriptor or touching one that is open. Each case runs in a fresh
interpreter: the table of this test process may already be big."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
ROOT = Path(__file__).resolve().parent.parent


def run_child(body: str) -> dict[str, object]:
    code = textwrap.dedent('''
        import json, os, resource, sys
        from conformance.descriptors import reserve_descriptors
        def fdsize():
            for line in open("/proc/self/status"):
                if line.startswith("FDSize:"):
                    return int(line.split()[1])
        def open_fds():
            return len(os.listdir("/proc/self/fd"))
    ''') + textwrap.dedent(body)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         check=True)
    return json.loads(out.stdout)


def test_table_grows_once_up_front_and_no_descriptor_is_left_open() -> None:
    found = run_child('''
        before, fds = fdsize(), open_fds()
        size = reserve_descriptors(4096)
        print(json.dumps({"before": before, "size": size, "after": fdsize(), "leaked": open_fds() - fds}))
    ''')
    assert found["before"] < 4096 and found["size"] == 4096
    assert found["after"] >= 4096 and found["leaked"] == 0


def test_capped_by_the_soft_descriptor_limit() -> None:
    found = run_child('''
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (1000, hard))
        print(json.dumps({"size": reserve_descriptors(1 << 20), "after": fdsize()}))
    ''')
    assert found["size"] == 1000 and found["after"] >= 1000


def test_an_open_descriptor_at_the_top_is_left_alone() -> None:
    found = run_child('''
        r, w = os.pipe()
        os.dup2(w, 2047)
        size = reserve_descriptors(2048)
        os.write(2047, b"still the pipe")
        print(json.dumps({"size": size, "read": os.read(r, 100).decode()}))
    ''')
    assert found == {"size": 2048, "read": "still the pipe"}
