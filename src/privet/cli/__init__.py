"""The ``privet`` command. Heavy modules are imported inside each command."""

from __future__ import annotations

__all__: list[str] = []
