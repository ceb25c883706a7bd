"""The conformance suite that `chatconf run` executes, also usable as `pytest --pyargs conformance.suite`."""
