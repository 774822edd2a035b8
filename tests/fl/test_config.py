"""TOML run descriptions: parsing, validation, and building runs from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dp_accounting
import numpy as np
import pytest

from privet import PrivacyError
from privet.fl.config import (
    Dataset,
    DpMode,
    EngineKind,
    ModelKind,
    PartitionScheme,
    StrategyName,
    load_config,
    parse_config,
)
from privet.fl.runner import run_config
from privet.fl.secure_engine import MaskingMode, SecureAggregation

EXAMPLE = Path(__file__).parents[2] / "examples" / "fl_mnist_dirichlet.toml"


def small(**sections: Any) -> dict[str, Any]:
    """A quick breast-cancer run; sections override the defaults below."""
    document: dict[str, Any] = {
        "rounds": 2,
        "data": {"dataset": "breast_cancer", "test_fraction": 0.25},
        "partition": {"scheme": "iid", "clients": 4},
        "model": {"kind": "logistic"},
        "training": {"epochs": 1, "batch_size": 16, "learning_rate": 0.1},
        "engine": {"kind": "sequential", "seed": 0},
    }
    document.update(sections)
    return document


def test_the_example_config_parses_into_typed_records() -> None:
    config = load_config(EXAMPLE)
    assert config.rounds == 5
    assert config.data.dataset is Dataset.MNIST
    assert config.partition.scheme is PartitionScheme.DIRICHLET
    assert config.partition.clients == 5
    assert config.model.kind is ModelKind.MLP
    assert config.model.hidden == (64,)
    assert config.strategy.name is StrategyName.FEDAVG
    assert config.dp is not None
    assert config.dp.mode is DpMode.CENTRAL
    assert config.engine.kind is EngineKind.VECTORIZED


def test_defaults_fill_omitted_sections() -> None:
    config = parse_config({"data": {"dataset": "mnist"}})
    assert config.rounds == 10
    assert config.partition.scheme is PartitionScheme.IID
    assert config.dp is None
    assert config.engine.kind is EngineKind.VECTORIZED


def test_relative_ledger_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    file = tmp_path / "run.toml"
    file.write_text(
        '[data]\ndataset = "mnist"\n[dp]\nmode = "central"\nnoise_multiplier = 1.0\n'
        'clip_norm = 1.0\nepsilon = 2.0\nledger = "budget.sqlite"\n'
    )
    config = load_config(file)
    assert config.dp is not None
    assert config.dp.ledger == tmp_path / "budget.sqlite"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, r"needs a \[data\] table"),
        ({"data": {"dataset": "cifar"}}, "data.dataset must be one of 'mnist', 'breast_cancer'"),
        ({"data": {"dataset": "mnist", "test_fraction": 1.5}}, r"test_fraction must be a number"),
        ({"data": {"dataset": "mnist"}, "rounds": 0}, "rounds must be an integer >= 1, got 0"),
        ({"data": {"dataset": "mnist"}, "rounds": True}, "rounds must be an integer >= 1"),
        ({"data": {"dataset": "mnist"}, "partition": {"clients": 0}}, "partition.clients must"),
        (
            {"data": {"dataset": "mnist"}, "partition": {"alpah": 1.0}},
            r"unknown key\(s\) \['alpah'\]",
        ),
        ({"data": {"dataset": "mnist"}, "strategy": {"name": "fedsgd"}}, "strategy.name must be"),
        ({"data": {"dataset": "mnist"}, "model": {"hidden": [0]}}, "model.hidden must be a list"),
        ({"data": {"dataset": "mnist"}, "dp": {"mode": "central"}}, r"\[dp\] needs the key"),
        (
            {"data": {"dataset": "mnist"}, "dp": {"mode": "x", "noise_multiplier": 1}},
            "dp.mode must be one of 'central', 'adaptive', 'local'",
        ),
        ({"data": {"dataset": "mnist"}, "engine": {"kind": "spark"}}, "engine.kind must be one of"),
        ({"data": {"dataset": "mnist"}, "engines": {}}, r"unknown key\(s\) \['engines'\]"),
        ({"data": "mnist"}, r"\[data\] must be a table"),
        (
            {"data": {"dataset": "mnist"}, "secure_aggregation": {"mode": "secagg++"}},
            "secure_aggregation.mode must be one of 'secagg', 'secagg\\+'",
        ),
        (
            {"data": {"dataset": "mnist"}, "secure_aggregation": {"dropout_fraction": 0.5}},
            r"secure_aggregation.dropout_fraction must be a number in \[0, 0.49\], got 0.5",
        ),
    ],
)
def test_bad_configs_are_refused_naming_the_key(document: dict[str, Any], message: str) -> None:
    with pytest.raises(PrivacyError, match=message):
        parse_config(document)


def test_missing_and_malformed_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(PrivacyError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("rounds = = 3")
    with pytest.raises(PrivacyError, match="is not valid TOML"):
        load_config(broken)


def test_a_central_dp_run_charges_every_round_as_dp_accounting_composes_it() -> None:
    dp = {
        "mode": "central",
        "noise_multiplier": 2.0,
        "clip_norm": 1.0,
        "sampling_rate": 0.5,
        "epsilon": 20.0,
        "accountant": "rdp",
    }
    outcome = run_config(parse_config(small(dp=dp, rounds=3)))
    assert outcome.ledger is not None
    assert len(outcome.history.rounds) == 3
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(0.5, dp_accounting.GaussianDpEvent(2.0)), 3
    )
    reference = dp_accounting.rdp.RdpAccountant().compose(event).get_epsilon(1e-5)
    assert outcome.ledger.spent() == pytest.approx(reference, rel=1e-9)


def test_local_dp_charges_one_per_client_event_per_round() -> None:
    dp = {
        "mode": "local",
        "noise_multiplier": 4.0,
        "clip_norm": 1.0,
        "epsilon": 50.0,
        "accountant": "rdp",
    }
    outcome = run_config(parse_config(small(dp=dp, rounds=2)))
    assert outcome.ledger is not None
    event = dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(2.0), 2)
    reference = dp_accounting.rdp.RdpAccountant().compose(event).get_epsilon(1e-5)
    assert outcome.ledger.spent() == pytest.approx(reference, rel=1e-9)


def test_local_dp_on_the_vectorized_engine_is_refused() -> None:
    dp = {"mode": "local", "noise_multiplier": 4.0, "clip_norm": 1.0, "epsilon": 5.0}
    document = small(dp=dp, engine={"kind": "vectorized"})
    with pytest.raises(PrivacyError, match=r"local DP needs engine\.kind 'sequential' or 'ray'"):
        run_config(parse_config(document))


@pytest.mark.parametrize("name", [member.value for member in StrategyName])
def test_every_strategy_runs_from_a_config(name: str) -> None:
    strategy = {"name": name, "num_byzantine": 0, "num_selected": 2}
    document = small(strategy=strategy, partition={"scheme": "iid", "clients": 5}, rounds=1)
    outcome = run_config(parse_config(document))
    record = outcome.history.rounds[0]
    assert record.aborted is None
    assert 0.0 <= float(record.central_metrics["accuracy"]) <= 1.0


@pytest.mark.slow
@pytest.mark.xdist_group("ray")  # with the other Ray tests: one Ray cluster at a time
def test_a_ray_run_from_a_config_matches_the_sequential_run() -> None:
    """Ray workers rebuild their clients from the configuration; same model as in-process."""
    sequential = run_config(parse_config(small(rounds=2)))
    on_ray = run_config(parse_config(small(rounds=2, engine={"kind": "ray", "seed": 0})))
    for name in sequential.history.parameters:
        np.testing.assert_allclose(
            on_ray.history.parameters[name], sequential.history.parameters[name], atol=1e-6
        )


def test_a_secure_aggregation_section_parses_into_the_engine_config() -> None:
    document = small(secure_aggregation={"mode": "secagg", "corruption_fraction": 0.2})
    secure = parse_config(document).secure_aggregation
    assert secure == SecureAggregation(MaskingMode.SECAGG, 0.1, 0.2)
    assert parse_config(small()).secure_aggregation is None


def test_a_securely_aggregated_run_from_a_config_matches_the_plain_run() -> None:
    """SecAgg+ changes what the server sees, not the model: the weighted FedAvg of the
    secure sum equals the plain one up to the 62-bit fixed-point error (~1e-16)."""
    plain = run_config(parse_config(small(rounds=2)))
    secure = run_config(parse_config(small(rounds=2, secure_aggregation={"mode": "secagg+"})))
    for name in plain.history.parameters:
        np.testing.assert_allclose(
            secure.history.parameters[name], plain.history.parameters[name], rtol=0, atol=1e-6
        )
    assert [r.clients for r in secure.history.rounds] == [4, 4]


def test_secure_aggregation_needs_the_sequential_engine() -> None:
    document = small(engine={"kind": "vectorized"}, secure_aggregation={})
    with pytest.raises(PrivacyError, match=r"needs engine\.kind 'sequential'.*got engine\.kind"):
        run_config(parse_config(document))
