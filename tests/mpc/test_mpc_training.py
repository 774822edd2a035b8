"""Private training on secret-shared data against the same algorithms in float64.

The references (privet.mpc.training.plaintext_*) share the initialization and the public
batch schedule, so the private runs may differ only by fixed-point rounding and the
sigmoid approximation (error <= 2^-13, privet.mpc.functions). Data: the Wisconsin breast
cancer table bundled with scikit-learn, standardized; the hospital (party 1) shares it.
"""

from __future__ import annotations

import numpy as np
import pytest

from privet.data import load_breast_cancer
from privet.errors import PrivacyError
from privet.mpc import Dealer, Session, Simulator
from privet.mpc.training import (
    SgdConfig,
    batches,
    plaintext_logistic_regression,
    plaintext_mlp,
    train_logistic_regression,
    train_mlp,
)

Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@pytest.fixture(scope="module")
def data() -> Split:
    table = load_breast_cancer()
    order = np.random.default_rng(0).permutation(len(table.target))
    features, labels = table.features[order], table.target[order].astype(np.float64)
    train = features[:455]
    features = (features - train.mean(axis=0)) / train.std(axis=0)
    return features[:455], labels[:455], features[455:], labels[455:]


def session() -> Session:
    return Session(Simulator(2), Dealer(2, bytes(32)))


CONFIG = SgdConfig(epochs=4, learning_rate=0.5, batch_size=32, seed=3)


def test_private_logistic_regression_follows_the_plaintext_run(data: Split) -> None:
    x_train, y_train, x_test, y_test = data
    mpc = session()
    weights, bias = train_logistic_regression(
        mpc.share(x_train, owner=1), mpc.share(y_train, owner=1), CONFIG
    )
    expected_weights, expected_bias = plaintext_logistic_regression(x_train, y_train, CONFIG)
    got_weights, got_bias = weights.reveal(), float(bias.reveal())
    # 60 steps, each off by the sigmoid's 2^-13 and a few 2^-16 roundings: measured 1.3e-4.
    np.testing.assert_allclose(got_weights, expected_weights, atol=2e-3)
    assert abs(got_bias - expected_bias) < 2e-3
    private_accuracy = np.mean((x_test @ got_weights + got_bias > 0) == y_test)
    plain_accuracy = np.mean((x_test @ expected_weights + expected_bias > 0) == y_test)
    assert private_accuracy == plain_accuracy
    assert private_accuracy > 0.9


def test_private_mlp_follows_the_plaintext_run(data: Split) -> None:
    x_train, y_train, x_test, y_test = data
    mpc = session()
    model = train_mlp(mpc.share(x_train, owner=1), mpc.share(y_train, owner=1), 8, CONFIG)
    w1, b1, w2, b2 = plaintext_mlp(x_train, y_train, 8, CONFIG)
    # 60 steps through sigmoid and ReLU derivatives: measured 2.6e-3 with 16 units, 5 epochs.
    np.testing.assert_allclose(model.w1.reveal(), w1, atol=2e-2)
    np.testing.assert_allclose(model.b1.reveal(), b1, atol=2e-2)
    np.testing.assert_allclose(model.w2.reveal(), w2, atol=2e-2)
    assert abs(float(model.b2.reveal()) - b2) < 2e-2
    private = model(mpc.share(x_test, owner=1)).reveal() > 0.5
    plain = np.maximum(x_test @ w1 + b1, 0) @ w2 + b2 > 0
    assert np.mean(private == plain) >= 0.98
    assert np.mean(private == y_test) > 0.9


def test_the_batch_schedule_is_a_permutation_per_epoch() -> None:
    config = SgdConfig(epochs=3, batch_size=4, seed=1)
    schedule = list(batches(10, config))
    assert [len(b) for b in schedule] == [4, 4, 2] * 3
    for epoch in range(3):
        np.testing.assert_array_equal(
            np.sort(np.concatenate(schedule[3 * epoch : 3 * epoch + 3])), np.arange(10)
        )
    other = list(batches(10, SgdConfig(epochs=3, batch_size=4, seed=2)))
    assert any(not np.array_equal(a, b) for a, b in zip(schedule, other, strict=True))


def test_bad_configs_and_data_are_refused() -> None:
    with pytest.raises(PrivacyError, match="epochs must be an integer >= 1, got 0"):
        SgdConfig(epochs=0)
    with pytest.raises(PrivacyError, match="batch_size must be an integer >= 1, got True"):
        SgdConfig(batch_size=True)
    with pytest.raises(PrivacyError, match=r"learning_rate must be a finite number > 0, got nan"):
        SgdConfig(learning_rate=float("nan"))
    mpc = session()
    features, labels = mpc.share(np.zeros((4, 2))), mpc.share(np.zeros(4))
    with pytest.raises(PrivacyError, match=r"labels must be a shared \(4,\) tensor, got \(3,\)"):
        train_logistic_regression(features, mpc.share(np.zeros(3)))
    with pytest.raises(PrivacyError, match="features must be a shared"):
        train_logistic_regression(labels, labels)
    with pytest.raises(PrivacyError, match="features and labels must belong to the same session"):
        train_logistic_regression(features, session().share(np.zeros(4)))
    with pytest.raises(PrivacyError, match="hidden must be an integer >= 1, got 0"):
        train_mlp(features, labels, hidden=0)
