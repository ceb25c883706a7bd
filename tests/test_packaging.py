"""`pip install .` must work outside the checkout: the wheel carries every subpackage, the schemas,
the profiles and the fixtures (they are data packages mapped in pyproject, so nothing finds them
automatically and a forgotten entry would only show on a fresh machine)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_code_schemas_profiles_and_fixtures(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True, timeout=180)
    wheel = next(tmp_path.glob("chatconf-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for init in [*ROOT.glob("conformance/**/__init__.py"), *ROOT.glob("loadtests/**/__init__.py")]:
        assert init.relative_to(ROOT).as_posix() in names, f"subpackage missing from the wheel: {init.parent}"
    for schema in (ROOT / "schemas").glob("*.json"):
        assert f"conformance/_schemas/{schema.name}" in names
    for profile in (ROOT / "schemas" / "profiles").glob("*.yaml"):
        assert f"conformance/_schemas/profiles/{profile.name}" in names
        assert f"conformance/_schemas/profiles/{profile.name}.parsed.json" in names  # resources.PARSED_SUFFIX
    for fixture in (ROOT / "fixtures").rglob("*"):
        if fixture.is_file() and not fixture.name.startswith("."):  # .gitkeep keeps an empty test dir
            assert f"conformance/_fixtures/{fixture.relative_to(ROOT / 'fixtures').as_posix()}" in names
    assert "conformance/_docs/sources.md" in names  # reports explain the keys checks cite
    assert "loadtests/locustfile.py" in names
