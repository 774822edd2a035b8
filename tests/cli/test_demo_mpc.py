"""The demo's MPC step: private diagnosis agrees with the vendor's plaintext model."""

from __future__ import annotations

from privet.cli.demo_mpc import private_diagnosis


def test_private_diagnosis_matches_the_plaintext_model_and_counts_its_traffic() -> None:
    outcome = private_diagnosis()
    assert outcome.patients == 285
    assert outcome.agreement >= 0.99
    assert outcome.accuracy > 0.9
    # Shared weights are encoded at 16 fractional bits and the records reach ~4,000: the
    # probabilities differ by at most a few 1e-3 (measured 1.2e-3).
    assert outcome.max_error < 5e-3
    assert outcome.rounds > 0
    assert outcome.megabytes_per_party > 0
    assert outcome.dealer_megabytes > 0
