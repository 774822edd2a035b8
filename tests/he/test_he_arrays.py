"""Encrypted numpy arrays (privet.he.arrays): homomorphic identities, bounds, errors.

Expected values are exact: the fixed-point inputs are quantized first
(``q(x) = round(x 2^32) / 2^32``), and every result is compared with the
correctly rounded float64 of the exact rational result (numpy for sums and
products that are exact in float64 at these sizes, ``math.fsum`` for sums).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from privet.errors import PrivacyError
from privet.he import (
    CrtRandomness,
    DjnRandomness,
    EncryptedArray,
    PaillierPublicKey,
    PaillierSecretKey,
    decrypt,
    encrypt,
)
from privet.he.paillier import raw_multiply

KeyPair = tuple[PaillierPublicKey, PaillierSecretKey]
BOUND = 100.0
F = 32
PROPERTY = settings(max_examples=25, deadline=None)

reals = st.one_of(
    st.sampled_from([0.0, -0.0, BOUND, -BOUND, 2.0**-F, -(2.0**-F), 2.0**-33, 99.99999999]),
    st.floats(-BOUND, BOUND, allow_nan=False, width=64),
)


def q(values: object, frac_bits: int = F) -> NDArray[np.float64]:
    """The fixed-point value of ``values`` (round half to even, as the encoder)."""
    array = np.asarray(values, dtype=np.float64)
    return np.ldexp(np.rint(np.ldexp(array, frac_bits)), -frac_bits)


@PROPERTY
@given(a=st.lists(reals, min_size=1, max_size=6), data=st.data())
def test_addition_and_subtraction(
    keypair: KeyPair, djn: DjnRandomness, a: list[float], data: st.DataObject
) -> None:
    public, secret = keypair
    b = data.draw(st.lists(reals, min_size=len(a), max_size=len(a)))
    ea = encrypt(public, a, bound=BOUND, randomness=djn)
    eb = encrypt(public, b, bound=BOUND, randomness=djn)
    np.testing.assert_array_equal(decrypt(secret, ea), q(a))
    np.testing.assert_array_equal(decrypt(secret, ea + eb), q(a) + q(b))
    np.testing.assert_array_equal(decrypt(secret, ea - eb), q(a) - q(b))
    np.testing.assert_array_equal(decrypt(secret, -ea), -q(a))
    np.testing.assert_array_equal(decrypt(secret, ea + np.array(b)), q(a) + q(b))
    np.testing.assert_array_equal(decrypt(secret, np.array(b) + ea), q(b) + q(a))
    np.testing.assert_array_equal(decrypt(secret, 1.5 - ea), 1.5 - q(a))
    assert (ea + eb).bound == 2 * BOUND * 2**F


@PROPERTY
@given(a=st.lists(reals, min_size=1, max_size=6), data=st.data())
def test_scalar_products(
    keypair: KeyPair, djn: DjnRandomness, a: list[float], data: st.DataObject
) -> None:
    public, secret = keypair
    k = data.draw(st.integers(-(2**10), 2**10))
    ks = data.draw(st.lists(st.integers(-5, 5), min_size=len(a), max_size=len(a)))
    real = data.draw(st.floats(-8, 8, allow_nan=False))
    ea = encrypt(public, a, bound=BOUND, randomness=djn)
    np.testing.assert_array_equal(decrypt(secret, ea * k), q(a) * k)
    np.testing.assert_array_equal(decrypt(secret, k * ea), q(a) * k)
    np.testing.assert_array_equal(decrypt(secret, ea * np.array(ks)), q(a) * np.array(ks))
    product = ea * real
    assert product.frac_bits == 2 * F  # a real scalar brings its own fractional bits
    np.testing.assert_array_equal(decrypt(secret, product), q(a) * q(real))
    assert product.bound == (BOUND * 2**F) * abs(round(real * 2**F))


@PROPERTY
@given(rows=st.integers(1, 4), cols=st.integers(1, 4), data=st.data())
def test_sums_over_axes(
    keypair: KeyPair, djn: DjnRandomness, rows: int, cols: int, data: st.DataObject
) -> None:
    public, secret = keypair
    flat = data.draw(st.lists(reals, min_size=rows * cols, max_size=rows * cols))
    x = np.array(flat).reshape(rows, cols)
    ex = encrypt(public, x, bound=BOUND, randomness=djn)
    quantized = q(x)
    total = ex.sum()
    assert total.shape == ()
    assert decrypt(secret, total) == math.fsum(quantized.ravel())
    assert total.bound == rows * cols * BOUND * 2**F
    for axis in (0, 1, -1):
        expected = np.apply_along_axis(math.fsum, axis, quantized)
        np.testing.assert_array_equal(decrypt(secret, ex.sum(axis=axis)), expected)
    assert decrypt(secret, sum([ex, ex, ex])).tolist() == (3 * quantized).tolist()


def test_broadcasting_indexing_and_mixed_fractional_bits(
    keypair: KeyPair, djn: DjnRandomness
) -> None:
    public, secret = keypair
    x = np.array([[1.0, -2.0, 3.0], [4.5, -5.5, 0.0]])
    ex = encrypt(public, x, bound=10, randomness=djn)
    np.testing.assert_array_equal(
        decrypt(secret, ex + np.array([1, 2, 3])), x + np.array([1, 2, 3])
    )
    np.testing.assert_array_equal(decrypt(secret, ex * np.array([[2], [-1]])), x * [[2], [-1]])
    np.testing.assert_array_equal(decrypt(secret, ex[1]), x[1])
    np.testing.assert_array_equal(decrypt(secret, ex[:, 0]), x[:, 0])
    assert decrypt(secret, ex[0, 1]) == -2.0
    assert len(ex) == 2
    assert ex.ndim == 2
    assert ex.size == 6
    coarse = encrypt(public, [0.25, 0.5, 0.75], bound=1, frac_bits=4, randomness=djn)
    mixed = ex + coarse
    assert mixed.frac_bits == F
    assert mixed.bound == 10 * 2**F + 2**F  # the coarse bound 2^4 scaled by 2^28
    np.testing.assert_array_equal(decrypt(secret, mixed), x + np.array([0.25, 0.5, 0.75]))
    np.testing.assert_array_equal(decrypt(secret, coarse + ex), x + np.array([0.25, 0.5, 0.75]))


def test_integers_are_exact_with_zero_fractional_bits(keypair: KeyPair) -> None:
    public, secret = keypair
    x = np.array([-(2**60), 2**60, 7, -1], dtype=np.int64)
    ex = encrypt(public, x, bound=2**60, frac_bits=0, randomness=CrtRandomness(secret))
    assert decrypt(secret, (ex * 3).sum()) == 3 * 6
    assert decrypt(secret, ex * 0).tolist() == [0.0] * 4


def test_overflow_is_refused_before_it_happens(keypair: KeyPair, djn: DjnRandomness) -> None:
    public, secret = keypair
    half = public.max_int // 2
    ex = encrypt(public, [half, -half, 1], bound=half, frac_bits=0, randomness=djn)
    assert decrypt(secret, ex + ex).tolist() == [float(2 * half), float(-2 * half), 2.0]
    message = r"must stay within the plaintext range .* got a bound of 2\^.*refused before"
    with pytest.raises(PrivacyError, match="the sum " + message):
        ex + ex + ex
    with pytest.raises(PrivacyError, match="the product " + message):
        ex * 3
    with pytest.raises(PrivacyError, match="the sum " + message):
        ex.sum()
    with pytest.raises(PrivacyError, match="the sum " + message):
        ex + np.array([0, 0, half + 2])
    with pytest.raises(PrivacyError, match="the declared bound " + message):
        encrypt(public, [1], bound=public.max_int + 1, frac_bits=0)
    # Without the check the product would wrap modulo n; decryption refuses it rather
    # than return a wrong number.
    wrapped = raw_multiply(public, ex.ciphertexts[0], 3)
    bypass = EncryptedArray(public, np.array([wrapped], dtype=object), 0, public.max_int)
    with pytest.raises(PrivacyError, match="overflow band"):
        decrypt(secret, bypass)


def test_values_beyond_the_declared_bound_are_refused(keypair: KeyPair) -> None:
    public, _ = keypair
    with pytest.raises(PrivacyError, match="values must lie within the declared bound"):
        encrypt(public, [1.0, 2.5], bound=2.0)
    with pytest.raises(PrivacyError, match="bound must be finite and > 0, got 0"):
        encrypt(public, [0.0], bound=0)


def test_wrong_key_is_detected(
    keypair: KeyPair, other_keypair: KeyPair, djn: DjnRandomness
) -> None:
    public, _ = keypair
    other_public, other_secret = other_keypair
    ex = encrypt(public, [1.0, -2.0], bound=4, randomness=djn)
    with pytest.raises(
        PrivacyError, match=r"encrypted must be encrypted under the key .*wrong key"
    ):
        decrypt(other_secret, ex)
    # Relabelled as the other key's, the garbage plaintexts still fail the bound checks.
    relabelled = EncryptedArray(other_public, ex.ciphertexts, ex.frac_bits, ex.bound)
    with pytest.raises(PrivacyError, match="encrypted under another key"):
        decrypt(other_secret, relabelled)
    with pytest.raises(PrivacyError, match="the other operand must be encrypted under the key"):
        ex + encrypt(other_public, [1.0, 1.0], bound=4)
    with pytest.raises(PrivacyError, match="randomness must be encrypted under the key"):
        encrypt(other_public, [1.0], bound=4, randomness=djn)


def test_bad_operands_and_keys_are_refused(keypair: KeyPair, djn: DjnRandomness) -> None:
    public, secret = keypair
    ex = encrypt(public, [1.0], bound=4, randomness=djn)
    with pytest.raises(PrivacyError, match="scalars must be public numbers, got an EncryptedArray"):
        ex * ex
    with pytest.raises(
        PrivacyError, match="public_key must be a PaillierPublicKey, got a Paillier"
    ):
        encrypt(secret, [1.0], bound=4)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match="secret_key must be a PaillierSecretKey, got Paillier"):
        decrypt(public, ex)  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match="operand must be an integer or float array"):
        ex + "x"
    with pytest.raises(PrivacyError, match=r"randomness must be a privet\.he Randomness"):
        encrypt(public, [1.0], bound=4, randomness=object())  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match=r"axis must be in \[-1, 1\), got 1"):
        ex.sum(axis=1)
    with pytest.raises(PrivacyError, match="sum needs at least one element"):
        encrypt(public, np.zeros(0), bound=1).sum()
    assert "EncryptedArray(shape=(1,)" in repr(ex)


def test_rerandomize_changes_ciphertexts_not_values(keypair: KeyPair, djn: DjnRandomness) -> None:
    public, secret = keypair
    ex = encrypt(public, [3.0, -4.0], bound=4, randomness=djn) * 0
    assert all(c == 1 for c in ex.ciphertexts)  # c^0: the constant encryption of 0
    fresh = ex.rerandomize(djn)
    assert all(c != 1 for c in fresh.ciphertexts)
    np.testing.assert_array_equal(decrypt(secret, fresh), [0.0, 0.0])
