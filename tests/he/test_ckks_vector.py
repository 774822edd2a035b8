"""Encrypted CKKS vectors: TenSEAL's documented example reproduced, homomorphic identities
within the context's precision, chunked vectors against unchunked arithmetic, and depth,
keys and operands refused with clear errors."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tenseal", reason="the he extra (pip install 'privet[he]')")

from privet.errors import PrivacyError
from privet.he.ckks import (
    CkksContext,
    KeyNeeds,
    choose_parameters,
    decrypt,
    encrypt,
)

PRECISION = 2.0**-20


@pytest.fixture(scope="module")
def rotating() -> CkksContext:
    # Depth 2, values below 2^8: enough for TenSEAL's README example.
    parameters = choose_parameters(2, precision_bits=20, integer_bits=8, length=5)
    return CkksContext.create(parameters, KeyNeeds(relinearization=True, rotations=True))


@pytest.fixture(scope="module")
def small() -> CkksContext:
    # N = 8192 (4096 slots); no Galois keys.
    parameters = choose_parameters(2, precision_bits=16, integer_bits=4, length=4096)
    return CkksContext.create(parameters)


def test_tenseal_readme_example(rotating: CkksContext) -> None:
    # TenSEAL's README "Usage": v1 = [0..4], v2 = [4..0]; v1 + v2 ~ [4, 4, 4, 4, 4],
    # v1 . v2 ~ [10], v1 @ matrix ~ [157, -90, 153].
    v1, v2 = encrypt(rotating, [0, 1, 2, 3, 4]), encrypt(rotating, [4, 3, 2, 1, 0])
    np.testing.assert_allclose((v1 + v2).decrypt(), [4, 4, 4, 4, 4], atol=PRECISION)
    np.testing.assert_allclose(v1.dot(v2).decrypt(), [10], atol=1e-4)
    matrix = [[73, 0.5, 8], [81, -5, 66], [-100, -78, -2], [0, 9, 17], [69, 11, 10]]
    np.testing.assert_allclose(v1.matmul(matrix).decrypt(), [157, -90, 153], atol=1e-3)


def test_homomorphic_identities(small: CkksContext) -> None:
    rng = np.random.default_rng(1)
    a, b = rng.uniform(-1, 1, 300), rng.uniform(-1, 1, 300)
    x, y = encrypt(small, a), encrypt(small, b)
    cases = {
        "x + y": (x + y, a + b),
        "x - y": (x - y, a - b),
        "-x": (-x, -a),
        "x + 0.5": (x + 0.5, a + 0.5),
        "2 - x": (2 - x, 2 - a),
        "x + b": (x + b, a + b),
        "3 * x": (3 * x, 3 * a),
        "x * b": (x * b, a * b),
        "x * y": (x * y, a * b),
        "x.square()": (x.square(), a * a),
        "(x * y) * b": ((x * y) * b, a * b * b),
    }
    for name, (got, want) in cases.items():
        np.testing.assert_allclose(got.decrypt(), want, atol=2.0**-16, err_msg=name)


def test_operands_are_left_unchanged(small: CkksContext) -> None:
    x = encrypt(small, [0.25, 0.5])
    _ = x * 2.0
    _ = x + x
    np.testing.assert_allclose(x.decrypt(), [0.25, 0.5], atol=2.0**-16)
    assert x.levels_left == 2


def test_levels_are_read_from_seal(small: CkksContext) -> None:
    x = encrypt(small, [0.5])
    assert x.levels_left == 2
    assert (x * 0.5).levels_left == 1
    assert (x * x * 0.5).levels_left == 0
    assert (x + x).levels_left == 2


def test_long_vectors_are_chunked_and_agree_with_short_ones(small: CkksContext) -> None:
    # 4096 slots per ciphertext; 10,000 values take 3 chunks. Every element-wise result
    # equals the same operation on the unchunked plaintext.
    rng = np.random.default_rng(2)
    a, b = rng.uniform(-1, 1, 10_000), rng.uniform(-1, 1, 10_000)
    x, y = encrypt(small, a), encrypt(small, b)
    assert len(x) == 10_000
    assert len(x.chunks) == 3
    np.testing.assert_allclose((x * y + b).decrypt(), a * b + b, atol=2.0**-16)
    np.testing.assert_allclose((x * 0.5 - 1).decrypt(), a * 0.5 - 1, atol=2.0**-16)
    np.testing.assert_allclose(
        x.polyval([0.1, 0.2, 0.3]).decrypt(), 0.1 + 0.2 * a + 0.3 * a * a, atol=2.0**-16
    )


def test_polyval_with_an_approximation_uses_its_own_variable(small: CkksContext) -> None:
    from privet.he.ckks import sigmoid_approximation

    sigmoid = sigmoid_approximation(3, (-4.0, 4.0))
    values = np.linspace(-3.9, 3.9, 50)
    got = encrypt(small, values).polyval(sigmoid).decrypt()
    np.testing.assert_allclose(got, sigmoid(values), atol=2.0**-12)


def test_decrypting_needs_the_matching_private_context(small: CkksContext) -> None:
    public = small.public()
    assert not public.is_private
    assert public.fingerprint == small.fingerprint
    vector = encrypt(public, [0.5, 0.25])
    np.testing.assert_allclose(decrypt(small, vector), [0.5, 0.25], atol=2.0**-16)
    with pytest.raises(PrivacyError, match="needs the private context"):
        vector.decrypt()
    other = CkksContext.create(small.parameters)
    with pytest.raises(PrivacyError, match="another key pair"):
        decrypt(other, vector)
    with pytest.raises(PrivacyError, match="same context's keys"):
        vector + encrypt(other, [1.0, 1.0])


def test_running_out_of_depth_is_refused_with_the_depth_needed(small: CkksContext) -> None:
    x = encrypt(small, [0.5, 0.5])
    spent = x * x * 0.5
    with pytest.raises(
        PrivacyError,
        match=r"multiplying needs 1 more .* 0 of the context's "
        r"depth 2 left; build the context for depth >= 3",
    ):
        spent * 0.5
    with pytest.raises(
        PrivacyError,
        match=r"a polynomial of degree 3 needs 2 more .* depth 2 left; "
        r"build the context for depth >= 3",
    ):
        (x * 0.5).polyval([0.5, 0.2, 0.0, -0.004])


def test_rotations_need_galois_keys_and_one_chunk(
    small: CkksContext, rotating: CkksContext
) -> None:
    x = encrypt(small, [0.5, 0.5])
    for operation in (x.sum, lambda: x.dot([1.0, 1.0]), lambda: x.matmul([[1.0], [1.0]])):
        with pytest.raises(PrivacyError, match="needs rotations"):
            operation()
    np.testing.assert_allclose(encrypt(rotating, [1.0, 2.0, 3.0]).sum().decrypt(), [6.0], atol=1e-4)
    long = encrypt(rotating, np.zeros(rotating.parameters.slots + 1))
    with pytest.raises(PrivacyError, match=r"needs the vector in one ciphertext \(at most"):
        long.sum()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([], r"values must be a non-empty 1-D array, got shape \(0,\)"),
        ([[1.0]], r"values must be a non-empty 1-D array, got shape \(1, 1\)"),
        ([np.nan], "values must be finite"),
        ([20.0], r"values must be below 2\^integer_bits = 16 .* got 20; .*input_bound=20"),
    ],
)
def test_bad_plaintexts_are_refused(small: CkksContext, values: object, message: str) -> None:
    with pytest.raises(PrivacyError, match=message):
        encrypt(small, values)  # type: ignore[arg-type]


def test_bad_operands_are_refused(small: CkksContext) -> None:
    x = encrypt(small, [0.5, 0.5])
    with pytest.raises(PrivacyError, match=r"shape \(2,\), got \(3,\)"):
        x + np.array([1.0, 2.0, 3.0])
    with pytest.raises(PrivacyError, match="same length, got 2 and 1"):
        x * encrypt(small, [1.0])
    with pytest.raises(PrivacyError, match="scalar operand must be finite"):
        x * float("inf")
    with pytest.raises(PrivacyError, match="plaintext operand must be finite"):
        x + np.array([np.nan, 1.0])
    with pytest.raises(PrivacyError, match="coefficients must be finite and non-empty"):
        x.polyval([])
