"""One party of the gRPC deployment tests, run as a real process by ``test_grpc.py``.

``python grpc_party.py client ...`` joins a server with a deterministic numpy
client (every array moves by the client's ``delta``), printing ``FIT <round>``
when a fit starts and ``DONE ...`` or ``REFUSED <status>`` at the end.
``python grpc_party.py server ...`` serves a training, printing ``PORT <port>``
once listening and ``ROUND <r>`` after each round's checkpoint; with
``--hang-after R`` it stops answering after round R (the test then kills it),
and with ``--secure`` every fit runs through SecAgg.

The tests import this module too, for the same clients and strategies in an
in-process reference run.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading

import numpy as np

from privet.fl import (
    ClientSampling,
    EvaluateInstructions,
    EvaluateResult,
    FedAdam,
    FedAvg,
    FitInstructions,
    FitResult,
    MaskingMode,
    Parameters,
    RoundRecord,
    SampledStrategy,
    SecureAggregation,
)
from privet.fl.deploy import DeployError, TokenTable, join, serve

#: Each client's shift and example count. Dyadic values keep FedAvg exact in binary:
#: (1*1 + 1*2 + 2*4) / 4 = 2.75, (1*1 + 1*2) / 2 = 1.5.
DELTAS = {"alice": 1.0, "bob": 2.0, "carol": 4.0}
EXAMPLES = {"alice": 1, "bob": 1, "carol": 2}
TOKENS = {name: f"token-of-{name}-0123456789abcdef" for name in DELTAS}
#: SecAgg over all clients, t = 2 of 3: one client may drop at any step. Planning for no
#: dropouts keeps a round of 2 clients possible (t = 2 <= 2 expected survivors).
SECURE = SecureAggregation(MaskingMode.SECAGG, dropout_fraction=0.0)


def initial_parameters() -> Parameters:
    return Parameters(
        {
            "w": np.arange(6, dtype=np.float64).reshape(2, 3) / 4,
            "b": np.array([0.5, -1.0, 2.0], dtype=np.float32),
        }
    )


class ShiftClient:
    """Fit: every parameter plus ``delta``. Evaluate: the sum of all parameters as the loss."""

    def __init__(
        self, delta: float, examples: int, *, sleep_round: int = 0, announce: bool = False
    ):
        self.delta = delta
        self.examples = examples
        self.sleep_round = sleep_round
        self.announce = announce

    def fit(self, parameters: Parameters, instructions: FitInstructions) -> FitResult:
        if self.announce:
            print(f"FIT {instructions.server_round}", flush=True)
        if instructions.server_round == self.sleep_round:
            threading.Event().wait()  # hang in this round until the test kills the process
        shifted = {name: array + array.dtype.type(self.delta) for name, array in parameters.items()}
        return FitResult(Parameters(shifted), self.examples)

    def evaluate(
        self, parameters: Parameters, instructions: EvaluateInstructions
    ) -> EvaluateResult:
        loss = sum(float(np.sum(array, dtype=np.float64)) for array in parameters.values())
        return EvaluateResult(loss, self.examples)


def make_strategy(name: str) -> SampledStrategy:
    if name == "fedadam":
        # Two of three clients a round, drawn by the seeded rng: a resumed run must restore
        # both the Adam moments and the generator to match an uninterrupted one.
        return FedAdam(ClientSampling(fraction_fit=0.6, min_fit_clients=2), eta=0.5)
    min_fit = int(name.removeprefix("fedavg-"))
    return FedAvg(ClientSampling(min_fit_clients=min_fit))


def _client(args: argparse.Namespace) -> int:
    client = ShiftClient(
        DELTAS[args.client_id],
        EXAMPLES[args.client_id],
        sleep_round=args.sleep_round,
        announce=True,
    )
    try:
        report = join(
            args.address,
            client,
            client_id=args.client_id,
            token=args.token,
            ca_file=args.ca,
            connect_timeout=args.connect_timeout,
        )
    except DeployError as error:
        print(f"REFUSED {error.status} {error}", flush=True)
        return 3
    print(
        f"DONE fit={report.fit_tasks} evaluate={report.evaluate_tasks} "
        f"failed={report.failed_tasks} reason={report.reason}",
        flush=True,
    )
    return 0


def _server(args: argparse.Namespace) -> int:
    def on_round(record: RoundRecord) -> None:
        print(f"ROUND {record.server_round}", flush=True)
        if record.server_round == args.hang_after:
            threading.Event().wait()  # "crash" here: the checkpoint is written, nothing more

    serve(
        args.address,
        strategy=make_strategy(args.strategy),
        initial_parameters=initial_parameters(),
        rounds=args.rounds,
        tokens=TokenTable.from_tokens(TOKENS),
        certificate_file=args.cert,
        key_file=args.key,
        checkpoint_dir=args.checkpoint_dir,
        resume=args.resume,
        min_clients=args.min_clients,
        join_timeout=30.0,
        round_timeout=30.0,
        rng=np.random.default_rng(args.seed),
        on_round=on_round,
        on_start=lambda port: print(f"PORT {port}", flush=True),
        secure_aggregation=SECURE if args.secure else None,
    )
    print("FINISHED", flush=True)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    client = commands.add_parser("client")
    client.add_argument("--address", required=True)
    client.add_argument("--client-id", required=True)
    client.add_argument("--token", required=True)
    client.add_argument("--ca", required=True)
    client.add_argument("--sleep-round", type=int, default=0)
    client.add_argument("--connect-timeout", type=float, default=20.0)
    server = commands.add_parser("server")
    server.add_argument("--address", required=True)
    server.add_argument("--cert", required=True)
    server.add_argument("--key", required=True)
    server.add_argument("--checkpoint-dir", required=True)
    server.add_argument("--rounds", type=int, required=True)
    server.add_argument("--min-clients", type=int, default=3)
    server.add_argument("--strategy", default="fedavg-3")
    server.add_argument("--seed", type=int, default=7)
    server.add_argument("--hang-after", type=int, default=0)
    server.add_argument("--resume", action="store_true")
    server.add_argument("--secure", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    return _client(args) if args.command == "client" else _server(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
