"""Federated learning across silos over gRPC: a server process and client processes.

The server (:func:`serve`, or :class:`GrpcEngine` driven by
:func:`privet.fl.run_federated`) and each silo's client (:func:`join`) talk
over TLS; every call carries the client's id and token, checked against the
server's table of token digests. Only :mod:`privet.wire` messages cross the
wire (the four :mod:`privet.fl.messages` kinds inside small envelopes, see
:mod:`privet.fl.deploy.protocol`). A client that disconnects mid-round fails
that round at once; the server checkpoints every round and resumes from the
newest checkpoint after a restart. With ``serve(..., secure_aggregation=...)``
every fit runs SecAgg or SecAgg+ over the same streams
(:mod:`privet.fl.deploy.secure`): the server sees masked updates only.

Needs ``grpcio`` and ``cryptography`` (``pip install privet[fl]``), imported
when a server or client starts.
"""

from __future__ import annotations

from privet.fl.deploy.checkpoint import RoundCheckpoint, latest_round, load_round, save_round
from privet.fl.deploy.client import JoinReport, join, read_token
from privet.fl.deploy.protocol import DeployError, ProtocolError, Rejection
from privet.fl.deploy.secure import GrpcSecureTransport, SecureTaskRunner
from privet.fl.deploy.server import GrpcEngine, load_token_table, serve
from privet.fl.deploy.tls import (
    TlsFiles,
    TokenTable,
    create_self_signed,
    hash_token,
    issue_tokens,
    write_private_file,
)

__all__ = [
    "DeployError",
    "GrpcEngine",
    "GrpcSecureTransport",
    "JoinReport",
    "ProtocolError",
    "Rejection",
    "RoundCheckpoint",
    "SecureTaskRunner",
    "TlsFiles",
    "TokenTable",
    "create_self_signed",
    "hash_token",
    "issue_tokens",
    "join",
    "latest_round",
    "load_round",
    "load_token_table",
    "read_token",
    "save_round",
    "serve",
    "write_private_file",
]
