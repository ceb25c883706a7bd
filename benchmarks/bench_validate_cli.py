"""`chatconf validate` timed as a user runs it: one command, interpreter start-up included.

bench_validate.py times the validation loop inside one process. A user types `chatconf validate FILE`
and waits for the prompt, so this benchmark times the whole command (`-j 1`, output to a file), side by
side in one run with:

- **baseline, rich schema**: a fresh `python` that imports jsonschema, builds chatconf's own chunk schema
  and runs `Draft202012Validator.iter_errors` on every `data:` line (what a team writes by hand);
- **baseline, simple schema**: the same loop with a small hand-written chunk schema (required fields
  and their types), the cheaper check such a script would often use;
- **tiny events**: 200,000-event files of one-token chunks: valid ones, `data: {}` keep-alive floods, one
  bad chunk repeated, and bad chunks that all differ. Their events/s sit next to the realistic file's.

The baselines cost ~0.5 ms per chunk, so they run on `--baseline-chunks` chunks and their time for the
whole file is start-up + that many chunks' time scaled to the file (printed as such; `--baseline-chunks 0`
runs them on the whole file). Every command runs once per round, the rounds interleaved, and each keeps
its best time. `--before TREE` times another checkout in the same rounds (before/after columns).

    .venv/bin/python benchmarks/bench_validate_cli.py [--chunks 100000] [--tiny 200000] [--repeat 3]
    git worktree add /tmp/before 06f7661 && .venv/bin/python benchmarks/bench_validate_cli.py --before /tmp/before
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_validate import generate  # noqa: E402  (the same realistic stream)

SIMPLE_SCHEMA = {
    "type": "object",
    "required": ["id", "object", "created", "model", "choices"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "chat.completion.chunk"},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "choices": {"type": "array", "items": {"type": "object", "required": ["index", "delta"]}},
        "usage": {"type": ["object", "null"]},
    },
}

_BASELINE = r"""
import json, sys
from pathlib import Path
import jsonschema
sys.path.insert(0, sys.argv[4])
from bench_validate import plain_loop
if sys.argv[2] == "rich":
    from conformance.profiles import load_profile
    from conformance.schemas import build_schema
    schema = build_schema("chunk", load_profile("dashscope"))
else:
    schema = json.loads(sys.argv[2])
count, errors = plain_loop(Path(sys.argv[1]), jsonschema.Draft202012Validator(schema), int(sys.argv[3]))
print(json.dumps({"chunks": count, "errors": errors}))
"""

TINY_CHUNK = ('{"id":"c1","object":"chat.completion.chunk","created":1733200000,"model":"qwen-plus",'
              '"choices":[{"index":0,"delta":{"content":"%s"},"finish_reason":null}]}')


def tiny_files(folder: Path, events: int) -> dict[str, Path]:
    """The tiny-event files: what each holds is in its name."""
    variants = {
        "tiny valid chunks": lambda i: TINY_CHUNK % chr(97 + i % 26),
        "data: {} flood (5 errors each)": lambda i: "{}",
        "one bad chunk repeated (5 errors each)": lambda i: '{"choices":[{"delta":{"content":"a"}}]}',
        "bad chunks, all different (5 errors each)": lambda i: f'{{"choices":[{{"delta":{{"content":"{i}"}}}}]}}',
    }
    paths = {}
    for n, (name, payload) in enumerate(variants.items()):
        path = folder / f"tiny-{n}.sse"
        with path.open("w", encoding="utf-8") as fh:
            fh.writelines(f"data: {payload(i)}\n\n" for i in range(events))
            fh.write("data: [DONE]\n\n")
        paths[name] = path
    return paths


def timed(cmd: list[str], out: Path, env: dict[str, str] | None = None) -> float:
    """Wall seconds of one command, stdout to a file (a terminal would time the terminal).

    A blocking wait, with a timer as the bound: `subprocess.run(timeout=...)` polls the child every
    50 ms, so every time it measured was rounded up to the next 0.05 s (0.62, 0.67, 0.72 ...)."""
    with out.open("wb") as fh:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.DEVNULL, env=env)
        watchdog = threading.Timer(1800, proc.kill)
        watchdog.start()
        try:
            code = proc.wait()
        finally:
            watchdog.cancel()
        wall = time.perf_counter() - start
    if code not in (0, 1):
        raise SystemExit(f"bench: {cmd[:3]} exited {code}")
    return wall


def chatconf_cmd() -> list[str]:
    exe = shutil.which("chatconf", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "conformance.cli"]


def best_of_rounds(commands: dict[tuple[str, ...], tuple[list[str], dict[str, str] | None]], rounds: int,
                   sink: Path) -> dict[tuple[str, ...], float]:
    """Each command's best wall time; every round runs every command once, so a noisy minute on the
    machine lands on all of them alike instead of on whichever was running."""
    times = dict.fromkeys(commands, float("inf"))
    for _ in range(rounds):
        for key, (cmd, env) in commands.items():
            times[key] = min(times[key], timed(cmd, sink, env))
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chunks", type=int, default=100_000, help="chunks in the realistic file (default 100000)")
    ap.add_argument("--tiny", type=int, default=200_000, help="events in each tiny-event file (default 200000)")
    ap.add_argument("--baseline-chunks", type=int, default=10_000, help="baseline on the first N chunks (0: all)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of every command, best kept (default 3)")
    ap.add_argument("--target", type=float, default=30.0)
    ap.add_argument("--before", metavar="TREE", help="another checkout (e.g. a git worktree of an older commit), "
                    "timed in the same rounds with `python -m conformance.cli` and shown beside")
    args = ap.parse_args()
    # An installed package has its byte code (pip compiles it); without this, a shell that sets
    # PYTHONDONTWRITEBYTECODE times compiling every changed module at each start-up (~25 ms here).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    trees: dict[str, tuple[list[str], dict[str, str] | None]] = {"after": ([*chatconf_cmd(), "validate", "-j", "1"],
                                                                          None)}
    if args.before:  # both trees started the same way, each from its own checkout
        module = [sys.executable, "-P", "-m", "conformance.cli", "validate", "-j", "1"]  # -P: not the cwd's checkout
        for tree, path in (("after", HERE.parent), ("before", Path(args.before))):
            trees[tree] = (module, {**os.environ, "PYTHONPATH": str(path.resolve())})
    with tempfile.TemporaryDirectory(prefix="chatconf-bench-cli-") as tmp:
        folder = Path(tmp)
        realistic = folder / "realistic.sse"
        size = generate(realistic, args.chunks)
        one = folder / "one.sse"
        generate(one, 3)
        files = [("start-up (a 3-chunk file: interpreter, imports, profile, schemas)", 3, one),
                 (f"realistic chunks (~{size // args.chunks} bytes)", args.chunks, realistic)]
        files += [(name, args.tiny, path) for name, path in tiny_files(folder, args.tiny).items()]
        sink = folder / "out.txt"
        commands: dict[tuple[str, ...], tuple[list[str], dict[str, str] | None]] = {}
        for tree, (cmd, env) in trees.items():
            timed([*cmd, str(realistic)], sink, env)  # warm the OS cache and write the byte code
            for name, _, path in files:
                commands[(tree, name)] = ([*cmd, str(path)], env)
        for kind, schema in (("rich", "rich"), ("simple", json.dumps(SIMPLE_SCHEMA))):
            base = [sys.executable, "-c", _BASELINE, str(realistic), schema]
            commands[("baseline", kind, "empty")] = ([*base, "1", str(HERE)], None)
            commands[("baseline", kind, "part")] = ([*base, str(args.baseline_chunks), str(HERE)], None)
        times = best_of_rounds(commands, args.repeat, sink)
    print(f"chatconf validate, whole command: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}, best of {args.repeat} interleaved rounds")
    header = f"{'file':<44} {'events':>8} {'wall s':>8} {'events/s':>10}"
    print(header + (f" {'before s':>9} {'before ev/s':>11}" if args.before else ""))
    for name, events, _ in files:
        wall = times[("after", name)]
        line = f"{name[:44]:<44} {events:>8} {wall:>8.3f} {events / wall:>10,.0f}"
        if args.before:
            was = times[("before", name)]
            line += f" {was:>9.3f} {events / was:>11,.0f}"
        print(line)
    real_wall = times[("after", files[1][0])]
    n = args.baseline_chunks or args.chunks
    for kind in ("rich", "simple"):
        empty, part = times[("baseline", kind, "empty")], times[("baseline", kind, "part")]
        wall = empty + (part - empty) * (args.chunks / n)
        ratio = wall / real_wall
        print(f"baseline ({kind} schema), {args.chunks} chunks, start-up included: {wall:.2f} s -> chatconf "
              f"{ratio:.1f}x faster (target {args.target:.0f}x: {'met' if ratio >= args.target else 'NOT met'})")
    tiny_min = min(events / times[("after", name)] for name, events, _ in files[2:])
    print(f"slowest tiny-event file: {tiny_min:,.0f} events/s against {args.chunks / real_wall:,.0f} on realistic "
          "chunks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
