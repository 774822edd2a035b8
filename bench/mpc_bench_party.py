"""One party of bench/bench_mpc.py's real-process rows (``privet.mpc.launch`` runs it).

The bench launches this script as 2 party processes beside privet's dealer process::

    launch("bench/mpc_bench_party.py", num_parties=2, seed=..., plan=...,
           args=[FOLDER, KIND, SIZE, REPEATS, THREADS])

Each party loads the inputs it owns from ``FOLDER`` (the ``.npy`` and safetensors
files the bench also writes for CrypTen) and stands in zeros of the same public
shape for the others' (a model's non-owner builds the same architecture untrained:
only the owner's weights are used). Then, in the order the simulator rows use
(:func:`mpc_privet.privet_operation`: inputs shared, then the operation):

1. one untimed run of the operation, opened and reported as ``output``: its dealer
   items are the simulator's for the same seed, so the bench checks it bit for bit;
2. ``REPEATS`` timed runs, each after a one-round barrier (both parties start
   together, as CrypTen's worker does with ``communicator.barrier()``); party 0
   reports the seconds (``seconds``) and, for the first, the rounds and bytes it
   sent (``comm``).

The file is not named ``bench_*`` because ``make bench`` runs every ``bench/bench_*.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from safetensors.torch import load_file
from torch import nn

from mpc_models import mnist_cnn, mnist_mlp
from mpc_privet import INPUT_OWNERS, MODEL_OWNER, Kind, Workload, privet_operation
from privet.errors import PrivacyError
from privet.mpc import PartyRun, connect

USAGE = "mpc_bench_party.py FOLDER KIND SIZE REPEATS THREADS"


def party_inputs(
    folder: Path, kind: Kind, party: int
) -> tuple[dict[str, NDArray[np.float64]], dict[Kind, nn.Sequential]]:
    """What ``party`` holds for workload ``kind``: its own inputs, zeros of the public shape
    for the others', and the model (trained weights at its owner only)."""
    inputs: dict[str, NDArray[np.float64]] = {}
    for stem, owner in INPUT_OWNERS[kind].items():
        path = folder / f"{stem}.npy"
        if party == owner:
            inputs[stem] = np.load(path, allow_pickle=False)
        else:  # the shape is public; the header alone tells it
            inputs[stem] = np.zeros(np.load(path, mmap_mode="r", allow_pickle=False).shape)
    models: dict[Kind, nn.Sequential] = {}
    if kind.is_model:
        model = mnist_mlp() if kind is Kind.MLP else mnist_cnn()
        if party == MODEL_OWNER:
            model.load_state_dict(load_file(str(folder / f"{kind.value}.safetensors")))
        models[kind] = model.eval()
    return inputs, models


def barrier(run: PartyRun) -> None:
    """One round in which every party sends every other a word: none leaves it before all
    have entered it."""
    run.runtime.open_ring(np.zeros((1, 1), dtype=np.uint64))


def measure(run: PartyRun, work: Workload, folder: Path, repeats: int) -> None:
    """Share, run once (reported), then time ``repeats`` runs in this party."""
    inputs, models = party_inputs(folder, work.kind, run.party)
    operation = privet_operation(work, run.session, inputs, models)
    if isinstance(operation, str):
        raise PrivacyError(f"the {work.kind.value} workload must be available, got {operation!r}")
    run.output("output", operation().reveal())
    stats = run.runtime.stats
    times, comm = [], np.zeros(2, dtype=np.int64)
    for repeat in range(repeats):
        barrier(run)
        before = (stats.rounds, stats.bytes_sent)
        started = time.perf_counter()
        operation()
        times.append(time.perf_counter() - started)
        if repeat == 0:
            comm[:] = (stats.rounds - before[0], stats.bytes_sent - before[1])
    if run.party == 0:
        run.output("seconds", np.array(times))
        run.output("comm", comm)


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print(f"usage: {USAGE}", file=sys.stderr)
        return 2
    folder, kind, size, repeats, threads = argv
    torch.set_num_threads(int(threads))
    with connect() as run:
        measure(run, Workload(Kind(kind), int(size)), Path(folder), int(repeats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
