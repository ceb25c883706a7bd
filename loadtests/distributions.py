"""Lengths drawn from a distribution a user can describe: `--prompt-tokens`, `--max-tokens`, `--turns`.

    512                 always 512
    uniform:100,900     uniform integers in [100, 900]
    normal:512,128      mean 512, standard deviation 128 (clamped to at least 1)
    lognormal:512,0.6   median 512, sigma 0.6 of the log (long-tailed, like real prompts)
    hist:lengths.txt    a histogram file: one `value weight` per line (`#` comments)

Draws come from the caller's seeded RNG, so a run is reproducible under `--seed`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

MAX_VALUE = 1_000_000


class DistributionError(ValueError):
    """A spec that does not describe a distribution; str() is the one line to print."""


@dataclass(frozen=True)
class Distribution:
    kind: str
    a: float = 0.0
    b: float = 0.0
    values: tuple[int, ...] = ()
    weights: tuple[float, ...] = ()
    spec: str = ""

    def draw(self, rng: random.Random) -> int:
        if self.kind == "fixed":
            value = self.a
        elif self.kind == "uniform":
            value = rng.randint(int(self.a), int(self.b))
        elif self.kind == "normal":
            value = rng.gauss(self.a, self.b)
        elif self.kind == "lognormal":
            value = self.a * math.exp(rng.gauss(0.0, self.b))
        else:
            value = rng.choices(self.values, self.weights)[0]
        return max(1, min(MAX_VALUE, round(value)))


def parse_distribution(spec: str, what: str) -> Distribution:
    text = spec.strip()
    kind, sep, rest = text.partition(":")
    if not sep:
        return Distribution("fixed", _number(text, what, spec, integer=True), spec=text)
    kind = kind.strip().lower()
    if kind == "hist":
        return _histogram(Path(rest.strip()), what, text)
    parts = [p.strip() for p in rest.split(",")]
    if kind not in ("uniform", "normal", "lognormal") or len(parts) != 2:
        raise DistributionError(f"{what} {spec!r}: expected N, uniform:LO,HI, normal:MEAN,SD, lognormal:MEDIAN,SIGMA "
                                "or hist:FILE")
    a, b = (_number(p, what, spec, integer=kind == "uniform") for p in parts)
    if kind == "uniform" and not 1 <= a <= b:
        raise DistributionError(f"{what} {spec!r}: uniform needs 1 <= LO <= HI")
    if kind in ("normal", "lognormal") and (a < 1 or b < 0):
        raise DistributionError(f"{what} {spec!r}: the centre must be at least 1 and the spread not negative")
    return Distribution(kind, a, b, spec=text)


def _number(text: str, what: str, spec: str, *, integer: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DistributionError(f"{what} {spec!r}: {text!r} is not a number") from None
    if integer and (value != int(value) or not 1 <= value <= MAX_VALUE):
        raise DistributionError(f"{what} {spec!r}: {text!r} is not a whole number between 1 and {MAX_VALUE}")
    return value


def _histogram(path: Path, what: str, spec: str) -> Distribution:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise DistributionError(f"{what} {spec!r}: cannot read {path}: {reason}") from None
    values, weights = [], []
    for n, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.replace(",", " ").split()
        try:
            value, weight = int(fields[0]), float(fields[1]) if len(fields) > 1 else 1.0
        except (ValueError, IndexError):
            raise DistributionError(f"{what} {spec!r}: line {n} is not `value weight`") from None
        if not 1 <= value <= MAX_VALUE or weight < 0:
            raise DistributionError(f"{what} {spec!r}: line {n}: value 1..{MAX_VALUE}, weight not negative")
        values.append(value)
        weights.append(weight)
    if not values or not any(weights):
        raise DistributionError(f"{what} {spec!r}: the histogram has no positive weight")
    return Distribution("hist", values=tuple(values), weights=tuple(weights), spec=spec)
