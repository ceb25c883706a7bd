"""The mock's word-level tokenizer: simple, deterministic, and the single source of token counts,
so `usage` always agrees with the text the mock sent (and `stop` token ids mean something).

A token is a word with at most one leading space (" model"), one punctuation character, or a run of
whitespace. Ids: words of the mock's vocabulary get small stable ids (their position); anything
else gets a stable id from a CRC of its text.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

_TOKEN_RE = re.compile(r" ?[A-Za-z0-9]+| ?[^\sA-Za-z0-9]|\s+")

_WORDS_TEXT = (
    "the a an of to and in is it that this for on with as be by are from at or model answer "
    "mock server stream token request response simulated chat completion text example data "
    "test value result system user assistant tool call function time weather city today "
    "here some more each every first second next last good clear simple short long fast slow "
    "quick note point step part way case use help work run check send read write make give "
    "I you we they can will may should would could does did has have had not no yes all any "
    "Qwen DashScope compatible mode harness conformance latency region load event chunk usage"
)
WORDS: tuple[str, ...] = tuple(_WORDS_TEXT.split())

VOCAB: tuple[str, ...] = tuple(f" {w}" for w in WORDS) + tuple(WORDS) + tuple(".,;:!?")
_IDS = {tok: i + 100 for i, tok in enumerate(VOCAB)}


def tokenize(text: str) -> list[str]:
    return _TOKEN_RE.findall(text)


def count_tokens(text: str) -> int:
    return len(_TOKEN_RE.findall(text))


def token_id(token: str) -> int:
    """Stable id: vocabulary position, else 100000 + CRC32 of the token text (mod 10^6)."""
    found = _IDS.get(token)
    if found is not None:
        return found
    return 100_000 + zlib.crc32(token.encode("utf-8")) % 1_000_000


def content_text(content: Any) -> str:
    """Text of a message `content`: a string, or the text parts of a content array."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""
