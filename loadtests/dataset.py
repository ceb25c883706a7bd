"""`--dataset FILE.jsonl`: the user's own prompts as the load's requests.

One JSON object per line: `{"messages": [...]}` (any chat request body works: other keys are ignored
except `max_tokens`) or `{"prompt": "..."}`; blank lines and lines starting with `#` are skipped. Read
whole by every Locust process (a worker on another machine needs the file at the same path).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conformance.jsonutil import JSONError, loads

MAX_BYTES = 256 * 1024 * 1024
ROLES = ("system", "user", "assistant", "tool", "developer")


class DatasetError(ValueError):
    """An unreadable dataset; str() is the one line to print (naming the line)."""


def load_dataset(path: str | Path) -> tuple[dict[str, Any], ...]:
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise DatasetError(f"--dataset {path}: larger than {MAX_BYTES // 2**20} MiB")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"--dataset {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"--dataset {path}: not UTF-8 text (byte {exc.start})") from None
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            row = loads(line)
        except JSONError as exc:
            raise DatasetError(f"--dataset {path}: line {n} is not JSON ({exc})") from None
        rows.append(_row(row, f"--dataset {path}: line {n}"))
    if not rows:
        raise DatasetError(f"--dataset {path}: no prompts in it")
    return tuple(rows)


def _row(row: Any, where: str) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise DatasetError(f"{where}: expected an object with `messages` or `prompt`")
    if isinstance(row.get("prompt"), str) and row["prompt"]:
        messages = [{"role": "user", "content": row["prompt"]}]
    elif isinstance(row.get("messages"), list) and row["messages"]:
        messages = row["messages"]
        for m in messages:
            if not isinstance(m, dict) or m.get("role") not in ROLES:
                raise DatasetError(f"{where}: every message needs a role ({', '.join(ROLES)})")
    else:
        raise DatasetError(f"{where}: expected `messages` (a non-empty list) or `prompt` (a string)")
    out: dict[str, Any] = {"messages": messages}
    max_tokens = row.get("max_tokens")
    if max_tokens is not None:
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise DatasetError(f"{where}: max_tokens must be a positive integer")
        out["max_tokens"] = max_tokens
    return out
