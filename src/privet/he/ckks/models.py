"""Encrypted inference: linear and logistic regression, and small polynomial MLPs.

The server holds a plaintext model; the rows arrive encrypted one ciphertext per
feature (:func:`~privet.he.ckks.encrypt_columns`), and the outputs leave
encrypted, one vector per output, for the key holder to decrypt. Each model states
its :class:`~privet.he.ckks.Requirements` (depth, integer bits, keys) before any
row is encrypted, so the key holder builds a context that fits, and a context
that does not fit is refused with the depth needed.

Non-polynomial activations are replaced by :class:`PolynomialApproximation`\\ s whose
error on their interval is measured (Kim et al. 2018 for the sigmoid); the
result's error is that approximation error plus CKKS's (the context's precision).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from privet.errors import PrivacyError
from privet.he.ckks.columns import EncryptedColumns
from privet.he.ckks.context import KeyNeeds, Requirements, bits_for_magnitude
from privet.he.ckks.polynomial import PolynomialApproximation, sigmoid_approximation
from privet.he.ckks.vector import CkksVector

__all__ = [
    "EncryptedLinearModel",
    "EncryptedLogisticRegression",
    "EncryptedMlp",
]

#: Integer bits for linear outputs when no bound is given: values below 2^8 = 256.
DEFAULT_INTEGER_BITS = 8


def _finite_matrix(name: str, value: ArrayLike, ndim: int) -> NDArray[np.float64]:
    array = np.array(value, dtype=np.float64)
    if array.ndim != ndim or array.size == 0 or not np.all(np.isfinite(array)):
        raise PrivacyError(
            f"{name} must be a finite non-empty {ndim}-D array, got shape {array.shape}"
        )
    array.setflags(write=False)
    return array


def _check_columns(columns: EncryptedColumns, n_features: int, requirements: Requirements) -> None:
    if not isinstance(columns, EncryptedColumns):
        raise PrivacyError(f"columns must be EncryptedColumns, got {type(columns).__name__}")
    if columns.n_features != n_features:
        raise PrivacyError(
            f"columns must have the model's {n_features} features, got {columns.n_features}"
        )
    requirements.check(columns.context)
    if columns.levels_left < requirements.depth:
        raise PrivacyError(
            f"the model needs multiplicative depth {requirements.depth}, but the columns have "
            f"{columns.levels_left} level(s) left"
        )


def _affine(columns: Sequence[CkksVector], weights: NDArray[np.float64], bias: float) -> CkksVector:
    """``sum_j w_j x_j + b`` over encrypted columns (one level; zero weights skipped).

    Works on TenSEAL's vectors in place: one plaintext multiplication per nonzero
    weight and chunk, and additions.
    """
    context = columns[0].context
    chunk_count = len(columns[0].chunks)
    result = []
    for index in range(chunk_count):
        total: Any = None
        for column, weight in zip(columns, weights, strict=True):
            if weight == 0.0:
                continue
            term = column.chunks[index] * float(weight)
            if total is None:
                total = term
            else:
                total += term
        if total is None:
            size = int(columns[0].chunks[index].size())
            total = CkksVector.encrypt(context, np.zeros(size)).chunks[0]
        total += float(bias)
        result.append(total)
    return CkksVector(context, result)


class EncryptedLinearModel:
    """``scores = X @ coef.T + intercept`` on encrypted rows: linear regression (one or
    several targets) or a multiclass linear classifier's decision scores.

    Parameters
    ----------
    coef
        ``(n_outputs, n_features)`` or ``(n_features,)``.
    intercept
        ``(n_outputs,)`` or a scalar.
    output_bound
        Scores stay below this in magnitude (sets the context's integer bits); the
        default admits values below 2^8.
    """

    def __init__(
        self,
        coef: ArrayLike,
        intercept: ArrayLike = 0.0,
        *,
        output_bound: float = 2.0**DEFAULT_INTEGER_BITS - 1.0,
    ) -> None:
        weights = np.atleast_2d(np.asarray(coef, dtype=np.float64))
        self.coef = _finite_matrix("coef", weights, 2)
        bias = np.broadcast_to(np.asarray(intercept, dtype=np.float64), (weights.shape[0],))
        self.intercept = _finite_matrix("intercept", bias, 1)
        if not (math.isfinite(output_bound) and output_bound > 0):
            raise PrivacyError(f"output_bound must be finite and > 0, got {output_bound}")
        self.requirements = Requirements(
            depth=1,
            integer_bits=bits_for_magnitude(output_bound),
            keys=KeyNeeds(relinearization=False),
        )

    @classmethod
    def from_sklearn(cls, model: Any, *, output_bound: float | None = None) -> EncryptedLinearModel:
        """From a fitted scikit-learn linear model (``LinearRegression``, ``Ridge``,
        ``Lasso``, a multiclass ``LogisticRegression``'s decision scores, ...)."""
        if not hasattr(model, "coef_") or not hasattr(model, "intercept_"):
            raise PrivacyError(
                f"model must be a fitted linear model with coef_ and intercept_, "
                f"got {type(model).__name__}"
            )
        bound = {} if output_bound is None else {"output_bound": output_bound}
        return cls(model.coef_, model.intercept_, **bound)

    @property
    def n_features(self) -> int:
        """Inputs the model takes."""
        return int(self.coef.shape[1])

    def evaluate(self, columns: EncryptedColumns) -> tuple[CkksVector, ...]:
        """The encrypted scores, one vector (over the rows) per output."""
        _check_columns(columns, self.n_features, self.requirements)
        return tuple(
            _affine(columns.columns, weights, float(bias))
            for weights, bias in zip(self.coef, self.intercept, strict=True)
        )


class EncryptedLogisticRegression:
    """Binary logistic regression on encrypted rows, the sigmoid a polynomial.

    Parameters
    ----------
    coef
        ``(n_features,)`` (or ``(1, n_features)``, scikit-learn's shape).
    intercept
        A scalar (or ``(1,)``).
    sigmoid
        The approximation; by default degree 3 on [-8, 8] (Kim et al. 2018), which
        errs by at most :attr:`approximation_error` (0.114) where the decision value
        lies in [-8, 8]. Outside its interval the approximation breaks down.
    """

    def __init__(
        self,
        coef: ArrayLike,
        intercept: ArrayLike = 0.0,
        *,
        sigmoid: PolynomialApproximation | None = None,
    ) -> None:
        weights = np.asarray(coef, dtype=np.float64)
        if weights.ndim == 2 and weights.shape[0] == 1:
            weights = weights[0]
        self.coef = _finite_matrix("coef", weights, 1)
        bias = np.asarray(intercept, dtype=np.float64).reshape(-1)
        if bias.shape != (1,) or not np.isfinite(bias[0]):
            raise PrivacyError(f"intercept must be one finite value, got {intercept!r}")
        self.intercept = float(bias[0])
        self.sigmoid = sigmoid_approximation() if sigmoid is None else sigmoid
        self.requirements = Requirements(
            depth=1 + self.sigmoid.depth,
            integer_bits=bits_for_magnitude(self.sigmoid.max_magnitude),
            keys=KeyNeeds(relinearization=self.sigmoid.degree > 1),
        )

    @classmethod
    def from_sklearn(
        cls,
        model: Any,
        *,
        sigmoid: PolynomialApproximation | None = None,
        reference_rows: ArrayLike | None = None,
        degree: int = 3,
    ) -> EncryptedLogisticRegression:
        """From a fitted binary scikit-learn ``LogisticRegression`` (probability of
        ``classes_[1]``).

        The sigmoid is ``sigmoid`` if given; else, with ``reference_rows`` (e.g. the
        training rows, on the model owner's side), a polynomial of ``degree`` fitted on
        the range of their decision values, 10% wider; else the default on [-8, 8].
        A multiclass model has no polynomial softmax here: use
        :meth:`EncryptedLinearModel.from_sklearn` for its decision scores.
        """
        classes = getattr(model, "classes_", None)
        if classes is None or not hasattr(model, "coef_"):
            raise PrivacyError(
                f"model must be a fitted LogisticRegression, got {type(model).__name__}"
            )
        if len(classes) != 2:
            raise PrivacyError(
                f"model must be binary (2 classes), got {len(classes)}; use "
                "EncryptedLinearModel.from_sklearn for a multiclass model's decision scores"
            )
        if sigmoid is None and reference_rows is not None:
            rows = np.asarray(reference_rows, dtype=np.float64)
            decisions = rows @ np.asarray(model.coef_, dtype=np.float64).reshape(-1)
            reach = 1.1 * float(np.max(np.abs(decisions + float(model.intercept_[0]))))
            sigmoid = sigmoid_approximation(degree, (-max(reach, 1.0), max(reach, 1.0)))
        return cls(model.coef_, model.intercept_, sigmoid=sigmoid)

    @property
    def n_features(self) -> int:
        """Inputs the model takes."""
        return int(self.coef.shape[0])

    @property
    def approximation_error(self) -> float:
        """Largest error of the polynomial sigmoid on its interval (measured)."""
        return self.sigmoid.max_error

    def decision_function(self, columns: EncryptedColumns) -> CkksVector:
        """``X @ coef + intercept``, encrypted (one level)."""
        _check_columns(columns, self.n_features, self.requirements)
        return _affine(columns.columns, self.coef, self.intercept)

    def predict_proba(self, columns: EncryptedColumns) -> CkksVector:
        """The approximate probability of the positive class for every row, encrypted.

        The decision value is computed divided by the sigmoid's reach (the division
        folded into the weights), and the polynomial evaluated in that unit variable.
        """
        _check_columns(columns, self.n_features, self.requirements)
        reach = self.sigmoid.reach
        unit_decision = _affine(columns.columns, self.coef / reach, self.intercept / reach)
        return unit_decision.polyval(self.sigmoid.unit_coefficients)


class EncryptedMlp:
    """A fully connected network with a polynomial activation between layers.

    Parameters
    ----------
    layers
        ``[(W_1, b_1), ..., (W_L, b_L)]`` with ``W_l`` of shape ``(out, in)`` (PyTorch's
        ``Linear.weight``) and ``b_l`` of shape ``(out,)``; no activation after the last.
    activation
        Applied element-wise after every layer but the last: a trained polynomial
        (e.g. ``x^2``, as in CryptoNets, Gilad-Bachrach et al. 2016) or an
        approximation from :func:`~privet.he.ckks.fit_polynomial`.
    output_bound
        Hidden pre-activations stay in the activation's interval; outputs stay below
        this in magnitude.
    """

    def __init__(
        self,
        layers: Sequence[tuple[ArrayLike, ArrayLike]],
        activation: PolynomialApproximation,
        *,
        output_bound: float = 2.0**DEFAULT_INTEGER_BITS - 1.0,
    ) -> None:
        if not layers:
            raise PrivacyError("layers must hold at least one (weight, bias) pair, got none")
        checked: list[tuple[NDArray[np.float64], NDArray[np.float64]]] = []
        width: int | None = None
        for index, (weight, bias) in enumerate(layers):
            w = _finite_matrix(f"layers[{index}] weight", weight, 2)
            b = _finite_matrix(f"layers[{index}] bias", bias, 1)
            if b.shape != (w.shape[0],):
                raise PrivacyError(
                    f"layers[{index}] bias must have shape ({w.shape[0]},), got {b.shape}"
                )
            if width is not None and w.shape[1] != width:
                raise PrivacyError(
                    f"layers[{index}] weight must take {width} inputs, got {w.shape[1]}"
                )
            width = int(w.shape[0])
            checked.append((w, b))
        self.layers = tuple(checked)
        self.activation = activation
        hidden = len(checked) - 1
        magnitude = max(activation.max_magnitude, output_bound)
        self.requirements = Requirements(
            depth=len(checked) + hidden * activation.depth,
            integer_bits=bits_for_magnitude(magnitude),
            keys=KeyNeeds(relinearization=hidden > 0 and activation.degree > 1),
        )

    @property
    def n_features(self) -> int:
        """Inputs the network takes."""
        return int(self.layers[0][0].shape[1])

    def predict(self, columns: EncryptedColumns) -> tuple[CkksVector, ...]:
        """The encrypted outputs, one vector (over the rows) per output unit."""
        _check_columns(columns, self.n_features, self.requirements)
        values: tuple[CkksVector, ...] = columns.columns
        last = len(self.layers) - 1
        reach = self.activation.reach
        for index, (weight, bias) in enumerate(self.layers):
            # Hidden pre-activations are computed divided by the activation's reach,
            # its unit variable (the division folded into the weights).
            scale = 1.0 / reach if index < last else 1.0
            values = tuple(
                _affine(values, row * scale, float(b) * scale)
                for row, b in zip(weight, bias, strict=True)
            )
            if index < last:
                coefficients = self.activation.unit_coefficients
                values = tuple(value.polyval(coefficients) for value in values)
        return values
