"""The dealer (a "crypto provider"): correlated randomness for the online phase.

A trusted third party that never sees inputs hands the computing parties
shares of random values with a known relation (Beaver, "Efficient
Multiparty Protocols Using Circuit Randomization", CRYPTO 1991): triples
``c = a * b`` (elementwise, matrix product, convolution), truncation pairs, and the
masks and bit decompositions comparisons need (Makri et al., "Rabbit:
Efficient Comparison for Secure Multi-Party Computation", FC 2021).

Shares are seed-compressed: party ``i < n - 1`` draws its share of every
item from a :class:`~privet.mpc.prg.Prg` keyed by a seed it shares with the
dealer, so only the last party's shares (value minus the others) must be
sent. :class:`DealerStats` counts items and those bytes.

The dealer is seeded: a fixed seed reproduces a simulation exactly (and the
multi-process run that must match it bit for bit); ``None`` draws it from
the OS CSPRNG, as a real deployment must.

Split across processes: every correlation is an :class:`ItemRequest` (the
method and its public shapes), whose :meth:`~ItemRequest.layout` lists the
shapes of the shares it hands out, in the order the dealer draws them. The
full :class:`Dealer` (the simulator's, or the dealer process's) answers it
with :meth:`Dealer.produce`; a :class:`PartyDealer` is one party's view of
the same dealer: party ``i < n - 1`` draws its rows from its own stream
(seeded by :meth:`Dealer.stream_seed`, so nothing is computed or sent but
the masks of inputs it owns), and the last party receives its rows. The
program is deterministic in public shapes, so every view asks for the same
items in the same order and gets exactly the rows of the full dealer.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, NamedTuple, Protocol, runtime_checkable

import numpy as np

from privet.errors import PrivacyError
from privet.mpc.prg import SEED_BYTES, Prg, fresh_seed
from privet.mpc.ring import (
    LOW_MASK,
    TOP_BIT,
    ConvGeometry,
    RingArray,
    bit_planes,
    ring_conv2d,
    ring_matmul,
)
from privet.mpc.runtime import check_party

__all__ = [
    "ComparisonMask",
    "CorrelationSource",
    "Dealer",
    "DealerPlan",
    "DealerStats",
    "Delivery",
    "InputMask",
    "ItemRequest",
    "Method",
    "PartyDealer",
    "Triple",
    "TruncationPair",
    "pack_bits",
    "packed_words",
    "unpack_bits",
]

#: Dimensions of one requested shape: the wire codec's own cap on an array's axes.
MAX_NDIM: Final = 32


def packed_words(count: int) -> int:
    """Words needed to pack ``count`` bits, 64 to a word."""
    return (count + 63) // 64


class InputMask(NamedTuple):
    """Shares of a uniform ``r`` and, where the input's owner is local, ``r`` itself
    (``None`` in a process that does not play the owner)."""

    shares: RingArray
    value: RingArray | None


class Triple(NamedTuple):
    """Shares (party axis first) of ``a``, ``b`` and ``c = a op b``."""

    a: RingArray
    b: RingArray
    c: RingArray


class TruncationPair(NamedTuple):
    """Shares of a uniform ``r``, of ``(r mod 2^63) >> f`` and of the bit ``r >> 63``."""

    r: RingArray
    low_shifted: RingArray
    high_bit: RingArray


class ComparisonMask(NamedTuple):
    """What one batch of ``N`` sign extractions needs (Rabbit, Makri et al. 2021).

    ``r``: ring shares of a uniform mask (shape of the values);
    ``low_bits``: XOR shares of the bits 0..62 of ``r``, packed (63, W);
    ``high_bit``: XOR shares of bit 63 of ``r``, packed (W,);
    ``rho_bits`` / ``rho``: a uniform bit per value as packed XOR shares (W,)
    and as ring shares (N,), for converting the result to arithmetic shares.
    """

    r: RingArray
    low_bits: RingArray
    high_bit: RingArray
    rho_bits: RingArray
    rho: RingArray


@dataclass
class DealerStats:
    """What the dealer produced: share arrays, the bytes it must send (the last party's
    rows and the masks for inputs' owners), and the seconds it spent producing them
    (drawing, multiplying, sharing; a party's view spends none, and two runs never
    agree on time, so equality ignores it)."""

    items: int = 0
    bytes_sent: int = 0
    seconds: float = field(default=0.0, compare=False)


@runtime_checkable
class CorrelationSource(Protocol):
    """What the online protocols and :class:`~privet.mpc.tensor.Session` ask of a dealer:
    the full :class:`Dealer` (every party's rows) and a :class:`PartyDealer` (one row)."""

    num_parties: int
    stats: DealerStats

    def input_mask(self, shape: tuple[int, ...], owner: int) -> InputMask: ...

    def mul_triple(self, left_shape: tuple[int, ...], right_shape: tuple[int, ...]) -> Triple: ...

    def matmul_triple(
        self, left_shape: tuple[int, ...], right_shape: tuple[int, ...]
    ) -> Triple: ...

    def conv_triple(
        self, image_shape: tuple[int, ...], kernel_shape: tuple[int, ...], geometry: ConvGeometry
    ) -> Triple: ...

    def and_triples(self, shape: tuple[int, ...]) -> Triple: ...

    def truncation_pair(self, shape: tuple[int, ...], fractional_bits: int) -> TruncationPair: ...

    def comparison_mask(self, count: int) -> ComparisonMask: ...


def pack_bits(bits: RingArray) -> RingArray:
    """Pack 0/1 values along the last axis, 64 per ``uint64`` word (bit ``k`` of word ``w``
    is element ``64 w + k``)."""
    count = bits.shape[-1]
    padded = np.zeros((*bits.shape[:-1], packed_words(count) * 64), dtype=np.uint8)
    padded[..., :count] = bits.astype(np.uint8)
    packed = np.packbits(padded, axis=-1, bitorder="little")
    words: RingArray = packed.view("<u8").astype(np.uint64)
    return words


def unpack_bits(words: RingArray, count: int) -> RingArray:
    """Inverse of :func:`pack_bits`: the first ``count`` bits as 0/1 ``uint64``."""
    raw = np.ascontiguousarray(words.astype("<u8")).view(np.uint8)
    bits = np.unpackbits(raw, axis=-1, bitorder="little")[..., :count]
    unpacked: RingArray = bits.astype(np.uint64)
    return unpacked


class Method(StrEnum):
    """The correlations a dealer hands out, named as its methods."""

    INPUT_MASK = "input_mask"
    MUL = "mul_triple"
    MATMUL = "matmul_triple"
    CONV = "conv_triple"
    AND = "and_triples"
    TRUNCATION = "truncation_pair"
    COMPARISON = "comparison_mask"


# Per method: how many shapes and how many integer parameters a request carries.
_ARITY: Final = {
    Method.INPUT_MASK: (1, 1),  # owner
    Method.MUL: (2, 0),
    Method.MATMUL: (2, 0),
    Method.CONV: (2, 4),  # stride (2), padding (2)
    Method.AND: (1, 0),
    Method.TRUNCATION: (1, 1),  # fractional bits
    Method.COMPARISON: (0, 1),  # count
}


def _shape(value: object, name: str) -> tuple[int, ...]:
    if not isinstance(value, tuple | list) or len(value) > MAX_NDIM:
        raise PrivacyError(f"{name} must be a tuple of at most {MAX_NDIM} ints, got {value!r:.80}")
    dims = []
    for dim in value:
        if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or not 0 <= dim < 2**62:
            raise PrivacyError(f"{name} must hold ints in [0, 2**62), got {value!r:.80}")
        dims.append(int(dim))
    return tuple(dims)


def _broadcast(left: tuple[int, ...], right: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(left, right))
    except ValueError:
        raise PrivacyError(f"shapes must broadcast, got {left} and {right}") from None


def _matmul_shape(left: tuple[int, ...], right: tuple[int, ...]) -> tuple[int, ...]:
    """numpy's ``matmul`` result shape (a 1-d left operand is a row, a 1-d right a column)."""
    if not left or not right:
        raise PrivacyError(f"matmul operands must have >= 1 axis, got {left} and {right}")
    lhs = left if len(left) > 1 else (1, *left)
    rhs = right if len(right) > 1 else (*right, 1)
    if lhs[-1] != rhs[-2]:
        raise PrivacyError(f"matmul shapes must align, got {left} and {right}")
    shape = (*_broadcast(lhs[:-2], rhs[:-2]), lhs[-2], rhs[-1])
    if len(right) == 1:
        shape = shape[:-1]
    if len(left) == 1:
        shape = (*shape[:-2], shape[-1]) if len(right) > 1 else shape[:-1]
    return shape


def _conv_shape(
    images: tuple[int, ...], kernels: tuple[int, ...], geometry: ConvGeometry
) -> tuple[int, ...]:
    """:func:`~privet.mpc.ring.ring_conv2d`'s result shape, ``(..., N, O, H_out, W_out)``."""
    if len(images) < 4 or len(kernels) < 4:
        raise PrivacyError(
            "images must be (..., N, C, H, W) and kernels (..., O, C, kh, kw), "
            f"got shapes {images} and {kernels}"
        )
    if images[-3] != kernels[-3]:
        raise PrivacyError(
            f"kernel channels must equal image channels {images[-3]}, got {kernels[-3]}"
        )
    out_h, out_w = geometry.output_size((images[-2], images[-1]), (kernels[-2], kernels[-1]))
    return (*_broadcast(images[:-3], (*kernels[:-4], 1)), kernels[-4], out_h, out_w)


@dataclass(frozen=True)
class ItemRequest:
    """One dealer call, described by public values only: what crosses to the dealer process.

    Parameters
    ----------
    method
        Which correlation.
    shapes
        Its shape arguments: one (input mask, AND triples, truncation pair), two (left
        and right operands, images and kernels) or none (comparison mask).
    params
        Its integer arguments: the owner (input mask), the fractional bits (truncation
        pair), the count (comparison mask), or stride and padding (convolution).
    """

    method: Method
    shapes: tuple[tuple[int, ...], ...] = ()
    params: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        try:
            method = Method(self.method)
        except ValueError:
            names = ", ".join(m.value for m in Method)
            raise PrivacyError(f"method must be one of {names}, got {self.method!r:.80}") from None
        shape_count, param_count = _ARITY[method]
        if not isinstance(self.shapes, tuple | list) or len(self.shapes) != shape_count:
            raise PrivacyError(
                f"{method.value} takes {shape_count} shapes, got {self.shapes!r:.80}"
            )
        if not isinstance(self.params, tuple | list) or len(self.params) != param_count:
            raise PrivacyError(
                f"{method.value} takes {param_count} integer parameters, got {self.params!r:.80}"
            )
        shapes = tuple(_shape(shape, f"{method.value} shape") for shape in self.shapes)
        params = []
        for value in self.params:
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise PrivacyError(
                    f"{method.value} parameters must be ints, got {self.params!r:.80}"
                )
            params.append(int(value))
        object.__setattr__(self, "method", method)
        object.__setattr__(self, "shapes", shapes)
        object.__setattr__(self, "params", tuple(params))
        self.layout()  # incompatible shapes are refused here, before anything is drawn

    @property
    def geometry(self) -> ConvGeometry:
        """The convolution's stride and padding (``conv_triple`` requests only)."""
        if self.method is not Method.CONV:
            raise PrivacyError(f"geometry is defined for conv_triple, got {self.method.value}")
        sh, sw, ph, pw = self.params
        return ConvGeometry((sh, sw), (ph, pw))

    def layout(self) -> tuple[tuple[int, ...], ...]:
        """Shapes of the shares the dealer hands out for this item, in the order it draws
        them from each party's stream (the fields of the returned record, in order)."""
        shapes, params = self.shapes, self.params
        match self.method:
            case Method.INPUT_MASK:
                return shapes
            case Method.MUL:
                return (*shapes, _broadcast(shapes[0], shapes[1]))
            case Method.MATMUL:
                return (*shapes, _matmul_shape(shapes[0], shapes[1]))
            case Method.CONV:
                return (*shapes, _conv_shape(shapes[0], shapes[1], self.geometry))
            case Method.AND:
                return shapes * 3
            case Method.TRUNCATION:
                if not 0 <= params[0] < 64:
                    raise PrivacyError(f"fractional_bits must be in [0, 63], got {params[0]}")
                return shapes * 3
            case Method.COMPARISON:
                count = params[0]
                if count < 0:
                    raise PrivacyError(f"count must be >= 0, got {count}")
                words = packed_words(count)
                return ((count,), (63, words), (words,), (words,), (count,))
        raise PrivacyError(f"method has no layout: {self.method!r}")  # pragma: no cover

    def describe(self) -> str:
        """``method(shapes; params)``, as error messages name an item."""
        shapes = ", ".join(str(shape) for shape in self.shapes)
        params = f"; {', '.join(map(str, self.params))}" if self.params else ""
        return f"{self.method.value}({shapes}{params})"

    def nbytes(self) -> int:
        """Bytes of one party's shares of this item (what the last party receives)."""
        # Python integers: a hostile shape cannot wrap around int64 and slip under a cap.
        return 8 * sum(math.prod(shape) for shape in self.layout())


@dataclass(frozen=True)
class DealerPlan:
    """The items a program asks its dealer for, in order: public shapes only.

    The sequence depends on the program and its inputs' shapes, never on their
    values, so a plan recorded once (:meth:`Dealer.plan`) serves every later run
    of the same program on inputs of the same shapes: the dealer makes its items
    ahead of time (:meth:`Dealer.preprocess`; the dealer process streams them,
    :func:`~privet.mpc.launcher.launch`'s ``plan``).

    Parameters
    ----------
    num_parties
        ``n >= 2`` computing parties.
    requests
        The items, in the order the program asks for them.
    """

    num_parties: int
    requests: tuple[ItemRequest, ...]

    def __post_init__(self) -> None:
        n = self.num_parties
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise PrivacyError(f"num_parties must be an integer >= 2, got {n!r}")
        if not isinstance(self.requests, tuple) or not all(
            isinstance(request, ItemRequest) for request in self.requests
        ):
            raise PrivacyError(
                f"requests must be a tuple of ItemRequest, got {self.requests!r:.80}"
            )
        for index, request in enumerate(self.requests):
            if request.method is Method.INPUT_MASK and not 0 <= request.params[0] < n:
                raise PrivacyError(
                    f"item {index}'s owner must be in [0, {n - 1}], got {request.params[0]}"
                )

    def __len__(self) -> int:
        return len(self.requests)

    def nbytes(self) -> int:
        """Bytes of one party's rows of every item: what the dealer sends the last party
        (the masks for inputs' owners aside), and what it holds per party when made ahead."""
        return sum(request.nbytes() for request in self.requests)


class Delivery(NamedTuple):
    """The share stacks of one item in :meth:`ItemRequest.layout` order (party axis first:
    all parties for a full dealer, one row for a party's view) and, where the item is an
    input mask whose owner is local, the mask ``r`` itself."""

    stacks: tuple[RingArray, ...]
    value: RingArray | None


class _Correlations:
    """The :class:`CorrelationSource` methods, each one :class:`ItemRequest` answered by
    :meth:`produce` (a full dealer's or a party's view)."""

    num_parties: int

    def produce(self, request: ItemRequest) -> Delivery:  # pragma: no cover - abstract
        raise NotImplementedError

    def input_mask(self, shape: tuple[int, ...], owner: int) -> InputMask:
        """A mask for secret-sharing ``owner``'s input: the owner opens ``x - r`` to all."""
        check_party(owner, self.num_parties, "owner")
        stacks, value = self.produce(ItemRequest(Method.INPUT_MASK, (shape,), (owner,)))
        return InputMask(stacks[0], value)

    def mul_triple(self, left_shape: tuple[int, ...], right_shape: tuple[int, ...]) -> Triple:
        """``c = a * b`` elementwise with numpy broadcasting (``c`` has the broadcast shape)."""
        return Triple(*self.produce(ItemRequest(Method.MUL, (left_shape, right_shape))).stacks)

    def matmul_triple(self, left_shape: tuple[int, ...], right_shape: tuple[int, ...]) -> Triple:
        """``c = a @ b`` in the ring (numpy matmul semantics)."""
        request = ItemRequest(Method.MATMUL, (left_shape, right_shape))
        return Triple(*self.produce(request).stacks)

    def conv_triple(
        self,
        image_shape: tuple[int, ...],
        kernel_shape: tuple[int, ...],
        geometry: ConvGeometry,
    ) -> Triple:
        """``c = conv2d(a, b)`` in the ring (:func:`~privet.mpc.ring.ring_conv2d`): images
        ``(N, C, H, W)``, kernels ``(O, C, kh, kw)``."""
        params = (*geometry.stride, *geometry.padding)
        request = ItemRequest(Method.CONV, (image_shape, kernel_shape), params)
        return Triple(*self.produce(request).stacks)

    def and_triples(self, shape: tuple[int, ...]) -> Triple:
        """Packed bitwise triples ``c = a & b`` as XOR shares."""
        return Triple(*self.produce(ItemRequest(Method.AND, (shape,))).stacks)

    def truncation_pair(self, shape: tuple[int, ...], fractional_bits: int) -> TruncationPair:
        """Shares of ``r``, ``(r mod 2^63) >> f`` and ``r >> 63`` for
        :func:`~privet.mpc.protocols.truncate`."""
        request = ItemRequest(Method.TRUNCATION, (shape,), (fractional_bits,))
        return TruncationPair(*self.produce(request).stacks)

    def comparison_mask(self, count: int) -> ComparisonMask:
        """Randomness for one batch of ``count`` sign extractions (:class:`ComparisonMask`)."""
        return ComparisonMask(*self.produce(ItemRequest(Method.COMPARISON, (), (count,))).stacks)


class Dealer(_Correlations):
    """Correlated randomness for ``num_parties`` parties, shares seed-compressed.

    Items are made when the protocols ask for them, or ahead of time: every item
    the dealer made is in :meth:`plan`, and :meth:`preprocess` makes a plan's
    items at once (the offline phase), so that the online phase only takes them.
    Either way the items are the same, bit for bit, for the same seed.

    Parameters
    ----------
    num_parties
        ``n >= 2`` computing parties.
    seed
        32 bytes fixing everything the dealer draws (simulation and tests);
        ``None`` draws it from the OS CSPRNG.
    """

    def __init__(self, num_parties: int, seed: bytes | None = None) -> None:
        if isinstance(num_parties, bool) or not isinstance(num_parties, int) or num_parties < 2:
            raise PrivacyError(f"num_parties must be an integer >= 2, got {num_parties!r}")
        master = Prg(seed if seed is not None else fresh_seed())
        seeds = master.words((num_parties + 1, SEED_BYTES // 8))
        self.num_parties = num_parties
        self._secret = Prg(seeds[0].tobytes())
        self._stream_seeds = tuple(row.tobytes() for row in seeds[1:num_parties])
        self._party_streams = [Prg(seed) for seed in self._stream_seeds]
        self.stats = DealerStats()
        self._made: list[ItemRequest] = []
        self._ahead: deque[tuple[ItemRequest, Delivery]] = deque()
        self._taken = 0

    def stream_seed(self, party: int) -> bytes:
        """The seed of party ``party``'s share stream (``party < n - 1``): what the dealer
        process sends that party once, so its shares never travel."""
        last = self.num_parties - 2
        if isinstance(party, bool) or not isinstance(party, int) or not 0 <= party <= last:
            raise PrivacyError(
                f"party must be in [0, {last}] (the last party's shares are sent), got {party!r}"
            )
        seed: bytes = self._stream_seeds[party]
        return seed

    # -- ahead of time -------------------------------------------------------------------------

    def plan(self) -> DealerPlan:
        """Every item this dealer has made so far, in order: the plan a later run of the
        same program on inputs of the same shapes will ask for."""
        return DealerPlan(self.num_parties, tuple(self._made))

    @property
    def items_ahead(self) -> int:
        """Items made by :meth:`preprocess` and not yet taken."""
        return len(self._ahead)

    def preprocess(self, plan: DealerPlan) -> float:
        """Make every item of ``plan`` now (the offline phase); returns the seconds it took.

        The protocols then take them in order; each request must be the plan's next
        item, else :class:`~privet.errors.PrivacyError` names both (a plan recorded from
        another program, or from inputs of other shapes). Once the plan is used up, items
        are made on request again. The items are held in memory until taken: the
        plan's :meth:`~privet.mpc.plan.DealerPlan.nbytes` times the number of parties.
        """
        if not isinstance(plan, DealerPlan):
            raise PrivacyError(f"plan must be a privet.mpc DealerPlan, got {plan!r:.80}")
        if plan.num_parties != self.num_parties:
            raise PrivacyError(
                f"plan must be for {self.num_parties} parties, got one for {plan.num_parties}"
            )
        started = time.perf_counter()
        for request in plan.requests:
            self._ahead.append((request, self._make(request)))
        return time.perf_counter() - started

    def produce(self, request: ItemRequest) -> Delivery:
        """The item ``request`` describes: exactly what the method it names returns."""
        index, self._taken = self._taken, self._taken + 1
        if self._ahead:
            planned, delivery = self._ahead.popleft()
            if planned != request:
                self._ahead.clear()  # the streams have moved on: nothing left is usable
                raise PrivacyError(
                    f"item {index} must follow the plan, which has {planned.describe()}, "
                    f"but the program asks for {request.describe()}: record the plan from "
                    "the same program on inputs of the same shapes"
                )
            return delivery
        return self._make(request)

    def _make(self, request: ItemRequest) -> Delivery:
        started = time.perf_counter()
        shapes, params = request.shapes, request.params
        match request.method:
            case Method.INPUT_MASK:
                check_party(params[0], self.num_parties, "owner")
                r = self._uniform(shapes[0])
                delivery = Delivery((self._share(r),), r)
                self.stats.bytes_sent += r.nbytes  # r itself also goes to the owner
            case Method.MUL:
                a, b = self._uniform(shapes[0]), self._uniform(shapes[1])
                delivery = self._shared(a, b, a * b)
            case Method.MATMUL:
                a, b = self._uniform(shapes[0]), self._uniform(shapes[1])
                delivery = self._shared(a, b, ring_matmul(a, b))
            case Method.CONV:
                a, b = self._uniform(shapes[0]), self._uniform(shapes[1])
                delivery = self._shared(a, b, ring_conv2d(a, b, request.geometry))
            case Method.AND:
                a, b = self._uniform(shapes[0]), self._uniform(shapes[0])
                delivery = Delivery(
                    (self._share_bits(a), self._share_bits(b), self._share_bits(a & b)), None
                )
            case Method.TRUNCATION:
                r = self._uniform(shapes[0])
                low_shifted = (r & LOW_MASK) >> np.uint64(params[0])
                delivery = self._shared(r, low_shifted, r >> TOP_BIT)
            case Method.COMPARISON:
                delivery = self._comparison_mask(params[0])
        self._made.append(request)
        self.stats.seconds += time.perf_counter() - started
        return delivery

    # -- sharing -------------------------------------------------------------------------------

    def _shared(self, *values: RingArray) -> Delivery:
        return Delivery(tuple(self._share(value) for value in values), None)

    def _share(self, value: RingArray) -> RingArray:
        """Additive shares of ``value`` (party axis first); the last party's is the rest."""
        shares = np.empty((self.num_parties, *value.shape), dtype=np.uint64)
        total = np.zeros(value.shape, dtype=np.uint64)
        for party, stream in enumerate(self._party_streams):
            shares[party] = stream.words(value.shape)
            total += shares[party]
        shares[-1] = value - total
        self._count(value)
        return shares

    def _share_bits(self, value: RingArray) -> RingArray:
        """XOR shares of packed bits ``value``."""
        shares = np.empty((self.num_parties, *value.shape), dtype=np.uint64)
        total = np.zeros(value.shape, dtype=np.uint64)
        for party, stream in enumerate(self._party_streams):
            shares[party] = stream.words(value.shape)
            total ^= shares[party]
        shares[-1] = value ^ total
        self._count(value)
        return shares

    def _count(self, value: RingArray) -> None:
        self.stats.items += 1
        self.stats.bytes_sent += value.nbytes

    def _uniform(self, shape: Sequence[int]) -> RingArray:
        return self._secret.words(tuple(shape))

    def _comparison_mask(self, count: int) -> Delivery:
        r = self._uniform((count,))
        planes = bit_planes(r)  # bit k of every element, packed: (64, W)
        rho = self._uniform((count,)) & np.uint64(1)
        stacks = (
            self._share(r),
            self._share_bits(planes[:63]),
            self._share_bits(planes[63]),
            self._share_bits(pack_bits(rho)),
            self._share(rho),
        )
        return Delivery(stacks, None)


class PartyDealer(_Correlations):
    """One party's view of a :class:`Dealer`: the same methods, one-row share stacks.

    The rows equal row ``party`` of what ``Dealer(num_parties, seed)`` returns for the same
    sequence of calls. Party ``i < n - 1`` draws them from its stream (``stream_seed``,
    from :meth:`Dealer.stream_seed`): shapes only, no products computed, nothing received
    but the mask ``r`` of an input it owns. The last party receives every row. Both come
    through ``fetch``, called with the item's index (0, 1, ... in call order) and request.
    :attr:`stats` counts what the full dealer's do, so the two agree. It holds no other
    party's seed and computes nothing a dealer computes.

    Parameters
    ----------
    num_parties
        ``n >= 2`` computing parties.
    party
        This party's index.
    stream_seed
        Party ``i < n - 1``: its stream's seed; the last party: ``None``.
    fetch
        ``fetch(index, request)``: the last party's rows of every item; for the others,
        only input masks they own arrive (``Delivery((), r)``).
    """

    def __init__(
        self,
        num_parties: int,
        party: int,
        stream_seed: bytes | None,
        fetch: Callable[[int, ItemRequest], Delivery],
    ) -> None:
        if isinstance(num_parties, bool) or not isinstance(num_parties, int) or num_parties < 2:
            raise PrivacyError(f"num_parties must be an integer >= 2, got {num_parties!r}")
        if isinstance(party, bool) or not isinstance(party, int) or not 0 <= party < num_parties:
            raise PrivacyError(f"party must be in [0, {num_parties - 1}], got {party!r}")
        last = party == num_parties - 1
        if last != (stream_seed is None):
            wanted = "None (its shares are sent)" if last else f"{SEED_BYTES} bytes"
            raise PrivacyError(
                f"stream_seed of party {party} must be {wanted}, got {stream_seed!r:.20}"
            )
        self.num_parties = num_parties
        self.party = party
        self.stats = DealerStats()
        self._stream = Prg(stream_seed) if stream_seed is not None else None
        self._fetch = fetch
        self._index = 0

    def produce(self, request: ItemRequest) -> Delivery:
        """This party's rows of the item ``request`` describes (and ``r`` for its inputs)."""
        layout = request.layout()
        index, self._index = self._index, self._index + 1
        owned = request.method is Method.INPUT_MASK and request.params[0] == self.party
        if self._stream is not None:
            stacks = tuple(self._stream.words(shape)[None] for shape in layout)
            value = self._fetch(index, request).value if owned else None
        else:
            stacks, value = self._fetch(index, request)
        self._check(request, layout, Delivery(stacks, value), owned)
        for shape in layout:
            self.stats.items += 1
            self.stats.bytes_sent += 8 * math.prod(shape)
        if request.method is Method.INPUT_MASK:
            self.stats.bytes_sent += 8 * math.prod(layout[0])
        return Delivery(stacks, value)

    def _check(
        self, request: ItemRequest, layout: tuple[tuple[int, ...], ...], got: Delivery, owned: bool
    ) -> None:
        expected = [(1, *shape) for shape in layout]
        shapes = [stack.shape if isinstance(stack, np.ndarray) else None for stack in got.stacks]
        if shapes != expected or any(stack.dtype != np.uint64 for stack in got.stacks):
            raise PrivacyError(
                f"dealer rows for {request.method.value} must be uint64 of shapes {expected}, "
                f"got {shapes}"
            )
        if owned != (got.value is not None):
            raise PrivacyError(
                f"the input mask's value must reach its owner only, got "
                f"{'none' if got.value is None else 'one'} at party {self.party}"
            )
        if got.value is not None and (got.value.shape != layout[0] or got.value.dtype != np.uint64):
            raise PrivacyError(
                f"input mask value must be uint64 of shape {layout[0]}, got {got.value.shape}"
            )
