"""Activates the suite's hooks and fixture (conformance/suite/plugin.py) for this package only.

pytest loads a conftest when it collects the directory that holds it, so a project that has chatconf
installed but never collects `conformance.suite` runs none of this.
"""

from .plugin import (  # noqa: F401 - pytest finds hooks and fixtures by name in a conftest
    chatconf,
    pytest_collection_finish,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_generate_tests,
    pytest_runtest_makereport,
    pytest_runtest_setup,
    pytest_sessionfinish,
)
