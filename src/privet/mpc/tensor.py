"""Secret-shared fixed-point tensors: the user-facing layer over the protocols.

A :class:`Session` binds a runtime (who holds which shares), a dealer and a
fixed-point encoding; :meth:`Session.share` secret-shares an owner's array
and returns a :class:`SharedTensor`, whose arithmetic dispatches to
:mod:`privet.mpc.protocols` and whose :meth:`~SharedTensor.reveal` opens it.
Shapes broadcast as numpy's do; shapes that do not broadcast are refused
before any randomness is drawn.

Error bounds (``f`` fractional bits, values within the ranges of
:mod:`privet.mpc.ring`): addition and subtraction are exact; a product of
two shared values is off by at most ``2^-f`` beyond the encoding of its
inputs (one stochastic rounding); a product with a public real ``w`` (and a
division by ``1 / w``) by at most ``|x| max|w| 2^-(f+1) + 2^-f``, the max over
the public array, since its largest entry is encoded with ``f + 1``
significant bits however small it is; products with
public integers are exact; comparisons and ReLU are exact.
"""

from __future__ import annotations

import math
from typing import Any, Final, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from privet.errors import PrivacyError
from privet.mpc import protocols
from privet.mpc.dealer import CorrelationSource
from privet.mpc.ring import FixedPoint, RingArray
from privet.mpc.runtime import Runtime

__all__ = ["Session", "SharedTensor"]

# Extra bits for public factors below 1: 2^-30 and smaller vanish at f <= 30 anyway.
_MAX_EXTRA_BITS: Final = 30


class Session:
    """The context shared tensors live in.

    Parameters
    ----------
    runtime
        The parties this process plays (:class:`~privet.mpc.runtime.Simulator`: all of them).
    dealer
        Correlated randomness for the same number of parties: a
        :class:`~privet.mpc.dealer.Dealer` (every party's rows) or a party's
        :class:`~privet.mpc.dealer.PartyDealer`.
    encoding
        Fixed-point encoding (default 16 fractional bits).
    """

    def __init__(
        self, runtime: Runtime, dealer: CorrelationSource, encoding: FixedPoint | None = None
    ) -> None:
        if not isinstance(runtime, Runtime):
            raise PrivacyError(f"runtime must be a privet.mpc Runtime, got {runtime!r:.80}")
        if not isinstance(dealer, CorrelationSource):
            raise PrivacyError(
                f"dealer must be a privet.mpc CorrelationSource (a Dealer or a party's view), "
                f"got {dealer!r:.80}"
            )
        protocols.check_same_parties(runtime, dealer)
        self.runtime = runtime
        self.dealer = dealer
        self.encoding = encoding if encoding is not None else FixedPoint()

    def share(self, values: ArrayLike, owner: int = 0) -> SharedTensor:
        """Secret-share ``owner``'s real array: it opens ``x - r`` for a dealer mask ``r``.

        In the simulator every party is local, so ``values`` is the owner's
        input; a real party passes its input if it is the owner (others pass
        an array of the same shape, which is ignored).
        """
        n = self.runtime.num_parties
        if isinstance(owner, bool) or not isinstance(owner, int) or not 0 <= owner < n:
            raise PrivacyError(f"owner must be a party index in [0, {n - 1}], got {owner!r}")
        encoded = self.encoding.encode(values)
        mask = self.dealer.input_mask(encoded.shape, owner)
        shares = protocols.local(self.runtime, mask.shares)
        # The owner alone knows r, hence x - r; it sends that to the others (one round).
        masked = encoded - mask.value if mask.value is not None else np.zeros_like(encoded)
        masked = self.runtime.broadcast(owner, masked)
        return SharedTensor(self, protocols.add_public(self.runtime, shares, masked))

    def public(self, values: ArrayLike) -> SharedTensor:
        """A public array as a (trivially) shared tensor: party 0 holds it."""
        encoded = self.encoding.encode(values)
        rows = len(self.runtime.local_parties)
        zeros = np.zeros((rows, *encoded.shape), dtype=np.uint64)
        return SharedTensor(self, protocols.add_public(self.runtime, zeros, encoded))


class SharedTensor:
    """A fixed-point tensor secret-shared among the session's parties.

    ``shares`` has the party axis first (the rows this process holds); the
    tensor's own shape is ``shares.shape[1:]``.
    """

    __array_priority__ = 1000  # numpy defers to our operators (public @ shared, ...)

    def __init__(self, session: Session, shares: RingArray) -> None:
        self.session = session
        self.shares = shares

    # -- shape ---------------------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.shares.shape[1:])

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def reshape(self, *shape: int) -> SharedTensor:
        rows = self.shares.shape[0]
        return self._new(self.shares.reshape((rows, *shape)))

    def transpose(self) -> SharedTensor:
        axes = (0, *range(self.ndim, 0, -1))
        return self._new(np.ascontiguousarray(self.shares.transpose(axes)))

    @property
    def T(self) -> SharedTensor:  # noqa: N802 - numpy's name
        return self.transpose()

    def __getitem__(self, index: Any) -> SharedTensor:
        key = index if isinstance(index, tuple) else (index,)
        return self._new(self.shares[(slice(None), *key)])

    def _squeeze(self, axis: int) -> SharedTensor:
        return self._new(np.squeeze(self.shares, axis=axis % self.ndim + 1))

    # -- helpers -------------------------------------------------------------------------------

    def _new(self, shares: RingArray) -> SharedTensor:
        return SharedTensor(self.session, shares)

    @property
    def _runtime(self) -> Runtime:
        return self.session.runtime

    def _coerce(self, other: object) -> SharedTensor | NDArray[np.float64]:
        if isinstance(other, SharedTensor):
            if other.session is not self.session:
                raise PrivacyError("shared tensors must belong to the same session")
            return other
        try:
            public = np.asarray(other, dtype=np.float64)
        except (TypeError, ValueError):
            raise PrivacyError(
                f"operand must be a SharedTensor or a real array, got {type(other).__name__}"
            ) from None
        return public

    def _broadcast(self, other_shape: tuple[int, ...]) -> tuple[int, ...]:
        try:
            return tuple(np.broadcast_shapes(self.shape, other_shape))
        except ValueError:
            raise PrivacyError(
                f"shapes must broadcast, got {self.shape} and {other_shape}"
            ) from None

    def _truncate(self, shares: RingArray) -> SharedTensor:
        bits = self.session.encoding.fractional_bits
        return self._new(protocols.truncate(self._runtime, self.session.dealer, shares, bits))

    # -- arithmetic ----------------------------------------------------------------------------

    def _aligned(self, other_shape: tuple[int, ...]) -> RingArray:
        """This tensor's shares ready to broadcast against an operand of ``other_shape``."""
        self._broadcast(other_shape)
        return protocols.aligned(self.shares, max(self.ndim, len(other_shape)))

    def __add__(self, other: object) -> SharedTensor:
        value = self._coerce(other)
        shares = self._aligned(value.shape)
        if isinstance(value, SharedTensor):
            return self._new(shares + value._aligned(self.shape))
        encoded = self.session.encoding.encode(value)
        return self._new(protocols.add_public(self._runtime, shares, encoded))

    __radd__ = __add__

    def __neg__(self) -> SharedTensor:
        return self._new(np.uint64(0) - self.shares)

    def __sub__(self, other: object) -> SharedTensor:
        value = self._coerce(other)
        return self + (-value)

    def __rsub__(self, other: object) -> SharedTensor:
        return (-self) + other

    def __mul__(self, other: object) -> SharedTensor:
        value = self._coerce(other)
        shares = self._aligned(value.shape)
        if isinstance(value, SharedTensor):
            product = protocols.mul(self._runtime, self.session.dealer, self.shares, value.shares)
            return self._truncate(product)
        if np.all(value == np.rint(value)) and (value.size == 0 or np.abs(value).max() < 2**31):
            # Integers need no truncation: exact, and no round.
            return self._new(shares * value.astype(np.int64).view(np.uint64))
        return self._scale(shares, value)

    def _scale(self, shares: RingArray, factor: NDArray[np.float64]) -> SharedTensor:
        """``x * w`` for public reals ``w``, encoded with ``g`` extra bits so that the
        largest ``|w|`` keeps ``f + 1`` significant bits (``g = 0`` once ``|w| >= 1``):
        a relative error of ``2^-(f+1)`` on ``w`` (not ``2^-f / |w|``), then one
        truncation by ``f + g``."""
        f = self.session.encoding.fractional_bits
        largest = float(np.max(np.abs(factor))) if factor.size else 0.0
        extra = 0 if largest == 0.0 else min(_MAX_EXTRA_BITS, max(0, 1 - math.frexp(largest)[1]))
        encoded = FixedPoint(0).encode(np.ldexp(factor, f + extra))
        product = protocols.truncate(
            self._runtime, self.session.dealer, shares * encoded, f + extra
        )
        return self._new(product)

    __rmul__ = __mul__

    def __truediv__(self, other: object) -> SharedTensor:
        value = self._coerce(other)
        if isinstance(value, SharedTensor):
            raise PrivacyError("division by a shared tensor is not supported; divide by a public")
        if np.any(value == 0) or not np.isfinite(value).all():
            raise PrivacyError(f"divisor must be finite and nonzero, got {value!r:.80}")
        return self * (1.0 / value)

    def __matmul__(self, other: object) -> SharedTensor:
        value = self._coerce(other)
        other_shape = value.shape
        if self.ndim == 0 or len(other_shape) == 0:
            raise PrivacyError("matmul operands must have at least one dimension")
        if self.shape[-1] != other_shape[-2 if len(other_shape) > 1 else 0]:
            raise PrivacyError(f"matmul shapes must align, got {self.shape} and {other_shape}")
        if isinstance(value, SharedTensor):
            # numpy's 1-d rules: a vector is a row on the left, a column on the right.
            left = self if self.ndim > 1 else self.reshape(1, *self.shape)
            right = value if value.ndim > 1 else value.reshape(*value.shape, 1)
            product = protocols.matmul(
                self._runtime, self.session.dealer, left.shares, right.shares
            )
            result = self._truncate(product)
            if self.ndim == 1:
                result = result._squeeze(-2 if value.ndim > 1 else -1)
            if value.ndim == 1:
                result = result._squeeze(-1)
            return result
        encoded = self.session.encoding.encode(value)
        return self._truncate(protocols.matmul_public(self.shares, encoded, public_on_left=False))

    def __rmatmul__(self, other: object) -> SharedTensor:
        value = self._coerce(other)
        if isinstance(value, SharedTensor):  # pragma: no cover - __matmul__ handles it
            return value @ self
        encoded = self.session.encoding.encode(value)
        if encoded.shape[-1] != self.shape[0 if self.ndim == 1 else -2]:
            raise PrivacyError(f"matmul shapes must align, got {encoded.shape} and {self.shape}")
        return self._truncate(protocols.matmul_public(self.shares, encoded, public_on_left=True))

    def sum(self, axis: int | tuple[int, ...] | None = None) -> SharedTensor:
        axes = tuple(range(1, self.ndim + 1)) if axis is None else _shift_axes(axis, self.ndim)
        return self._new(np.add.reduce(self.shares, axis=axes, dtype=np.uint64))

    def mean(self, axis: int | tuple[int, ...] | None = None) -> SharedTensor:
        total = self.sum(axis)
        count = int(np.prod(self.shape)) // max(int(np.prod(total.shape)), 1)
        return total / count if count else total

    # -- comparisons ---------------------------------------------------------------------------

    def _bit(self, bits: RingArray) -> SharedTensor:
        """Integer 0/1 shares as fixed-point 0/1 (a local shift: exact)."""
        return self._new(bits << np.uint64(self.session.encoding.fractional_bits))

    def _sign(self) -> RingArray:
        return protocols.msb(self._runtime, self.session.dealer, self.shares)

    def __lt__(self, other: object) -> SharedTensor:
        return (self - other)._bit((self - other)._sign())

    def __gt__(self, other: object) -> SharedTensor:
        difference = self._coerce(other) - self
        if not isinstance(difference, SharedTensor):  # pragma: no cover - self is shared
            raise PrivacyError("comparison needs a shared operand")
        return self._bit(difference._sign())

    def __le__(self, other: object) -> SharedTensor:
        return 1.0 - (self > other)

    def __ge__(self, other: object) -> SharedTensor:
        return 1.0 - (self < other)

    def relu(self) -> SharedTensor:
        """``max(x, 0)``, exactly: ``x * (1 - msb(x))`` with an integer bit (no truncation)."""
        product, _ = protocols.relu(self._runtime, self.session.dealer, self.shares)
        return self._new(product)

    # -- output --------------------------------------------------------------------------------

    @overload
    def reveal(self) -> NDArray[np.float64]: ...

    @overload
    def reveal(self, to: int) -> NDArray[np.float64] | None: ...

    def reveal(self, to: int | None = None) -> NDArray[np.float64] | None:
        """Open the tensor and decode it (one round): to every party, or to party ``to``
        alone, which gets the values while every other party gets ``None`` and learns
        nothing (the hospital learns its diagnoses; the model's owner does not).

        In the simulator, which plays every party, ``to`` gets the values back.
        """
        if to is None:
            return self.session.encoding.decode(self._runtime.open_ring(self.shares))
        opened = self._runtime.open_ring_to(to, self.shares)
        return None if opened is None else self.session.encoding.decode(opened)

    get = reveal

    def __repr__(self) -> str:
        parties = self._runtime.num_parties
        return f"SharedTensor(shape={self.shape}, parties={parties})"


def _shift_axes(axis: int | tuple[int, ...], ndim: int) -> tuple[int, ...]:
    axes = axis if isinstance(axis, tuple) else (axis,)
    shifted = []
    for value in axes:
        if isinstance(value, bool) or not isinstance(value, int) or not -ndim <= value < ndim:
            raise PrivacyError(f"axis must be in [{-ndim}, {ndim - 1}], got {value!r}")
        shifted.append(value % ndim + 1)
    return tuple(shifted)
