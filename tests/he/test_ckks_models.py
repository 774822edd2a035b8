"""Encrypted inference against scikit-learn and numpy on the same rows: logistic and linear
regression, a polynomial MLP; requirements refused before anything is encrypted."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tenseal", reason="the he extra (pip install 'privet[he]')")

from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from privet.errors import PrivacyError
from privet.he.ckks import (
    CkksContext,
    EncryptedColumns,
    EncryptedLinearModel,
    EncryptedLogisticRegression,
    EncryptedMlp,
    KeyNeeds,
    choose_parameters,
    decrypt,
    encrypt,
    encrypt_columns,
    fit_polynomial,
    sigmoid_approximation,
)
from privet.he.ckks import vector as vector_module

PRECISION_BITS = 16


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray, LogisticRegression]:
    x, y = load_breast_cancer(return_X_y=True)
    x = StandardScaler().fit_transform(x)
    return x, y, LogisticRegression(C=0.1, max_iter=1000).fit(x, y)


def _secret_for(model: object, rows: np.ndarray) -> CkksContext:
    requirements = model.requirements  # type: ignore[attr-defined]
    parameters = requirements.parameters(
        precision_bits=PRECISION_BITS, length=len(rows), input_bound=float(np.abs(rows).max())
    )
    return CkksContext.create(parameters, requirements.keys)


def test_logistic_regression_matches_the_plaintext_polynomial_and_sklearn(
    cancer: tuple[np.ndarray, np.ndarray, LogisticRegression],
) -> None:
    x, _, fitted = cancer
    model = EncryptedLogisticRegression.from_sklearn(fitted, reference_rows=x)
    secret = _secret_for(model, x)
    rows = encrypt_columns(secret.public(), x, requirements=model.requirements)
    probabilities = decrypt(secret, model.predict_proba(rows))
    decision = fitted.decision_function(x)
    # CKKS error: within the context's precision of the same polynomial in float64.
    np.testing.assert_allclose(probabilities, model.sigmoid(decision), atol=2.0**-PRECISION_BITS)
    # Approximation error: within the measured bound of sklearn's sigmoid, and every
    # row on the same side of 1/2 (decision values near 0 are where the cubic is best).
    reference = fitted.predict_proba(x)[:, 1]
    assert np.max(np.abs(probabilities - reference)) <= model.approximation_error + 2.0**-16
    np.testing.assert_array_equal(probabilities > 0.5, fitted.predict(x) == 1)
    np.testing.assert_allclose(
        decrypt(secret, model.decision_function(rows)), decision, atol=2.0**-PRECISION_BITS * 30
    )


def test_the_default_sigmoid_is_kim_et_al_s_and_its_requirements_follow() -> None:
    model = EncryptedLogisticRegression(np.ones(3), 0.5)
    assert model.sigmoid.interval == (-8.0, 8.0)
    assert model.sigmoid.degree == 3
    assert model.approximation_error == pytest.approx(0.1143, abs=1e-4)
    assert model.requirements.depth == 3
    assert model.requirements.keys == KeyNeeds(relinearization=True, rotations=False)


def test_linear_regression_matches_sklearn() -> None:
    x, y = load_diabetes(return_X_y=True)
    x = StandardScaler().fit_transform(x)
    for fitted in (LinearRegression().fit(x, y / 100), Ridge(alpha=1.0).fit(x, y / 100)):
        model = EncryptedLinearModel.from_sklearn(fitted, output_bound=10.0)
        assert model.requirements.depth == 1
        assert model.requirements.keys == KeyNeeds(relinearization=False, rotations=False)
        secret = _secret_for(model, x)
        # Linear inference needs neither relinearization nor Galois keys.
        assert not secret.public().keys.relinearization
        (predictions,) = model.evaluate(encrypt_columns(secret.public(), x))
        np.testing.assert_allclose(
            decrypt(secret, predictions), fitted.predict(x), atol=2.0**-PRECISION_BITS * 16
        )


def test_multiclass_decision_scores_give_sklearn_s_classes() -> None:
    x, y = load_iris(return_X_y=True)
    x = StandardScaler().fit_transform(x)
    fitted = LogisticRegression(max_iter=1000).fit(x, y)
    with pytest.raises(PrivacyError, match=r"must be binary .* got 3; use EncryptedLinearModel"):
        EncryptedLogisticRegression.from_sklearn(fitted)
    model = EncryptedLinearModel.from_sklearn(fitted, output_bound=30.0)
    secret = _secret_for(model, x)
    scores = decrypt(secret, model.evaluate(encrypt_columns(secret, x)))
    assert scores.shape == (3, len(x))
    np.testing.assert_allclose(scores.T, fitted.decision_function(x), atol=1e-3)
    np.testing.assert_array_equal(scores.argmax(axis=0), fitted.predict(x))


def _numpy_mlp(
    x: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]], activation: object
) -> np.ndarray:
    values = x
    for index, (weight, bias) in enumerate(layers):
        values = values @ weight.T + bias
        if index < len(layers) - 1:
            values = activation(values)  # type: ignore[operator]
    return values


def test_mlp_with_a_square_activation_matches_numpy() -> None:
    # CryptoNets-style x^2 activation (Gilad-Bachrach et al. 2016), fitted exactly.
    rng = np.random.default_rng(3)
    layers = [
        (rng.normal(0, 0.3, (6, 4)), rng.normal(0, 0.1, 6)),
        (rng.normal(0, 0.3, (3, 6)), rng.normal(0, 0.1, 3)),
        (rng.normal(0, 0.3, (2, 3)), rng.normal(0, 0.1, 2)),
    ]
    square = fit_polynomial(np.square, 2, (-4.0, 4.0), name="square")
    model = EncryptedMlp(layers, square)
    assert model.requirements.depth == 3 + 2 * square.depth
    x = rng.uniform(-1, 1, (50, 4))
    secret = _secret_for(model, x)
    outputs = decrypt(secret, model.predict(encrypt_columns(secret.public(), x)))
    np.testing.assert_allclose(outputs.T, _numpy_mlp(x, layers, np.square), atol=1e-3)


def test_mlp_with_an_approximated_activation_matches_its_polynomial() -> None:
    rng = np.random.default_rng(4)
    layers = [(rng.normal(0, 0.5, (5, 3)), np.zeros(5)), (rng.normal(0, 0.5, (1, 5)), [0.2])]
    tanh = fit_polynomial(np.tanh, 5, (-3.0, 3.0), name="tanh")
    model = EncryptedMlp(layers, tanh)
    x = rng.uniform(-1, 1, (40, 3))
    secret = _secret_for(model, x)
    (output,) = model.predict(encrypt_columns(secret, x))
    expected = _numpy_mlp(x, [(np.asarray(w), np.asarray(b)) for w, b in layers], tanh)
    np.testing.assert_allclose(decrypt(secret, output), expected[:, 0], atol=1e-3)


def test_a_context_too_shallow_is_refused_before_anything_is_encrypted(
    cancer: tuple[np.ndarray, np.ndarray, LogisticRegression],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    x, _, fitted = cancer
    model = EncryptedLogisticRegression.from_sklearn(fitted, sigmoid=sigmoid_approximation(7))
    shallow = CkksContext.create(choose_parameters(3, precision_bits=12, integer_bits=4))
    encrypted = []
    original = vector_module.CkksVector.encrypt.__func__  # type: ignore[attr-defined]

    def counting(cls: type, context: CkksContext, values: object) -> object:
        encrypted.append(values)
        return original(cls, context, values)

    monkeypatch.setattr(vector_module.CkksVector, "encrypt", classmethod(counting))
    with pytest.raises(
        PrivacyError, match=r"needs multiplicative depth 4, but the context has depth 3"
    ):
        encrypt_columns(shallow, x, requirements=model.requirements)
    assert encrypted == []
    # Columns encrypted without the check are refused by the model before computing.
    rows = encrypt_columns(shallow, x[:5, :])
    with pytest.raises(PrivacyError, match="needs multiplicative depth 4"):
        model.predict_proba(rows)


def test_missing_keys_are_refused_before_encrypting() -> None:
    model = EncryptedLogisticRegression(np.ones(2), 0.0)
    parameters = model.requirements.parameters(precision_bits=12)
    public_without_relin = CkksContext.create(parameters).public(KeyNeeds(relinearization=False))
    with pytest.raises(PrivacyError, match="needs relinearization keys"):
        encrypt_columns(public_without_relin, np.zeros((3, 2)), requirements=model.requirements)


def test_columns_that_have_spent_levels_are_refused() -> None:
    model = EncryptedLinearModel(np.ones((1, 2)))
    secret = CkksContext.create(model.requirements.parameters(precision_bits=12))
    spent = EncryptedColumns(tuple(encrypt(secret, [0.5, 0.5]) * 0.5 for _ in range(2)))
    with pytest.raises(PrivacyError, match="needs multiplicative depth 1, but the columns have 0"):
        model.evaluate(spent)


def test_bad_models_and_columns_are_refused() -> None:
    with pytest.raises(PrivacyError, match=r"coef must be a finite non-empty 2-D array"):
        EncryptedLinearModel([[np.nan, 1.0]])
    with pytest.raises(PrivacyError, match="output_bound must be finite and > 0, got 0"):
        EncryptedLinearModel([1.0], output_bound=0.0)
    with pytest.raises(PrivacyError, match="intercept must be one finite value"):
        EncryptedLogisticRegression([1.0, 2.0], [0.0, 1.0])
    with pytest.raises(PrivacyError, match="fitted LogisticRegression, got str"):
        EncryptedLogisticRegression.from_sklearn("model")
    with pytest.raises(PrivacyError, match="coef_ and intercept_, got int"):
        EncryptedLinearModel.from_sklearn(3)
    square = fit_polynomial(np.square, 2, (-1.0, 1.0))
    with pytest.raises(PrivacyError, match=r"layers\[1\] weight must take 3 inputs, got 2"):
        EncryptedMlp([(np.ones((3, 2)), np.zeros(3)), (np.ones((1, 2)), np.zeros(1))], square)
    with pytest.raises(PrivacyError, match=r"layers\[0\] bias must have shape \(3,\)"):
        EncryptedMlp([(np.ones((3, 2)), np.zeros(2))], square)
    with pytest.raises(PrivacyError, match="at least one"):
        EncryptedMlp([], square)
    model = EncryptedLinearModel(np.ones((1, 2)))
    secret = CkksContext.create(model.requirements.parameters(precision_bits=12))
    with pytest.raises(PrivacyError, match="model's 2 features, got 3"):
        model.evaluate(encrypt_columns(secret, np.zeros((4, 3))))
    with pytest.raises(PrivacyError, match="rows must be a non-empty 2-D array"):
        encrypt_columns(secret, np.zeros(4))
    with pytest.raises(PrivacyError, match=r"columns must all have one length, got \[1, 2\]"):
        EncryptedColumns((encrypt(secret, [0.1]), encrypt(secret, [0.1, 0.2])))
