"""Fixtures of the gRPC deployment tests (TLS files, child processes, engines)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from grpc_harness import WAIT, Party
from grpc_party import TOKENS

from privet.fl.deploy import GrpcEngine, TlsFiles, TokenTable, create_self_signed


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return create_self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Party]]:
    parties: list[Party] = []

    def start(*args: str) -> Party:
        party = Party(list(args), tmp_path / f"party-{len(parties)}.log")
        parties.append(party)
        return party

    yield start
    for party in parties:
        party.kill()


@pytest.fixture
def launch_client(launch: Callable[..., Party], tls: TlsFiles) -> Callable[..., Party]:
    def start(
        port: int,
        client_id: str,
        *,
        token: str | None = None,
        ca: Path | None = None,
        sleep_round: int = 0,
        connect_timeout: float = 20.0,
    ) -> Party:
        return launch(
            "client",
            f"--address=127.0.0.1:{port}",
            f"--client-id={client_id}",
            f"--token={token if token is not None else TOKENS[client_id]}",
            f"--ca={ca if ca is not None else tls.ca_certificate}",
            f"--sleep-round={sleep_round}",
            f"--connect-timeout={connect_timeout}",
        )

    return start


@pytest.fixture
def make_engine(tls: TlsFiles) -> Iterator[Callable[..., GrpcEngine]]:
    engines: list[GrpcEngine] = []

    def make(round_timeout: float = WAIT) -> GrpcEngine:
        engine = GrpcEngine(
            "127.0.0.1:0",
            TokenTable.from_tokens(TOKENS),
            certificate_chain=tls.server_certificate.read_bytes(),
            private_key=tls.server_key.read_bytes(),
            round_timeout=round_timeout,
        )
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()
