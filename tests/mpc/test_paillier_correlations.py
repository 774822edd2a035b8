"""Dealer-free correlations from Paillier: every item's relation, the masks, and the same
MPC outputs as with the dealer (privet issue 8)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

pytest.importorskip("gmpy2", reason="the he extra (pip install 'privet[he]')")

from privet.errors import PrivacyError
from privet.mpc import convolution
from privet.mpc.dealer import CorrelationSource, Dealer, ItemRequest, Method, pack_bits
from privet.mpc.paillier_correlations import PaillierCorrelations
from privet.mpc.paillier_products import (
    MIN_STATISTICAL_BITS,
    BilinearForm,
    EncryptionRandomness,
    ProductParty,
    Reduce,
    bilinear_products,
    matrix_products,
    multi_power,
    multi_power_naive,
    slot_layout,
)
from privet.mpc.ring import (
    LOW_MASK,
    ConvGeometry,
    FixedPoint,
    RingArray,
    bit_planes,
    ring_conv2d,
    ring_matmul_naive,
)
from privet.mpc.runtime import Simulator
from privet.mpc.tensor import Session

SEED = bytes(range(32))
TEST_BITS = 1024
SIGMA = MIN_STATISTICAL_BITS


def correlations(
    randomness: EncryptionRandomness = EncryptionRandomness.EXACT, seed: bytes | None = SEED
) -> PaillierCorrelations:
    return PaillierCorrelations(
        2, seed, key_bits=TEST_BITS, insecure_for_tests=True, randomness=randomness
    )


@pytest.fixture(scope="module", params=list(EncryptionRandomness))
def source(request: pytest.FixtureRequest) -> PaillierCorrelations:
    return correlations(request.param)


def total(stack: RingArray) -> RingArray:
    with np.errstate(over="ignore"):
        summed: RingArray = stack[0] + stack[1]
    return summed


def uniform(shape: tuple[int, ...], rng: np.random.Generator) -> RingArray:
    return rng.integers(0, 2**64, size=shape, dtype=np.uint64)


# -- every item satisfies the dealer's relation ---------------------------------------------------


def test_it_is_a_correlation_source_with_input_masks_known_to_their_owner(
    source: PaillierCorrelations,
) -> None:
    assert isinstance(source, CorrelationSource)
    for owner in (0, 1):
        mask = source.input_mask((3, 2), owner)
        assert mask.value is not None
        assert mask.shares.shape == (2, 3, 2)
        np.testing.assert_array_equal(total(mask.shares), mask.value)
        np.testing.assert_array_equal(mask.shares[1 - owner], 0)  # nothing sent


@pytest.mark.parametrize(("left", "right"), [((5,), (5,)), ((3, 1), (1, 4)), ((2, 1, 3), (3,))])
def test_mul_triples_multiply_in_the_ring(
    source: PaillierCorrelations, left: tuple[int, ...], right: tuple[int, ...]
) -> None:
    a, b, c = source.mul_triple(left, right)
    with np.errstate(over="ignore"):
        expected = total(a) * total(b)  # numpy's uint64 product wraps mod 2^64
    np.testing.assert_array_equal(total(c), expected)
    assert c.shape == (2, *np.broadcast_shapes(left, right))


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ((3, 4), (4, 2)),  # packed along m
        ((2, 5), (5, 30)),  # n much longer than m: the other party packs
        ((1, 30, 3), (2, 3, 1)),  # batch axes broadcast
        ((7,), (7, 3)),
        ((4, 7), (7,)),
        ((6,), (6,)),
        ((2, 0), (0, 3)),  # empty inner dimension: c = 0
    ],
)
def test_matmul_triples_satisfy_c_equals_a_at_b(
    source: PaillierCorrelations, left: tuple[int, ...], right: tuple[int, ...]
) -> None:
    a, b, c = source.matmul_triple(left, right)
    np.testing.assert_array_equal(total(c), ring_matmul_naive(total(a), total(b)))


@pytest.mark.parametrize(
    ("images", "kernels", "geometry"),
    [
        ((2, 3, 5, 5), (4, 3, 3, 2), ConvGeometry((2, 1), (1, 0))),
        ((1, 2, 1, 4, 4), (3, 1, 2, 2), ConvGeometry()),
    ],
)
def test_conv_triples_satisfy_c_equals_conv_of_a_and_b(
    source: PaillierCorrelations,
    images: tuple[int, ...],
    kernels: tuple[int, ...],
    geometry: ConvGeometry,
) -> None:
    a, b, c = source.conv_triple(images, kernels, geometry)
    np.testing.assert_array_equal(total(c), ring_conv2d(total(a), total(b), geometry))


def test_and_triples_satisfy_c_equals_a_and_b_bitwise(source: PaillierCorrelations) -> None:
    a, b, c = source.and_triples((2, 3))
    np.testing.assert_array_equal(c[0] ^ c[1], (a[0] ^ a[1]) & (b[0] ^ b[1]))


@pytest.mark.parametrize("bits", [0, 16, 63])
def test_truncation_pairs_hold_the_shifted_low_bits_and_the_top_bit(
    source: PaillierCorrelations, bits: int
) -> None:
    r, low_shifted, high_bit = source.truncation_pair((3, 3), bits)
    value = total(r)
    np.testing.assert_array_equal(total(low_shifted), (value & LOW_MASK) >> np.uint64(bits))
    np.testing.assert_array_equal(total(high_bit), value >> np.uint64(63))


@pytest.mark.parametrize("count", [0, 1, 70])
def test_comparison_masks_share_r_its_bits_and_a_bit_rho_both_ways(
    source: PaillierCorrelations, count: int
) -> None:
    mask = source.comparison_mask(count)
    planes = bit_planes(total(mask.r))
    np.testing.assert_array_equal(mask.low_bits[0] ^ mask.low_bits[1], planes[:63])
    np.testing.assert_array_equal(mask.high_bit[0] ^ mask.high_bit[1], planes[63])
    rho = total(mask.rho)
    assert set(rho.tolist()) <= {0, 1}
    np.testing.assert_array_equal(mask.rho_bits[0] ^ mask.rho_bits[1], pack_bits(rho))


def test_privet_mpc_does_not_import_paillier_or_gmpy2() -> None:
    code = "import sys, privet.mpc; print(sorted(m for m in sys.modules if 'gmpy2' in m or "
    code += "m.startswith(('privet.he', 'privet.mpc.paillier'))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_seed_fixes_the_items_although_the_keys_are_fresh() -> None:
    first, second = correlations(), correlations()
    assert first.parties[0].public_key != second.parties[0].public_key
    for name, args in [("mul_triple", ((4,), (4,))), ("truncation_pair", ((3,), 8))]:
        for one, two in zip(getattr(first, name)(*args), getattr(second, name)(*args), strict=True):
            np.testing.assert_array_equal(one, two)
    fresh = correlations(seed=None).mul_triple((4,), (4,))
    assert not np.array_equal(fresh.a, first.mul_triple((4,), (4,)).a)


def test_stats_count_the_keys_and_every_ciphertext_sent() -> None:
    source = correlations()
    width = source.parties[0].public_key.ciphertext_bytes
    keys = 2 * TEST_BITS // 8
    assert source.stats.bytes_sent == keys
    source.mul_triple((10,), (10,))
    slots = slot_layout(TEST_BITS, 128, Reduce.RING, SIGMA).slots
    # Each way: 10 encrypted shares, ceil(10 / slots) masked replies.
    assert source.stats.bytes_sent == keys + 2 * (10 + math.ceil(10 / slots)) * width
    assert source.stats.items == 3
    assert source.stats.seconds > 0
    assert [p.traffic.decryptions for p in source.parties] == [math.ceil(10 / slots)] * 2


# -- the product protocols ----------------------------------------------------------------------


def parties(
    randomness: EncryptionRandomness = EncryptionRandomness.EXACT,
) -> tuple[ProductParty, ProductParty]:
    rng = np.random.default_rng(5)
    pair = tuple(
        ProductParty(
            i,
            key_bits=TEST_BITS,
            insecure_for_tests=True,
            randomness=randomness,
            seed=bytes([i]) * 32,
            random_bytes=rng.bytes,
        )
        for i in range(2)
    )
    pair[0].meet(pair[1].public_key)
    pair[1].meet(pair[0].public_key)
    return pair[0], pair[1]


def test_straus_multi_exponentiation_equals_the_plain_powers() -> None:
    rng = np.random.default_rng(1)
    modulus = (1 << 521) - 1
    for k, columns in [(1, 1), (5, 3), (40, 2), (3, 50)]:
        bases = [int(v) for v in rng.integers(2, 2**62, size=k)]
        exponents = uniform((k, columns), rng)
        exponents[0, 0] = 0
        assert multi_power(bases, exponents, modulus) == multi_power_naive(
            bases, exponents, modulus
        )


@pytest.mark.parametrize("reduce", list(Reduce))
def test_bilinear_forms_are_shared_exactly(reduce: Reduce) -> None:
    rng = np.random.default_rng(2)
    encryptor, multiplier = parties()
    form = BilinearForm(((1, 0, 3), (2, 5, 0)), 8, 64, reduce)
    x, y = rng.integers(0, 256, size=(13, 3), dtype=np.uint64), uniform((13, 3), rng)
    mine, theirs = bilinear_products(encryptor, multiplier, x, y, form, SIGMA)
    exact = [
        [
            sum(w * int(a) * int(b) for w, a, b in zip(row, xs, ys, strict=True))
            for row in form.weights
        ]
        for xs, ys in zip(x.tolist(), y.tolist(), strict=True)
    ]
    if reduce is Reduce.RING:
        expected = np.array([[v % 2**64 for v in row] for row in exact], dtype=np.uint64)
        np.testing.assert_array_equal(total(np.stack([mine, theirs])), expected)
    else:
        expected = np.array([[v % 2 for v in row] for row in exact], dtype=np.uint64)
        np.testing.assert_array_equal(mine ^ theirs, expected)


@pytest.mark.parametrize(("m", "n"), [(12, 2), (2, 12)])
def test_matrix_products_are_shared_exactly_whoever_packs(m: int, n: int) -> None:
    rng = np.random.default_rng(3)
    holder_x, holder_y = parties(EncryptionRandomness.DJN)
    x, y = uniform((2, m, 4), rng), uniform((2, 4, n), rng)
    before = holder_x.traffic.encryptions
    mine, theirs = matrix_products(holder_x, holder_y, x, y, SIGMA)
    np.testing.assert_array_equal(total(np.stack([mine, theirs])), ring_matmul_naive(x, y))
    # The longer side is packed: x's holder encrypts when m is the longer one.
    assert (holder_x.traffic.encryptions > before) == (m > n)


# -- privacy sanity: what the decrypting party sees is masked ------------------------------------


@pytest.mark.parametrize(
    "form",
    [
        BilinearForm(((1,),), 64, 64, Reduce.RING),  # mul triples
        BilinearForm(((1,),), 1, 1, Reduce.PARITY),  # AND triples
        BilinearForm((tuple(1 << (k + 1) for k in range(63)),), 1, 1, Reduce.RING),  # r's bits
    ],
)
def test_masks_exceed_every_form_by_sigma_bits_and_cover_the_ring(form: BilinearForm) -> None:
    layout = slot_layout(TEST_BITS, form.bound_bits, form.reduce, SIGMA, form.outputs)
    assert layout.mask_bits >= form.bound_bits + SIGMA
    if form.reduce is Reduce.RING:
        assert layout.mask_bits >= 64 + SIGMA  # -s mod 2^64 is exactly uniform
    assert layout.slots * layout.slot_bits < TEST_BITS  # no slot is ever reduced mod n
    # A matmul's sums of k products grow with log2(k), and the mask with them.
    inner = slot_layout(TEST_BITS, (1000 * (2**64 - 1) ** 2).bit_length(), Reduce.RING, SIGMA)
    assert inner.mask_bits >= 128 + math.log2(1000) + SIGMA


def test_the_decrypting_party_sees_products_plus_uniform_masks_not_the_products() -> None:
    """What the encryptor decrypts is x y + s with s uniform on [0, 2^L): never the raw
    product. Its top 4 bits are uniform whatever the multiplier's y (chi-square at a
    false-alarm rate of 1e-3 per y, fixed seed)."""
    rng = np.random.default_rng(4)
    encryptor, multiplier = parties()
    form = BilinearForm(((1,),), 64, 64, Reduce.RING)
    layout = slot_layout(TEST_BITS, form.bound_bits, form.reduce, SIGMA)
    x = uniform((600, 1), rng)
    for y in (np.zeros((600, 1), dtype=np.uint64), np.full((600, 1), 2**64 - 1, np.uint64)):
        request = encryptor.encrypt_units(x, form, layout)
        reply, masks = multiplier.answer_units(request, y, form, layout)
        assert all(c != 1 for c in reply.values)  # rerandomized, even where y = 0
        seen = encryptor.read_slots(reply, layout, layout.slots)[:600]
        products = [
            int(a) * int(b) for a, b in zip(x[:, 0].tolist(), y[:, 0].tolist(), strict=True)
        ]
        assert [v - p for v, p in zip(seen, products, strict=True)] == masks
        assert not any(v == p for v, p in zip(seen, products, strict=True))
        top = np.bincount([v >> (layout.mask_bits - 4) for v in seen], minlength=16)[:16]
        assert stats.chisquare(top).pvalue > 1e-3


# -- the key check: the same MPC outputs as with the dealer --------------------------------------


def run_integer_program(dealer: CorrelationSource) -> list[np.ndarray]:
    """Exact integer arithmetic (0 fractional bits: truncation by 2^0 is exact)."""
    session = Session(Simulator(2), dealer, FixedPoint(0))
    rng = np.random.default_rng(7)
    x = session.share(rng.integers(-50, 50, size=(3, 4)), owner=0)
    y = session.share(rng.integers(-50, 50, size=(3, 4)), owner=1)
    w = session.share(rng.integers(-9, 9, size=(4, 2)), owner=1)
    images = session.share(rng.integers(-5, 5, size=(1, 2, 4, 4)), owner=0)
    kernels = session.share(rng.integers(-3, 3, size=(2, 2, 2, 2)), owner=1)
    return [
        (x + y).reveal(),
        (x * y).reveal(),
        (x @ w).reveal(),
        (x < y).reveal(),
        (x - y).relu().reveal(),
        convolution.conv2d(images, kernels, padding=1).reveal(),
    ]


@pytest.mark.slow
def test_integer_programs_reveal_exactly_the_dealers_outputs() -> None:
    dealt = run_integer_program(Dealer(2, SEED))
    paillier = run_integer_program(correlations(EncryptionRandomness.DJN))
    for one, two in zip(dealt, paillier, strict=True):
        np.testing.assert_array_equal(one, two)


def run_fixed_point_program(dealer: CorrelationSource) -> list[np.ndarray]:
    """A product, and a small MLP forward: relu(x W1 + b1) W2."""
    session = Session(Simulator(2), dealer)
    rng = np.random.default_rng(8)
    x = session.share(rng.normal(size=(4, 3)), owner=0)
    w1 = session.share(rng.normal(size=(3, 5)), owner=1)
    b1 = session.share(rng.normal(size=5), owner=1)
    w2 = session.share(rng.normal(size=(5, 2)), owner=1)
    hidden = (x @ w1 + b1).relu()
    return [(x * x).reveal(), hidden.reveal(), (hidden @ w2).reveal(), w2.reveal()]


@pytest.mark.slow
def test_fixed_point_programs_agree_with_the_dealer_within_their_roundings() -> None:
    """Each truncation returns floor(v / 2^f) or one more, whichever correlations made it,
    so one truncated result differs by at most 1 ulp = 2^-16. The MLP's output truncates
    sums A, B that differ by the hidden layer's difference through W2, |A - B| <= sum_i
    |W2[i, j]| ulp; results in {floor(A), floor(A) + 1} and {floor(B), floor(B) + 1} differ
    by at most |A - B| + 2 ulp."""
    ulp = 2.0**-16
    dealt = run_fixed_point_program(Dealer(2, SEED))
    square, hidden, output, w2 = run_fixed_point_program(correlations(EncryptionRandomness.DJN))
    assert np.abs(square - dealt[0]).max() <= ulp
    assert np.abs(hidden - dealt[1]).max() <= ulp
    bound = (2 + np.abs(w2).sum(axis=0)) * ulp
    assert (np.abs(output - dealt[2]) <= bound[None, :]).all()
    np.testing.assert_array_equal(w2, dealt[3])  # sharing and revealing are exact


# -- bad inputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_parties": 3}, r"num_parties must be 2 \(Paillier correlations are two-party\)"),
        ({"num_parties": True}, "num_parties must be 2"),
        ({"key_bits": "2048"}, "key_bits must be an int, got str"),
        ({"statistical_bits": 39}, "statistical_bits must be an int >= 40, got 39"),
        ({"randomness": "fast"}, "randomness must be one of exact, djn, got 'fast'"),
        (
            {"statistical_bits": 900},
            r"key_bits must be >= 1030 to hold 1 slot\(s\) of a 128-bit product and its "
            r"1028-bit mask, got 1024",
        ),
        ({"insecure_for_tests": False}, r"bits must be >= 2048 \(or >= 1024 with"),
        ({"seed": b"short"}, "seed must be 32 bytes"),
    ],
)
def test_bad_parameters_are_refused_by_name(kwargs: dict[str, object], match: str) -> None:
    arguments: dict[str, object] = {
        "num_parties": 2,
        "seed": SEED,
        "key_bits": TEST_BITS,
        "insecure_for_tests": True,
    }
    arguments.update(kwargs)
    with pytest.raises(PrivacyError, match=match):
        PaillierCorrelations(**arguments)  # type: ignore[arg-type]


def test_bad_requests_and_messages_are_refused() -> None:
    source = correlations()
    with pytest.raises(PrivacyError, match="request must be an ItemRequest"):
        source.produce("mul_triple")  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match="fractional_bits must be in"):
        source.produce(ItemRequest(Method.TRUNCATION, ((2,),), (64,)))
    encryptor, multiplier = parties()
    form = BilinearForm(((1,),), 64, 64, Reduce.RING)
    layout = slot_layout(TEST_BITS, form.bound_bits, form.reduce, SIGMA)
    x = np.arange(3, dtype=np.uint64).reshape(3, 1)
    request = encryptor.encrypt_units(x, form, layout)
    with pytest.raises(PrivacyError, match="ciphertexts must be under the key"):
        encryptor.answer_units(request, x, form, layout)  # its own key, not the peer's
    with pytest.raises(PrivacyError, match="message must hold 2 ciphertexts, got 3"):
        multiplier.answer_units(request, x[:2], form, layout)
    reply, _ = multiplier.answer_units(request, x, form, layout)
    with pytest.raises(PrivacyError, match="ciphertexts must be under the key"):
        multiplier.read_slots(reply, layout, 3)  # only the encryptor can decrypt
    n_squared = encryptor.public_key.n_squared
    forged = type(reply)(
        reply.fingerprint, ((reply.values[0] * 12345 + 1) % n_squared,), reply.width
    )
    with pytest.raises(PrivacyError, match="replies must fill at most 3 slots"):
        encryptor.read_slots(forged, layout, 3)
    with pytest.raises(PrivacyError, match="peer must be the other party's public key"):
        encryptor.meet(encryptor.public_key)
    lonely = ProductParty(
        0,
        key_bits=TEST_BITS,
        insecure_for_tests=True,
        randomness=EncryptionRandomness.EXACT,
        seed=SEED,
        random_bytes=np.random.default_rng(0).bytes,
    )
    with pytest.raises(PrivacyError, match="meet must come first"):
        lonely.answer_units(request, x, form, layout)
