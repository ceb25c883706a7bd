"""Write the parsed twin of every packaged profile (conformance.resources.PARSED_SUFFIX): run it after
editing a profile YAML; tests/test_resources.py fails while a twin is stale."""

from __future__ import annotations

import sys

from conformance.resources import profiles_dir, write_twin


def main() -> int:
    for path in sorted(profiles_dir().glob("*.yaml")):
        print(f"wrote {write_twin(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
