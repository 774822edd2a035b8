"""The secure-fit task on the wire: ``privet.fl.secure_messages``.

Round trips for both encoders and both masking graphs; every meta field
missing, mistyped or inconsistent with the others is a :class:`WireError`
naming it; fuzzed bytes raise nothing but :class:`PrivacyError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from privet.errors import PrivacyError
from privet.fl.engine import SequentialEngine
from privet.fl.parameters import Parameters
from privet.fl.secure_client import SecureFitTask
from privet.fl.secure_engine import MaskingMode, SecAggEngine, SecureAggregation
from privet.fl.secure_messages import (
    SECURE_FIT,
    decode_secure_fit_task,
    encode_secure_fit_task,
)
from privet.fl.strategy import SecureContribution
from privet.fl.types import FitInstructions, RoundAborted
from privet.secagg.distributed_dp import DistributedDiscreteGaussian
from privet.secagg.graph import MaskingGraph
from privet.secagg.messages import SecAggParams
from privet.secagg.quantize import Quantizer
from privet.wire import Limits, WireError, decode_message, encode_message

N = 8  # clients in every hand-built task
SPARSE_DEGREE = 4  # an even degree in [2, n - 2]: a SecAgg+ (Harary) graph
SPARSE_THRESHOLD = 3  # in ((k + 1) / 2, k + 1] = (2.5, 5]
ROUND = 3

#: Every top-level meta field of an ``fl.secure_fit`` message (the module's wire format).
TOP_FIELDS = (
    "protocol",
    "client_id",
    "num_clients",
    "threshold",
    "vector_length",
    "modulus_bits",
    "round_id",
    "graph_degree",
    "graph_seed",
    "l2_clip",
    "weighted",
    "report_unclipped",
    "max_weight",
    "encoder",
    "server_round",
    "proximal_mu",
    "local_epochs",
    "learning_rate",
    "extra",
)
QUANTIZER_FIELDS = ("kind", "clip_bound", "scale", "num_clients", "stochastic")
DDG_FIELDS = (
    "kind",
    "l2_clip",
    "scale",
    "noise_multiplier",
    "dimension",
    "num_clients",
    "min_honest_clients",
    "rounding_beta",
)
ENCODER_KINDS = (
    r"encoder kind must be one of \['distributed_discrete_gaussian', 'quantizer'\], got "
)


def model() -> Parameters:
    """Several arrays and dtypes, with values whose bits a lossy codec would change."""
    arrays: dict[str, NDArray[Any]] = {
        "conv.w": np.array([[-0.0, 1e-45, 3.4028235e38], [0.1, -2.5, 7.0]], dtype=np.float32),
        "conv.b": np.array([5e-324, -0.0, 1.0 / 3.0, -1e300], dtype=np.float64),
        "scale": np.array(0.7, dtype=np.float64),  # a 0-d array
    }
    return Parameters(arrays)


SIZE = model().size  # 6 + 4 + 1 = 11


def graph(kind: str) -> MaskingGraph:
    if kind == "complete":
        return MaskingGraph.complete(N)
    return MaskingGraph.random(N, SPARSE_DEGREE, np.random.default_rng(7))


def threshold(kind: str) -> int:
    return N // 2 + 1 if kind == "complete" else SPARSE_THRESHOLD


def instructions(server_round: int = ROUND) -> FitInstructions:
    return FitInstructions(
        server_round,
        proximal_mu=0.01,
        local_epochs=2,
        learning_rate=0.05,
        extra={"batch": 32, "opt": "sgd", "shuffle": True, "decay": 0.5},
    )


def quantizer_task(
    graph_kind: str = "complete",
    l2_clip: float | None = 1.5,
    weighted: bool = True,
    client_id: int = 2,
    report_unclipped: bool = False,
) -> SecureFitTask:
    """A task as ``SecAggEngine.fit_secure`` builds it on the quantizer path."""
    clip = max(l2_clip if l2_clip is not None else 10.0, 1.0)
    encoder = Quantizer.with_max_scale(clip, 62, N, stochastic=True)
    length = SIZE + 1 + int(report_unclipped)
    params = SecAggParams(
        N, threshold(graph_kind), length, 62, round_id=ROUND, graph=graph(graph_kind)
    )
    contribution = SecureContribution(l2_clip, weighted, report_unclipped=report_unclipped)
    return SecureFitTask(params, client_id, model(), instructions(), contribution, encoder, 100_000)


def ddg(num_clients: int = N, dimension: int = SIZE) -> DistributedDiscreteGaussian:
    return DistributedDiscreteGaussian(
        l2_clip=1.0,
        scale=2.0**12,
        noise_multiplier=1.1,
        dimension=dimension,
        num_clients=num_clients,
        min_honest_clients=3,
        modulus_bits=40,
    )


def ddg_task(graph_kind: str = "complete", client_id: int = N) -> SecureFitTask:
    """A task as ``SecAggEngine.fit_secure`` builds it with distributed noise."""
    noise = ddg()
    params = SecAggParams(
        N, threshold(graph_kind), SIZE, noise.modulus_bits, round_id=ROUND, graph=graph(graph_kind)
    )
    contribution = SecureContribution(None, False, noise)
    return SecureFitTask(params, client_id, model(), instructions(), contribution, noise, 100_000)


def assert_same_task(decoded: SecureFitTask, task: SecureFitTask) -> None:
    """Every field equal, the arrays bit for bit with dtype, shape and order."""
    assert decoded.params == task.params
    assert decoded.params.masking_graph.seed == task.params.masking_graph.seed
    assert decoded.client_id == task.client_id
    assert decoded.instructions == task.instructions
    assert decoded.instructions.extra == task.instructions.extra
    assert decoded.contribution == task.contribution
    assert type(decoded.encoder) is type(task.encoder)
    assert decoded.encoder == task.encoder
    assert decoded.max_weight == task.max_weight
    assert decoded.parameters.names == task.parameters.names
    for name in task.parameters:
        got, want = decoded.parameters[name], task.parameters[name]
        assert got.dtype == want.dtype
        assert got.shape == want.shape
        assert got.tobytes() == want.tobytes()
    assert decoded == task


# -- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("graph_kind", ["complete", "sparse"])
@pytest.mark.parametrize(("l2_clip", "weighted"), [(1.5, True), (None, True), (0.5, False)])
def test_quantizer_task_round_trips(graph_kind: str, l2_clip: float | None, weighted: bool) -> None:
    task = quantizer_task(graph_kind, l2_clip, weighted)
    assert task.params.masking_graph.is_complete == (graph_kind == "complete")
    assert_same_task(decode_secure_fit_task(encode_secure_fit_task(task)), task)


@pytest.mark.parametrize("graph_kind", ["complete", "sparse"])
def test_distributed_gaussian_task_round_trips(graph_kind: str) -> None:
    task = ddg_task(graph_kind)
    decoded = decode_secure_fit_task(encode_secure_fit_task(task))
    assert_same_task(decoded, task)
    assert isinstance(decoded.encoder, DistributedDiscreteGaussian)
    # Derived values the client relies on follow from the decoded fields alone.
    assert decoded.encoder.local_sigma == task.encoder.local_sigma  # type: ignore[union-attr]
    assert decoded.contribution.distributed_noise is decoded.encoder


def test_sparse_graph_neighbourhoods_survive_the_trip() -> None:
    task = quantizer_task("sparse")
    decoded = decode_secure_fit_task(encode_secure_fit_task(task))
    mine, theirs = task.params.masking_graph, decoded.params.masking_graph
    assert not theirs.is_complete
    for client in range(1, N + 1):
        assert theirs.neighbours(client) == mine.neighbours(client)
        assert len(theirs.neighbours(client)) == SPARSE_DEGREE


def test_instructions_defaults_round_trip() -> None:
    task = quantizer_task()
    plain = FitInstructions(ROUND)  # no epochs, no learning rate, no extra
    task = SecureFitTask(
        task.params,
        task.client_id,
        task.parameters,
        plain,
        task.contribution,
        task.encoder,
        task.max_weight,
    )
    decoded = decode_secure_fit_task(encode_secure_fit_task(task))
    assert decoded.instructions == plain
    assert decoded.instructions.local_epochs is None
    assert decoded.instructions.learning_rate is None


class RecordingTransport:
    """Keeps the tasks the engine sends; no client answers, so the round aborts."""

    def __init__(self) -> None:
        self.tasks: dict[str, SecureFitTask] = {}

    def start(self, tasks: Mapping[str, SecureFitTask]) -> dict[str, bytes]:
        self.tasks = dict(tasks)
        return {}

    def exchange(self, messages: Mapping[str, bytes]) -> dict[str, bytes]:
        return {}


@pytest.mark.parametrize("mode", [MaskingMode.SECAGG, MaskingMode.SECAGG_PLUS])
@pytest.mark.parametrize("noise", [False, True])
def test_tasks_the_engine_builds_round_trip(mode: MaskingMode, noise: bool) -> None:
    n = 10
    transport = RecordingTransport()
    engine = SecAggEngine(
        transport,
        SequentialEngine({}),
        SecureAggregation(mode=mode, dropout_fraction=0.1),
        np.random.default_rng(3),
    )
    contribution = (
        SecureContribution(None, False, ddg(num_clients=n))
        if noise
        else SecureContribution(2.0, True)
    )
    names = [f"c{i}" for i in range(n)]
    with pytest.raises(RoundAborted):
        engine.fit_secure(model(), [(name, instructions()) for name in names], contribution, ROUND)
    assert sorted(transport.tasks) == sorted(names)
    for task in transport.tasks.values():
        # SecAgg+ at n = 10 and 10% dropout: secagg_plus_settings(10, 0.1, 0.0).degree == 4.
        expected_degree = n - 1 if mode is MaskingMode.SECAGG else 4
        assert task.params.masking_graph.degree == expected_degree
        assert_same_task(decode_secure_fit_task(encode_secure_fit_task(task)), task)


def test_encode_refuses_a_non_task() -> None:
    with pytest.raises(PrivacyError, match="task must be a SecureFitTask, got dict"):
        encode_secure_fit_task({})  # type: ignore[arg-type]


# -- mutated messages -------------------------------------------------------------------------


def mutated(data: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    """Decode ``data`` as a plain wire message, let ``change`` edit its meta, re-encode."""
    message = decode_message(data)
    meta = {key: value for key, value in message.meta.items()}
    meta["encoder"] = dict(meta["encoder"])
    meta["extra"] = dict(meta["extra"])
    change(meta)
    return encode_message(message.kind, meta, dict(message.arrays))


def setting(*path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(meta: dict[str, Any]) -> None:
        target = meta
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def removing(*path: str) -> Callable[[dict[str, Any]], None]:
    def change(meta: dict[str, Any]) -> None:
        target = meta
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


def refused(task: SecureFitTask, change: Callable[[dict[str, Any]], None], match: str) -> None:
    data = mutated(encode_secure_fit_task(task), change)
    with pytest.raises(WireError, match=match):
        decode_secure_fit_task(data)


@pytest.mark.parametrize("make", [quantizer_task, ddg_task])
def test_an_unchanged_re_encoding_decodes(make: Callable[[], SecureFitTask]) -> None:
    # The mutation helper itself changes nothing: every refusal below is the mutation's.
    task = make()
    assert_same_task(
        decode_secure_fit_task(mutated(encode_secure_fit_task(task), lambda meta: None)), task
    )


@pytest.mark.parametrize("name", TOP_FIELDS)
def test_a_missing_field_is_refused(name: str) -> None:
    assert set(decode_message(encode_secure_fit_task(quantizer_task())).meta) == set(TOP_FIELDS)
    refused(quantizer_task(), removing(name), r"fl\.secure_fit fields must be \[")


@pytest.mark.parametrize(
    ("make", "name"),
    [(quantizer_task, name) for name in QUANTIZER_FIELDS[1:]]
    + [(ddg_task, name) for name in DDG_FIELDS[1:]],
)
def test_a_missing_encoder_field_is_refused(make: Callable[[], SecureFitTask], name: str) -> None:
    refused(make(), removing("encoder", name), r"fl\.secure_fit encoder fields must be \[")


def test_a_missing_encoder_kind_is_refused() -> None:
    match = (
        r"encoder kind must be one of \['distributed_discrete_gaussian', 'quantizer'\], got 'None'"
    )
    refused(quantizer_task(), removing("encoder", "kind"), match)


def test_unknown_fields_are_refused() -> None:
    refused(quantizer_task(), setting("sneaky", value=1), r"fields must be .*'sneaky'")
    refused(
        quantizer_task(),
        setting("encoder", "noise", value=0.0),
        r"fl\.secure_fit encoder fields must be .*'noise'",
    )
    refused(
        ddg_task(),
        setting("encoder", "stochastic", value=True),
        r"fl\.secure_fit encoder fields must be .*'stochastic'",
    )


TOP_WRONG_TYPES: list[tuple[str, Any]] = [
    ("protocol", 1),
    ("protocol", None),
    ("client_id", True),
    ("client_id", "2"),
    ("client_id", 2.0),
    ("num_clients", False),
    ("num_clients", 8.0),
    ("threshold", "5"),
    ("vector_length", 12.5),
    ("modulus_bits", True),
    ("round_id", None),
    ("graph_degree", "7"),
    ("graph_seed", 123),
    ("graph_seed", ["00"]),
    ("l2_clip", True),
    ("l2_clip", "1.5"),
    ("weighted", 1),
    ("weighted", "true"),
    ("weighted", None),
    ("report_unclipped", 0),
    ("report_unclipped", None),
    ("max_weight", True),
    ("max_weight", 1000.0),
    ("encoder", []),
    ("encoder", "quantizer"),
    ("encoder", None),
    ("server_round", True),
    ("server_round", 3.0),
    ("proximal_mu", True),
    ("proximal_mu", "0.01"),
    ("proximal_mu", None),
    ("local_epochs", 2.0),
    ("local_epochs", True),
    ("learning_rate", False),
    ("learning_rate", "0.05"),
    ("extra", []),
    ("extra", "x"),
    ("extra", None),
]


@pytest.mark.parametrize(("name", "value"), TOP_WRONG_TYPES)
def test_a_mistyped_field_is_refused(name: str, value: Any) -> None:
    refused(
        quantizer_task(),
        setting(name, value=value),
        rf"fl\.secure_fit field '{name}' has the wrong type",
    )


@pytest.mark.parametrize(
    ("make", "name", "value"),
    [
        (quantizer_task, "clip_bound", True),
        (quantizer_task, "clip_bound", "1.5"),
        (quantizer_task, "scale", None),
        (quantizer_task, "num_clients", 8.0),
        (quantizer_task, "num_clients", True),
        (quantizer_task, "stochastic", 1),
        (quantizer_task, "stochastic", "yes"),
        (ddg_task, "l2_clip", True),
        (ddg_task, "scale", "4096"),
        (ddg_task, "noise_multiplier", None),
        (ddg_task, "dimension", 11.0),
        (ddg_task, "num_clients", True),
        (ddg_task, "min_honest_clients", "3"),
        (ddg_task, "rounding_beta", False),
        (ddg_task, "rounding_beta", [0.5]),
    ],
)
def test_a_mistyped_encoder_field_is_refused(
    make: Callable[[], SecureFitTask], name: str, value: Any
) -> None:
    refused(
        make(),
        setting("encoder", name, value=value),
        rf"fl\.secure_fit encoder field '{name}' has the wrong type",
    )


def test_extra_must_map_names_to_scalars() -> None:
    refused(quantizer_task(), setting("extra", "nested", value=[1]), "must map names to scalars")
    refused(quantizer_task(), setting("extra", "nested", value=None), "must map names to scalars")


def test_the_protocol_string_is_checked() -> None:
    refused(
        quantizer_task(),
        setting("protocol", value="privet-secure-fit/v2"),
        r"fl\.secure_fit protocol must be 'privet-secure-fit/v1', got 'privet-secure-fit/v2'",
    )


@pytest.mark.parametrize(
    ("seed", "match"),
    [
        ("zz" * 32, r"fl\.secure_fit graph_seed must be 64 lower-case hex digits, got 'zzzz"),
        ("0" * 63, "graph_seed must be 64 lower-case hex digits"),
        ("é" * 32, "graph_seed must be 64 lower-case hex digits"),
        ("00" * 31, "graph_seed must be 64 lower-case hex digits"),
        ("00" * 33, "graph_seed must be 64 lower-case hex digits"),
        ("", "graph_seed must be 64 lower-case hex digits"),
        ("AB" * 32, "graph_seed must be 64 lower-case hex digits"),  # one spelling only
        ("ab " * 21 + "a", "graph_seed must be 64 lower-case hex digits"),
    ],
)
def test_a_bad_graph_seed_is_refused(seed: str, match: str) -> None:
    refused(quantizer_task("sparse"), setting("graph_seed", value=seed), match)


def test_an_unknown_encoder_kind_is_refused() -> None:
    refused(
        quantizer_task(), setting("encoder", "kind", value="laplace"), ENCODER_KINDS + "'laplace'"
    )
    refused(quantizer_task(), setting("encoder", "kind", value=1), "encoder kind must be one of")
    # Each kind with the other kind's fields: the field set is checked per kind.
    refused(
        quantizer_task(),
        setting("encoder", "kind", value="distributed_discrete_gaussian"),
        r"fl\.secure_fit encoder fields must be",
    )
    refused(ddg_task(), setting("encoder", "kind", value="quantizer"), "encoder fields must be")


def test_another_message_kind_is_refused() -> None:
    message = decode_message(encode_secure_fit_task(quantizer_task()))
    other = encode_message("fl.fit_ins", dict(message.meta), dict(message.arrays))
    with pytest.raises(
        WireError, match=r"message kind must be 'fl\.secure_fit', got 'fl\.fit_ins'"
    ):
        decode_secure_fit_task(other)
    assert SECURE_FIT == "fl.secure_fit"


# -- consistency ------------------------------------------------------------------------------


@pytest.mark.parametrize("client_id", [0, -1, N + 1])
def test_client_id_must_be_one_of_the_n(client_id: int) -> None:
    refused(
        quantizer_task(),
        setting("client_id", value=client_id),
        rf"fl\.secure_fit client_id must be in \[1, {N}\], got {client_id}",
    )


def test_client_ids_at_both_ends_are_accepted() -> None:
    for client_id in (1, N):
        task = quantizer_task(client_id=client_id)
        assert decode_secure_fit_task(encode_secure_fit_task(task)).client_id == client_id


def test_instructions_must_be_for_the_protocol_round() -> None:
    refused(
        quantizer_task(),
        setting("server_round", value=ROUND + 1),
        rf"instructions are for round {ROUND + 1}, the protocol for round {ROUND}",
    )
    refused(
        quantizer_task(),
        setting("round_id", value=ROUND - 1),
        rf"instructions are for round {ROUND}, the protocol for round {ROUND - 1}",
    )


@pytest.mark.parametrize("make", [quantizer_task, ddg_task])
def test_the_encoder_must_cover_every_client(make: Callable[[], SecureFitTask]) -> None:
    refused(
        make(),
        setting("encoder", "num_clients", value=N - 1),
        rf"encoder must cover num_clients >= {N}, got {N - 1}",
    )


def test_a_larger_encoder_client_count_is_accepted() -> None:
    task = ddg_task()  # with_max_scale quantizers have no room for a ninth client
    # Covering more clients than the instance has only costs levels, never correctness.
    data = mutated(encode_secure_fit_task(task), setting("encoder", "num_clients", value=N + 1))
    assert decode_secure_fit_task(data).encoder.num_clients == N + 1


def test_the_quantizer_vector_carries_the_weight() -> None:
    refused(
        quantizer_task(),
        setting("vector_length", value=SIZE),
        rf"vector_length must be {SIZE + 1} for {SIZE} parameters, got {SIZE}",
    )
    refused(
        quantizer_task(),
        setting("vector_length", value=SIZE + 2),
        rf"vector_length must be {SIZE + 1} for {SIZE} parameters, got {SIZE + 2}",
    )


def test_the_distributed_vector_is_the_update_alone() -> None:
    refused(
        ddg_task(),
        setting("vector_length", value=SIZE + 1),
        rf"vector_length must be {SIZE} for {SIZE} parameters, got {SIZE + 1}",
    )


def test_the_distributed_noise_must_cover_the_parameters() -> None:
    refused(
        ddg_task(),
        setting("encoder", "dimension", value=SIZE + 1),
        rf"distributed noise must cover {SIZE} parameters, got {SIZE + 1}",
    )


def test_the_parameters_must_match_the_vector_length() -> None:
    task = quantizer_task()
    message = decode_message(encode_secure_fit_task(task))
    arrays = dict(message.arrays)
    arrays["extra.w"] = np.zeros(3, dtype=np.float32)
    with pytest.raises(WireError, match=rf"vector_length must be {SIZE + 4} for {SIZE + 3} param"):
        decode_secure_fit_task(encode_message(SECURE_FIT, dict(message.meta), arrays))


@pytest.mark.parametrize(
    ("graph_kind", "bad", "match"),
    [
        # Complete graph of 8: n/2 < t <= n, i.e. t in (4, 8].
        ("complete", 4, r"threshold must be in \(4\.0, 8\]"),
        ("complete", 9, r"threshold must be in \(4\.0, 8\]"),
        # Degree 4: (k + 1)/2 < t <= k + 1, i.e. t in (2.5, 5].
        ("sparse", 2, r"threshold must be in \(2\.5, 5\]"),
        ("sparse", 6, r"threshold must be in \(2\.5, 5\]"),
    ],
)
def test_a_threshold_outside_the_range_is_refused(graph_kind: str, bad: int, match: str) -> None:
    refused(
        quantizer_task(graph_kind),
        setting("threshold", value=bad),
        "fl.secure_fit message: " + match,
    )


def test_protocol_records_validate_themselves() -> None:
    task = quantizer_task("sparse")
    refused(task, setting("graph_degree", value=3), "degree must be n - 1 = 7 .* or even")
    refused(task, setting("num_clients", value=1), r"num_clients must be in \[2, max_clients")
    refused(task, setting("modulus_bits", value=65), "modulus_bits must be")
    refused(task, setting("round_id", value=-1), "round_id must be in")
    refused(task, setting("max_weight", value=0), r"max_weight must be >= 1, got 0")
    refused(task, setting("l2_clip", value=-1.0), "l2_clip must be None or a finite number > 0")
    refused(task, setting("learning_rate", value=0.0), "learning_rate must be > 0")
    refused(task, setting("proximal_mu", value=-0.5), "proximal_mu must be >= 0")
    refused(task, setting("local_epochs", value=0), "local_epochs must be")


def test_a_quantizer_whose_sum_could_wrap_is_refused() -> None:
    task = quantizer_task()
    encoder = task.encoder
    assert isinstance(encoder, Quantizer)
    # with_max_scale leaves no headroom: twice the scale overflows 2**61 with 8 clients.
    refused(
        task,
        setting("encoder", "scale", value=2 * encoder.scale),
        r"fl\.secure_fit message: num_clients \* ceil\(clip_bound \* scale\) must be "
        r"< 2\*\*\(modulus_bits - 1\)",
    )
    # The same scale in a smaller ring.
    refused(task, setting("modulus_bits", value=40), r"cannot wrap modulo 2\*\*40")


def test_a_distributed_encoder_whose_sum_could_wrap_is_refused() -> None:
    # n L + T = 8 * 4096 + ceil(sigma sqrt(2 n ln(2 d 2^40))) with sigma = 1.1 * 4096 / sqrt(3)
    # rounded up to 2601.5: 32768 + 57767 = 90535 (distributed_dp module docstring), which
    # is >= 2**16 (17 bits refused) and < 2**17 (18 bits accepted).
    refused(ddg_task(), setting("modulus_bits", value=17), r"cannot wrap modulo 2\*\*17")
    data = mutated(encode_secure_fit_task(ddg_task()), setting("modulus_bits", value=18))
    assert decode_secure_fit_task(data).encoder.modulus_bits == 18
    refused(
        ddg_task(),
        setting("encoder", "min_honest_clients", value=N + 1),
        r"min_honest_clients must be an integer in \[1, num_clients=8\]",
    )
    refused(ddg_task(), setting("encoder", "noise_multiplier", value=0.0), "noise_multiplier")


def test_a_distributed_sigma_beyond_float_range_is_a_wire_error() -> None:
    # Found by test_fuzz_field_values. sigma^2 = (z c s)^2 / h is above the largest float, so
    # the range check's message must not convert it to a float (that raised OverflowError).
    refused(
        ddg_task(),
        setting("encoder", "noise_multiplier", value=1e300),
        r"fl\.secure_fit message: noise_multiplier \* l2_clip \* scale / "
        r"sqrt\(min_honest_clients\) must be in \[0\.5, 2\*\*50\]",
    )


def test_a_distributed_clip_beyond_the_ring_is_a_wire_error() -> None:
    # sigma = z c s / sqrt(h) = 1e5 is in range, but c s = 1e160 is far beyond any ring;
    # squaring it for the sensitivity bound overflowed (OverflowError) before the wrap check.
    def change(meta: dict[str, Any]) -> None:
        meta["encoder"].update(
            l2_clip=1e160, scale=1.0, noise_multiplier=1e5 * math.sqrt(3) / 1e160
        )

    refused(ddg_task(), change, r"fl\.secure_fit message: ")


# -- limits and fuzzing -----------------------------------------------------------------------


def test_a_message_above_the_size_limit_is_refused() -> None:
    data = encode_secure_fit_task(quantizer_task())
    assert decode_secure_fit_task(data, limits=Limits(max_message_bytes=len(data))) is not None
    with pytest.raises(WireError, match=rf"message is {len(data)} bytes, above max_message_bytes"):
        decode_secure_fit_task(data, limits=Limits(max_message_bytes=len(data) - 1))
    with pytest.raises(WireError, match="above max_header_bytes=64"):
        decode_secure_fit_task(data, limits=Limits(max_header_bytes=64))


def decodes_or_refuses(data: bytes) -> None:
    """Decoding returns a task or raises PrivacyError; any other exception fails the test."""
    try:
        task = decode_secure_fit_task(data)
    except PrivacyError:
        return
    assert isinstance(task, SecureFitTask)


VALID = (encode_secure_fit_task(quantizer_task("sparse")), encode_secure_fit_task(ddg_task()))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    decodes_or_refuses(data)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_fuzz_byte_mutations_of_a_valid_task(data: st.DataObject) -> None:
    original = VALID[data.draw(st.integers(0, len(VALID) - 1), label="which")]
    index = data.draw(st.integers(0, len(original) - 1), label="index")
    byte = data.draw(st.integers(0, 255), label="byte")
    changed = bytearray(original)
    changed[index] = byte
    decodes_or_refuses(bytes(changed))


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_fuzz_truncations_and_insertions(data: st.DataObject) -> None:
    original = VALID[data.draw(st.integers(0, len(VALID) - 1), label="which")]
    cut = data.draw(st.integers(0, len(original)), label="cut")
    decodes_or_refuses(original[:cut])
    inserted = data.draw(st.binary(min_size=1, max_size=8), label="inserted")
    decodes_or_refuses(original[:cut] + inserted + original[cut:])


#: JSON values of every kind the wire allows, biased to the edges of each range.
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, 1, 2, -1, N, N + 1, 2**31, 2**32 - 1, 2**62, 2**63 - 1, -(2**63)]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 5e-324, 1e-300, 0.5, 1.0, 1e300, 1.7976931348623157e308]),
    st.text(max_size=70),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_field_values(data: st.DataObject) -> None:
    """Any JSON value in any one field (or two): a task or a PrivacyError, nothing else."""
    original = VALID[data.draw(st.integers(0, len(VALID) - 1), label="which")]
    meta_keys = list(decode_message(original).meta)
    encoder_keys = [f"encoder.{key}" for key in decode_message(original).meta["encoder"]]
    paths = data.draw(st.lists(st.sampled_from(meta_keys + encoder_keys), min_size=1, max_size=2))
    changes = [(path, data.draw(JSON_VALUES, label=path)) for path in paths]

    def change(meta: dict[str, Any]) -> None:
        for path, value in changes:
            keys = path.split(".")
            if len(keys) == 1 or isinstance(meta["encoder"], dict):  # "encoder" may be replaced
                setting(*keys, value=value)(meta)

    decodes_or_refuses(mutated(original, change))


def test_fuzz_helpers_fail_on_a_foreign_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fuzz tests can fail: an exception other than PrivacyError escapes the helper.
    import privet.fl.secure_messages as module

    def broken(data: bytes, **kwargs: Any) -> Any:
        raise KeyError("boom")

    monkeypatch.setattr(module, "decode_message", broken)
    with pytest.raises(KeyError):
        decodes_or_refuses(VALID[0])


def test_a_task_for_more_clients_than_max_clients_is_refused_before_building_state() -> None:
    """A 600-byte task naming 2**32 - 1 clients would make the client build every id and
    neighbourhood (terabytes); the decoder refuses n above its cap first."""
    task = quantizer_task("sparse")
    data = encode_secure_fit_task(task)
    n = task.params.num_clients
    assert decode_secure_fit_task(data, max_clients=n).params.num_clients == n
    with pytest.raises(WireError, match=rf"num_clients must be in \[2, max_clients={n - 1}\]"):
        decode_secure_fit_task(data, max_clients=n - 1)
    huge = mutated(data, setting("num_clients", value=2**32 - 1))
    with pytest.raises(WireError, match="max_clients=100000"):
        decode_secure_fit_task(huge)
    with pytest.raises(PrivacyError, match="max_clients must be an integer >= 2, got 1"):
        decode_secure_fit_task(data, max_clients=1)


def test_the_unclipped_bit_travels_and_lengthens_the_vector_by_one() -> None:
    task = quantizer_task(report_unclipped=True)
    decoded = decode_secure_fit_task(encode_secure_fit_task(task))
    assert decoded.contribution == task.contribution
    assert decoded.params.vector_length == SIZE + 2
    # Without the extra coordinate the layout no longer matches: refused.
    refused(task, setting("vector_length", value=SIZE + 1), "vector_length must be")
    refused(quantizer_task(), setting("report_unclipped", value=True), "vector_length must be")
    # The bit needs a clip bound to be measured against.
    refused(
        task,
        setting("l2_clip", value=None),
        "report_unclipped must be False unless l2_clip is set",
    )
