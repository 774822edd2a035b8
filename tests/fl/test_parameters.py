"""Parameters: ordered, immutable named arrays and their flat views."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from privet import PrivacyError
from privet.fl import Parameters


def sample() -> Parameters:
    return Parameters(
        {
            "dense.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
            "dense.bias": np.array([0.5, -1.5], dtype=np.float64),
            "steps": np.array(7, dtype=np.int64),
        }
    )


def test_order_names_and_size() -> None:
    params = sample()
    assert params.names == ("dense.weight", "dense.bias", "steps")
    assert list(params) == list(params.names)
    assert params.size == 9
    assert "float32[2, 3]" in repr(params)


def test_arrays_are_copied_and_read_only() -> None:
    source = np.zeros(3)
    params = Parameters({"w": source})
    source[0] = 5.0
    assert params["w"][0] == 0.0
    with pytest.raises(ValueError, match="read-only"):
        params["w"][0] = 1.0


def test_vector_round_trip_keeps_dtypes_and_shapes() -> None:
    params = sample()
    vector = params.to_vector()
    np.testing.assert_array_equal(vector, [0, 1, 2, 3, 4, 5, 0.5, -1.5, 7])
    back = params.from_vector(vector)
    assert back == params
    assert back["dense.weight"].dtype == np.float32
    assert back["steps"].dtype == np.int64


@settings(max_examples=50, deadline=None, derandomize=True)
@given(
    st.lists(
        hnp.arrays(
            st.sampled_from([np.float32, np.float64, np.int32]),
            hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
            elements=st.integers(-1000, 1000),
        ),
        min_size=0,
        max_size=4,
    )
)
def test_to_vector_from_vector_is_the_identity(arrays: list[np.ndarray]) -> None:
    params = Parameters({f"p{i}": a for i, a in enumerate(arrays)})
    assert params.from_vector(params.to_vector()) == params


def test_stack_vectors_checks_every_layout() -> None:
    params = sample()
    matrix = Parameters.stack_vectors([params, params], like=params)
    assert matrix.shape == (2, 9)
    wrong = Parameters({"dense.weight": np.zeros((3, 2), dtype=np.float32)})
    with pytest.raises(PrivacyError, match="update 1 must have the names"):
        Parameters.stack_vectors([params, wrong], like=params)
    reshaped = Parameters(
        {
            "dense.weight": np.zeros((3, 2), dtype=np.float32),
            "dense.bias": np.zeros(2),
            "steps": np.array(1),
        }
    )
    with pytest.raises(PrivacyError, match=r"'dense.weight' must be float32\[2, 3\], got float32"):
        params.check_layout(reshaped)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ([("", np.zeros(1))], "non-empty strings, got ''"),
        ([("a", np.zeros(1)), ("a", np.ones(1))], "unique, got 'a' twice"),
        ([("a", np.array(["x"]))], "bool, integer or floating array, got dtype <U1"),
        ([("a", np.array([1 + 2j]))], "got dtype complex128"),
        ([("a", np.array([object()]))], "got dtype object"),
    ],
)
def test_bad_parameters_are_refused(arrays: list[tuple[str, np.ndarray]], message: str) -> None:
    with pytest.raises(PrivacyError, match=message):
        Parameters(arrays)


def test_from_vector_refuses_a_wrong_length() -> None:
    with pytest.raises(PrivacyError, match=r"vector must be 1-D with 9 entries, got shape \[8\]"):
        sample().from_vector(np.zeros(8))


def test_privet_fl_does_not_import_torch() -> None:
    """DESIGN.md: torch only in the fl torch adapters, imported by name."""
    code = "import sys, privet.fl; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_adopt_wraps_without_copying_and_still_freezes() -> None:
    fresh = np.arange(4.0)
    adopted = Parameters.adopt({"w": fresh})
    assert np.shares_memory(adopted["w"], fresh)
    with pytest.raises(ValueError, match="read-only"):
        adopted["w"][0] = 1.0
    with pytest.raises(PrivacyError, match="got dtype object"):
        Parameters.adopt({"w": np.array([object()])})
