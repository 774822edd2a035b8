"""Fast per-sample paths against a naive loop over single examples.

For every supported layer and small composite models, the per-sample
gradients, their norms (ghost norms where the kernel uses them) and the
clipped sums must equal what a loop of one-example backward passes gives.
Tolerance: float64 models, rtol 1e-9 / atol 1e-12 — the paths differ only in
the order of floating-point additions.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from privet import PrivacyError
from privet.train import GradSampleModule, TransformerEncoder

RTOL, ATOL = 1e-9, 1e-12


class TextModel(nn.Module):
    def __init__(self, vocab: int = 30, d: int = 8, classes: int = 3) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d, padding_idx=0)
        self.block = TransformerEncoder(d, heads=2, hidden=2 * d)
        self.head = nn.Linear(d, classes)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.head(self.block(self.embed(tokens)).mean(1))


class ScaledLinear(nn.Module):
    """A module with its own parameter and a child layer: the torch.func kernel's job."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.randn(6))  # float32 until the test calls .double()
        self.inner = nn.Linear(6, 6)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.inner(x * self.scale))


class Shared(nn.Module):
    """One Linear used twice: per-sample gradients sum over both uses."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(6, 6)
        self.head = nn.Linear(6, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.layer(torch.relu(self.layer(x))))


def image(n: int) -> Tensor:
    return torch.randn(n, 2, 8, 8)


CASES: dict[str, tuple[Callable[[], nn.Module], Callable[[int], Tensor]]] = {
    "linear": (lambda: nn.Linear(6, 3), lambda n: torch.randn(n, 6)),
    "linear-sequence": (lambda: nn.Linear(6, 3), lambda n: torch.randn(n, 5, 6)),
    "linear-long-sequence": (lambda: nn.Linear(3, 2), lambda n: torch.randn(n, 9, 3)),
    "linear-no-bias": (lambda: nn.Linear(6, 3, bias=False), lambda n: torch.randn(n, 6)),
    "mlp": (
        lambda: nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)),
        lambda n: torch.randn(n, 6),
    ),
    "conv2d": (lambda: nn.Conv2d(2, 4, 3, padding=1), image),
    "conv2d-strided-grouped": (
        lambda: nn.Conv2d(2, 4, 3, stride=2, dilation=1, groups=2, bias=False),
        image,
    ),
    "conv2d-reflect": (lambda: nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"), image),
    "conv1d": (lambda: nn.Conv1d(2, 3, 3, padding=2, dilation=2), lambda n: torch.randn(n, 2, 9)),
    "conv1d-same": (lambda: nn.Conv1d(2, 3, 4, padding="same"), lambda n: torch.randn(n, 2, 9)),
    # Few output positions, many channels: ghost norms rather than per-sample products.
    "conv2d-ghost-dilated-groups": (
        lambda: nn.Conv2d(16, 32, 2, dilation=2, groups=2, padding=1),
        lambda n: torch.randn(n, 16, 4, 4),
    ),
    "conv2d-rectangular": (
        lambda: nn.Conv2d(2, 4, (3, 2), stride=(2, 1), padding=(1, 0)),
        lambda n: torch.randn(n, 2, 7, 6),
    ),
    "conv1d-ghost": (lambda: nn.Conv1d(16, 32, 3, stride=2), lambda n: torch.randn(n, 16, 7)),
    "embedding": (
        lambda: nn.Embedding(10, 4, padding_idx=0),
        lambda n: torch.randint(0, 10, (n, 7)),
    ),
    "layernorm": (lambda: nn.LayerNorm(6), lambda n: torch.randn(n, 4, 6)),
    "layernorm-2d": (lambda: nn.LayerNorm([4, 6]), lambda n: torch.randn(n, 4, 6)),
    "groupnorm": (lambda: nn.GroupNorm(2, 4), lambda n: torch.randn(n, 4, 3, 3)),
    "cnn": (
        lambda: nn.Sequential(
            nn.Conv2d(2, 4, 3),
            nn.GroupNorm(2, 4),
            nn.ReLU(),
            nn.Conv2d(4, 4, 3, stride=2),
            nn.Flatten(),
            nn.Linear(16, 3),
        ),
        image,
    ),
    "text-transformer": (TextModel, lambda n: torch.randint(0, 30, (n, 5))),
    "functorch-fallback": (ScaledLinear, lambda n: torch.randn(n, 6)),
    "multihead-attention": (
        lambda: nn.MultiheadAttention(6, 2, batch_first=True),
        lambda n: torch.randn(n, 4, 6),
    ),
    "shared-weights": (Shared, lambda n: torch.randn(n, 6)),
}


def model_output(model: nn.Module, x: Tensor) -> Tensor:
    inner = model.wrapped if isinstance(model, GradSampleModule) else model
    out = model(x, x, x)[0] if isinstance(inner, nn.MultiheadAttention) else model(x)
    return out if out.dim() == 2 else out.flatten(1)


def loss_of(output: Tensor, targets: Tensor) -> Tensor:
    return ((output - targets) ** 2).sum(1).mean()


def naive_per_sample(model: nn.Module, x: Tensor, targets: Tensor) -> dict[Tensor, Tensor]:
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for i in range(x.shape[0]):
        loss = loss_of(model_output(model, x[i : i + 1]), targets[i : i + 1])
        rows.append(torch.autograd.grad(loss, params, allow_unused=True))
    return {
        p: torch.stack([row[j] if row[j] is not None else torch.zeros_like(p) for row in rows])
        for j, p in enumerate(params)
    }


@pytest.mark.parametrize("keep", [True, False], ids=["bookkeeping", "recompute"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_fast_paths_equal_a_loop_over_examples(
    case: str, keep: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both ways to the clipped sum: reusing the norm pass's tensors, and recomputing."""
    if not keep:
        monkeypatch.setattr("privet.train.kernels.BOOKKEEPING_BUDGET", 0)
    torch.manual_seed(7)
    build, inputs = CASES[case]
    model = build().double()
    x = inputs(5)
    x = x.double() if x.is_floating_point() else x
    targets = torch.randn(5, model_output(model, x).shape[1], dtype=torch.float64)
    naive = naive_per_sample(model, x, targets)  # before wrapping: no hooks see these passes
    wrapped = GradSampleModule(model)
    loss_of(model_output(wrapped, x), targets).backward()

    per_sample = wrapped.per_sample_grads()
    norms = wrapped.per_sample_norms_sq()
    scales = {p: torch.rand(5, dtype=torch.float64) for p in naive}
    sums = wrapped.clipped_sums(scales)
    for param, expected in naive.items():
        torch.testing.assert_close(per_sample[param], expected, rtol=RTOL, atol=ATOL)
        torch.testing.assert_close(
            norms[param], expected.flatten(1).pow(2).sum(1), rtol=RTOL, atol=ATOL
        )
        weighted = torch.einsum("n,n...->...", scales[param], expected)
        torch.testing.assert_close(sums[param], weighted, rtol=RTOL, atol=ATOL)


def test_sum_reduction_needs_no_rescaling() -> None:
    torch.manual_seed(0)
    model = nn.Linear(4, 2).double()
    x, targets = torch.randn(3, 4).double(), torch.randn(3, 2).double()
    naive = naive_per_sample(model, x, targets)
    wrapped = GradSampleModule(model, loss_reduction="sum")
    ((wrapped(x) - targets) ** 2).sum().backward()
    for param, expected in naive.items():
        torch.testing.assert_close(wrapped.per_sample_grads()[param], expected)


def test_frozen_parameters_are_left_alone() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    model[0].requires_grad_(False)
    wrapped = GradSampleModule(model)
    wrapped(torch.randn(3, 4)).sum().backward()
    assert set(wrapped.per_sample_norms_sq()) == {model[1].weight, model[1].bias}


def test_nothing_is_recorded_without_grad() -> None:
    wrapped = GradSampleModule(nn.Linear(4, 2))
    with torch.no_grad():
        wrapped(torch.randn(3, 4))
    assert wrapped.per_sample_norms_sq() == {}


def test_bad_loss_reduction_is_refused() -> None:
    with pytest.raises(PrivacyError, match="loss_reduction must be 'mean' or 'sum', got 'avg'"):
        GradSampleModule(nn.Linear(2, 2), loss_reduction="avg")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (nn.Embedding(5, 2, scale_grad_by_freq=True), "scale_grad_by_freq"),
        (nn.GRU(4, 6, batch_first=True), "recurrent layer"),
        (nn.BatchNorm1d(4), "GroupNorm"),
    ],
)
def test_unsupported_layers_are_refused_when_wrapped(layer: nn.Module, message: str) -> None:
    with pytest.raises(PrivacyError, match=message):
        GradSampleModule(nn.Sequential(layer))


def test_a_stray_forward_pass_with_another_batch_is_refused() -> None:
    wrapped = GradSampleModule(nn.Linear(4, 2))
    wrapped(torch.randn(3, 4)).sum().backward()
    wrapped(torch.randn(5, 4)).sum().backward()  # e.g. evaluation without no_grad
    with pytest.raises(PrivacyError, match=r"ran on batches of sizes \[3, 5\]"):
        wrapped.per_sample_norms_sq()
