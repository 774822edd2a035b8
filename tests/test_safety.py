"""Nothing in privet deserializes with pickle or imports a class named by data (DESIGN.md)."""

from __future__ import annotations

import re
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src" / "privet"
FORBIDDEN = re.compile(
    r"^\s*(import (c?pickle|dill|cloudpickle|marshal|shelve)\b"
    r"|from (c?pickle|dill|cloudpickle|shelve) import)"
    r"|pickle\.loads?\(|importlib\.import_module\(|torch\.load\((?!.*weights_only=True)",
    re.M,
)


def test_no_unsafe_deserialization_in_src() -> None:
    offenders = [
        f"{path.relative_to(SOURCE)}:{text.count(chr(10), 0, match.start()) + 1}"
        for path in sorted(SOURCE.rglob("*.py"))
        for text in [path.read_text(encoding="utf-8")]
        for match in FORBIDDEN.finditer(text)
    ]
    assert offenders == []


def test_library_code_validates_without_assert() -> None:
    offenders = [
        str(path.relative_to(SOURCE))
        for path in sorted(SOURCE.rglob("*.py"))
        if re.search(r"^\s*assert\s", path.read_text(encoding="utf-8"), re.M)
    ]
    assert offenders == []
