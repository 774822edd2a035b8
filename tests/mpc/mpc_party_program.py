"""The party program of the network tests: run in the simulator, in threads, or as a script.

As a script (``python mpc_party_program.py MODE [ROUNDS]``) it is what
:func:`privet.mpc.launch` starts in every party process:

* ``full``: :func:`program`, every output reported; ``light``: the same without the
  matrix products (whose ring kernel imports torch, a second per process);
* ``kill ROUNDS`` / ``exit ROUNDS`` / ``hang ROUNDS``: products in a loop; after
  ROUNDS of them the last party SIGKILLs itself / party 0 exits with status 3 /
  the last party stops answering (sleeps), while the others carry on.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np
from numpy.typing import NDArray

from privet.mpc import Session

LEFT = np.random.default_rng(1).normal(size=(3, 4)) * 5  # party 0's input
RIGHT = np.random.default_rng(2).normal(size=(3, 4)) * 5  # the last party's input
WEIGHTS = np.random.default_rng(3).normal(size=(4, 2))  # the last party's too


def _mine(session: Session, owner: int, values: NDArray[np.float64]) -> NDArray[np.float64]:
    """The owner passes its input; every other party an array of the same shape."""
    return values if owner in session.runtime.local_parties else np.zeros_like(values)


def program(session: Session, matmul: bool = True) -> dict[str, NDArray[np.generic]]:
    """Sharing by both owners, +, *, @, truncation, comparisons, ReLU; every result as its
    revealed reals, its opened ring elements and this process's share rows."""
    last = session.runtime.num_parties - 1
    x = session.share(_mine(session, 0, LEFT), owner=0)
    y = session.share(_mine(session, last, RIGHT), owner=last)
    w = session.share(_mine(session, last, WEIGHTS), owner=last)
    results = {
        "sum": x + y,
        "product": x * y,  # Beaver product, then truncation
        "scaled": x * 0.3,  # public real: truncation alone
        "less": x < y,
        "relu": (x - y).relu(),
    }
    if matmul:
        results["matmul"] = x @ w
        results["mixed"] = ((x * y) @ w).relu() + 1.5
    outputs: dict[str, NDArray[np.generic]] = {}
    for name, tensor in results.items():
        outputs[f"{name}.shares"] = tensor.shares
        outputs[f"{name}.ring"] = session.runtime.open_ring(tensor.shares)
        outputs[f"{name}.real"] = tensor.reveal()
    return outputs


def looping(session: Session, mode: str, rounds: int) -> None:
    """Products in a loop; one party fails after ``rounds`` of them."""
    last = session.runtime.num_parties - 1
    me = session.runtime.local_parties[0]
    x = session.share(_mine(session, 0, LEFT), owner=0)
    for step in range(10_000):
        if step == rounds:
            if mode == "kill" and me == last:
                os.kill(os.getpid(), signal.SIGKILL)
            if mode == "exit" and me == 0:
                os._exit(3)
            if mode == "hang" and me == last:
                time.sleep(600)
        x = x * 1.0001


def main() -> None:
    from privet.mpc import connect

    mode = sys.argv[1]
    with connect() as run:
        if mode in ("full", "light"):
            for name, value in program(run.session, matmul=mode == "full").items():
                run.output(name, value)
        else:
            looping(run.session, mode, int(sys.argv[2]))


if __name__ == "__main__":
    main()
