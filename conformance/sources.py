"""The sources a check cites, explained in words a user can follow.

docs/sources.md is the one place that explains every key (`001:param-temperature`, `C32`, `S4`-`S6`);
it ships inside the package (conformance/_docs), so a report can say what `C32` means next to the
check that cites it instead of showing a bare code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from .resources import docs_dir

_ROW = re.compile(r"^\| ((?:`[^`]+`[-, ]*)+)\|(.*)\|\s*$", re.M)
_KEY = re.compile(r"`([^`]+)`(?:-`([^`]+)`)?")


@dataclass(frozen=True)
class Source:
    key: str
    where: str  # vendor documentation: the page and section; research: "" (the key's family says it)
    says: str

    def describe(self) -> str:
        kind = "documentation" if self.where else "observed in production"
        where = f"{self.where}: " if self.where else ""
        return f"{self.key} ({kind}) {where}{self.says}"


@cache
def sources() -> dict[str, Source]:
    """Every key the sources page explains, ranges (`S4`-`S6`) spelt out key by key."""
    out: dict[str, Source] = {}
    text = (docs_dir() / "sources.md").read_text(encoding="utf-8")
    for keys, rest in _ROW.findall(text):
        cells = [cell.strip() for cell in rest.split(" | ")]
        where, says = (cells[0], cells[-1]) if len(cells) > 1 else ("", cells[0])
        for key in _expand(keys):
            out[key] = Source(key=key, where=where.strip("| "), says=_plain(says.strip("| ")))
    return out


def _expand(cell: str) -> list[str]:
    keys = []
    for first, last in _KEY.findall(cell):
        keys.append(first)
        if last:
            prefix = re.match(r"[A-Z]+", first).group(0)  # type: ignore[union-attr]
            keys += [f"{prefix}{n}" for n in range(int(first[len(prefix):]) + 1, int(last[len(prefix):]) + 1)]
    return keys


def _plain(markdown: str) -> str:
    return markdown.replace("`", "")


def explain(cites: str | tuple[str, ...]) -> list[Source]:
    """The explained sources of a check's `source` text ("001:param-n, C34") or cites tuple; keys the
    page does not explain are left out (tests/test_provenance.py keeps that list empty)."""
    keys = cites.replace(",", " ").split() if isinstance(cites, str) else list(cites)
    table = sources()
    return [table[key] for key in keys if key in table]
