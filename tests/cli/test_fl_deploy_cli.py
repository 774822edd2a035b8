"""``privet fl credentials | serve | join``: a real server and two silos as processes."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from privet.dp import Ledger

pytestmark = pytest.mark.slow

CONFIG = """
rounds = 2

[data]
dataset = "breast_cancer"
test_fraction = 0.25

[partition]
scheme = "iid"
clients = 2

[model]
kind = "logistic"

[training]
epochs = 1
batch_size = 16
learning_rate = 0.1

[dp]
mode = "central"
noise_multiplier = 2.0
clip_norm = 1.0
epsilon = 50.0
accountant = "rdp"
ledger = "server.sqlite"
"""

PRIVET = [sys.executable, "-m", "privet.cli.main"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_config_trains_across_silo_processes(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text(CONFIG)
    secrets = tmp_path / "credentials"
    made = subprocess.run(
        [*PRIVET, "fl", "credentials", str(secrets), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    assert (secrets / "tokens" / "client-0.token").stat().st_mode & 0o077 == 0
    address = f"127.0.0.1:{free_port()}"
    server = subprocess.Popen(
        [
            *PRIVET,
            "fl",
            "serve",
            str(config),
            "--credentials",
            str(secrets),
            "--address",
            address,
            "--min-clients",
            "2",
            "--checkpoints",
            str(tmp_path / "ckpt"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    silos = [
        subprocess.Popen(
            [
                *PRIVET,
                "fl",
                "join",
                str(config),
                "--client-id",
                f"client-{i}",
                "--token-file",
                str(secrets / "tokens" / f"client-{i}.token"),
                "--ca",
                str(secrets / "ca.pem"),
                "--address",
                address,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    try:
        served, _ = server.communicate(timeout=120)
        joined = [silo.communicate(timeout=60)[0] for silo in silos]
    finally:
        for process in (server, *silos):
            process.kill()
    assert server.returncode == 0, served
    assert "done: 2 round(s)" in served
    assert "round 2: test accuracy" in served
    for i, output in enumerate(joined):
        assert f"client-{i}: 2 fit" in output, output
    ledger = Ledger.open(tmp_path / "server.sqlite")
    assert len(ledger.history()) == 2
