"""Secret-sharing MPC over ``Z_{2^64}`` with a dealer: private inference and training.

* :mod:`~privet.mpc.ring`: the ring, fixed-point encoding, exact ring matmul
  and convolution.
* :mod:`~privet.mpc.dealer`: the seeded dealer ("crypto provider") with
  seed-compressed shares of Beaver, matmul, convolution and AND triples,
  truncation pairs and comparison masks, made on request or ahead of time
  from a :class:`DealerPlan` a previous run recorded.
* :mod:`~privet.mpc.runtime`: who holds which shares; the in-process simulator.
* :mod:`~privet.mpc.protocols`: the online protocols over share arrays.
* :mod:`~privet.mpc.tensor`: :class:`Session` and :class:`SharedTensor`.
* :mod:`~privet.mpc.functions`: max/argmax, exp, reciprocal, sigmoid,
  softmax with stated error bounds; :mod:`~privet.mpc.convolution`: conv2d and
  pooling; :mod:`~privet.mpc.training`: logistic regression and an MLP trained
  on shares.
* :mod:`~privet.mpc.torch_models` (needs torch, not imported here): trained
  ``torch.nn.Sequential`` models as private models.
* :mod:`~privet.mpc.paillier_correlations` (needs gmpy2, not imported here):
  two parties make every dealer item between themselves with Paillier products,
  so no dealer has to be trusted (far slower than a dealer: seconds per thousand
  triples, tens of seconds per ReLU batch).
* Real parties: :func:`launch` runs a party script as ``n`` OS processes and a
  dealer process on loopback; the script's :func:`connect` gives a
  :class:`Session` over authenticated TCP (:mod:`~privet.mpc.tcp`,
  :mod:`~privet.mpc.network`, :mod:`~privet.mpc.dealer_service`), bit-identical
  to the simulator for the same dealer seed.

Security model: semi-honest parties, an honest dealer that never sees
inputs; each party sees only uniformly masked opened values.
"""

from __future__ import annotations

from privet.mpc.convolution import avg_pool2d, conv2d, max_pool2d
from privet.mpc.dealer import CorrelationSource, Dealer, DealerPlan, DealerStats, PartyDealer
from privet.mpc.functions import argmax, exp, reciprocal, sigmoid, softmax
from privet.mpc.launcher import LaunchError, LaunchResult, PartyResult, launch
from privet.mpc.messages import decode_plan, encode_plan
from privet.mpc.network import NetworkRuntime
from privet.mpc.party import PartyRun, connect
from privet.mpc.ring import RING_BITS, FixedPoint, ring_matmul
from privet.mpc.runtime import CommStats, Runtime, Simulator
from privet.mpc.tensor import Session, SharedTensor
from privet.mpc.training import SgdConfig, train_logistic_regression, train_mlp
from privet.mpc.transport import MpcNetworkError

__all__ = [
    "RING_BITS",
    "CommStats",
    "CorrelationSource",
    "Dealer",
    "DealerPlan",
    "DealerStats",
    "FixedPoint",
    "LaunchError",
    "LaunchResult",
    "MpcNetworkError",
    "NetworkRuntime",
    "PartyDealer",
    "PartyResult",
    "PartyRun",
    "Runtime",
    "Session",
    "SgdConfig",
    "SharedTensor",
    "Simulator",
    "argmax",
    "avg_pool2d",
    "connect",
    "conv2d",
    "decode_plan",
    "encode_plan",
    "exp",
    "launch",
    "max_pool2d",
    "reciprocal",
    "ring_matmul",
    "sigmoid",
    "softmax",
    "train_logistic_regression",
    "train_mlp",
]
