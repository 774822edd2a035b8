"""TenSEAL, imported once with an error that names the extra to install.

TenSEAL ships no type stubs, so its objects are typed ``Any`` here.
"""

from __future__ import annotations

from typing import Any

try:
    import tenseal  # type: ignore[import-untyped]
except ImportError as error:  # pragma: no cover - depends on the installation
    raise ImportError("privet.he.ckks needs TenSEAL: pip install 'privet[he]'") from error

__all__ = ["TenSealContext", "TenSealVector", "tenseal"]

#: A ``tenseal.Context``.
TenSealContext = Any
#: A ``tenseal.CKKSVector``.
TenSealVector = Any
