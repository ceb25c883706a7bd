"""Exceptions that end a command with a one-line message and a documented exit code."""

from __future__ import annotations


class UsageError(Exception):
    """Bad flags, unreadable input or an unreachable target: exit code 2, one line, no traceback."""
