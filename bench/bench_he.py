"""Homomorphic encryption, privet against its peers side by side in one run: Paillier
2048-bit against phe (python-paillier, with gmpy2), then CKKS encrypted logistic
inference against the same computation written directly against TenSEAL.

Paillier
--------

The same 1,000 floats, uniform in [-100, 100) (seed 0), go through both
libraries in one run: key generation (the median of 5), encryption of all
1,000, their homomorphic sum, decryption of the sum and decryption of all
1,000. Each library uses its own fresh 2048-bit key pair; both compute on
gmpy2 (phe uses it automatically when installed). Every figure is one timed
run except keygen; the checks column gives each result's largest error against
float64 (``math.fsum`` for sums).

privet's modes, and what each assumes (privet.he.randomness has the argument):

* ``naive r^n``: plain Paillier, ``r`` uniform in ``Z_n^*`` (DCRA only). The
  same work as phe's encryption; the reference the others are tested against.
* ``CRT (secret key)``: the same distribution of ``r^n``, drawn modulo ``p^2``
  and ``q^2`` (DCRA only); for a key holder encrypting its own data.
* ``DJN l=1024`` (``DjnRandomness`` default, ``l = |n|/2``) and ``DJN l=256``
  (``2 kappa``): ``h_s^a`` for a short random ``a`` from a fixed-base table
  (Damgård, Jurik and Nielsen, IJIS 2010, §4.1). Semantic security needs DJN's
  short-exponent variant of DCRA, an assumption beyond DCRA: for ``l = |n|/2``
  supported by Håstad, Schrift and Shamir (1993) under factoring, for
  ``l = 256`` only by the cost of the best known attack (about ``2^128``). The
  table is built once per public key (``DJN table`` rows) and is counted in
  every total that uses it.
* ``packed``: many values per plaintext, encrypted with DJN l=1024. With 32
  fractional bits, the bound 100 and 16 headroom bits (sums of up to 65,536
  packed arrays cannot carry) a slot is ``bitlen(2 * 100 * 2^32) + 16 = 56`` bits
  and a 2048-bit plaintext holds 36 of them: 28 ciphertexts for 1,000 values
  (the note under the table prints the layout used). The sum is a "fold" of
  those ciphertexts into one whose slots hold partial sums, added in the clear
  after decryption: the decryptor learns one partial sum per slot, not only the
  total. Same assumptions as DJN, nothing more (packing is exact).

Decryption is CRT decryption on both sides (Paillier 1999, §7; phe does the
same): per ciphertext it costs the same, so unpacked "decrypt 1,000" is near
1x and only packing (30 decryptions instead of 1,000) speeds it up.

Totals (``encrypt + sum + decrypt``): the issue's target is phe's seconds at
least 10x privet's. The first block decrypts only the sum (the aggregation
pattern: many values encrypted, one result decrypted); the second decrypts all
1,000 values as well.

CKKS
----
Encrypted logistic inference on 1,000 x 30 rows (scikit-learn's breast cancer set,
standardized, 1,000 rows drawn with replacement, seed 0; a fitted
``LogisticRegression`` loaded with ``EncryptedLogisticRegression.from_sklearn``, a
degree-3 sigmoid on the decision range), one ciphertext per feature: privet
(``encrypt_columns``, ``predict_proba``, ``decrypt``) against the same arithmetic
written against TenSEAL, on exactly the parameters privet chooses
(``requirements.parameters(precision_bits=12, ...)``), each side with its own keys.
Encrypt, evaluate (the server's inference), decrypt and their total are each the
median of 5 repetitions; the ratio is privet's seconds over TenSEAL's (lower is
better) and the issue's target is at most 1.1x on evaluate and on total.

One ciphertext per row (``dot`` with the weights: rotations, so Galois keys) is
measured with raw TenSEAL on 10 rows and extrapolated to 1,000 (the rows say so),
against feature packing's TenSEAL figures; the public contexts each layout sends
(relinearization keys only, and with Galois keys) are measured in serialized bytes.
Agreement is checked: privet against TenSEAL and both against the plaintext
polynomial (within the 2^-12 the parameters were chosen for), and the classes
against scikit-learn's ``predict``. bench/ckks_inference.py has the details.

Run ``python bench/bench_he.py`` (about a minute on 2 cores, most of it phe, privet's
naive encryption and the row-packed rows) or with ``--quick`` for a smoke run of a few
seconds: Paillier with 1024-bit keys (``insecure_for_tests``), 20 values, one keygen;
CKKS on 200 rows, one repetition, 2 row-packed rows, the same parameters and code
path (the figures mean nothing). ``--no-phe`` leaves phe out, ``--no-ckks`` the CKKS
half.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType

import numpy as np
from numpy.typing import NDArray
from rich.table import Table

from cli_helpers import make_console, package_version, positive_int, timed
from privet.he import (
    CrtRandomness,
    DjnRandomness,
    NaiveRandomness,
    PaillierPublicKey,
    PaillierSecretKey,
    Randomness,
    decrypt,
    decrypt_packed,
    encrypt,
    encrypt_packed,
    generate_keypair,
)

SEED = 0
KEY_BITS = 2048
VALUES = 1_000
BOUND = 100.0
FRAC_BITS = 32
SHORT_EXPONENT_BITS = 256  # 2 kappa, kappa = 128
KEYGEN_REPEATS = 5
QUICK_KEY_BITS = 1024
QUICK_VALUES = 20
TARGET_RATIO = 10.0  # phe seconds >= 10x privet's on encrypt + sum + decrypt (the issue's)
MISSING = "—"
# -- the measurements --------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """Seconds of one system on one operation, and the largest error of its result."""

    seconds: float
    error: float | None = None


@dataclass(frozen=True)
class Row:
    operation: str
    mode: str
    privet: Measured | None
    phe: Measured | str  # a string says why phe has no figure
    total: bool = False  # judged against the target
    end_section: bool = False

    @property
    def ratio(self) -> float | None:
        """phe seconds / privet seconds."""
        if self.privet is None or isinstance(self.phe, str):
            return None
        return self.phe.seconds / self.privet.seconds

    @property
    def target_met(self) -> bool | None:
        ratio = self.ratio
        return None if not self.total or ratio is None else ratio >= TARGET_RATIO


def load_phe() -> ModuleType | str:
    """phe, or why it cannot be used."""
    try:
        import phe
        import phe.util
    except ImportError as error:
        return f"phe does not import: {error}"
    if not phe.util.HAVE_GMP:
        return "phe runs without gmpy2: not a fair peer"
    return phe


def load_ckks() -> ModuleType | str:
    """bench/ckks_inference.py (it imports TenSEAL and scikit-learn), or why it cannot run."""
    try:
        import ckks_inference
    except ImportError as error:
        return f"the CKKS half does not import: {error}"
    return ckks_inference


def max_error(got: NDArray[np.float64] | list[float], want: NDArray[np.float64]) -> float:
    return float(np.max(np.abs(np.asarray(got, dtype=np.float64) - want)))


@dataclass(frozen=True)
class PrivetResults:
    keygen: Measured
    tables: dict[str, Measured]  # DJN mode -> table build
    encrypt: dict[str, Measured]  # mode -> encrypt 1,000
    sum: Measured
    decrypt_sum: Measured
    decrypt_all: Measured
    packed_encrypt: Measured
    packed_sum: Measured
    packed_decrypt_sum: Measured
    packed_decrypt_all: Measured
    packed_note: str
    default_mode: str  # DJN at |n|/2, the DjnRandomness default
    short_mode: str  # DJN at 2 kappa


def measure_privet(x: NDArray[np.float64], bits: int, quick: bool) -> PrivetResults:
    insecure = bits < KEY_BITS
    repeats = 1 if quick else KEYGEN_REPEATS
    keys: list[tuple[PaillierPublicKey, PaillierSecretKey]] = []
    seconds = []
    for _ in range(repeats):
        pair, took = timed(lambda: generate_keypair(bits, insecure_for_tests=insecure))
        keys.append(pair)
        seconds.append(took)
    public, secret = keys[-1]
    keygen = Measured(statistics.median(seconds))

    djn_default, table_default = timed(lambda: DjnRandomness(public))
    djn_short, table_short = timed(lambda: DjnRandomness(public, exponent_bits=SHORT_EXPONENT_BITS))
    tables = {
        djn_default.name: Measured(table_default),
        djn_short.name: Measured(table_short),
    }
    sources: list[Randomness] = [
        NaiveRandomness(public),
        CrtRandomness(secret),
        djn_default,
        djn_short,
    ]
    encrypted = {}
    timings = {}
    for source in sources:
        result, took = timed(
            lambda source=source: encrypt(
                public, x, bound=BOUND, frac_bits=FRAC_BITS, randomness=source
            )
        )
        encrypted[source.name] = result
        timings[source.name] = Measured(took, max_error(decrypt(secret, result), x))
    main = encrypted[djn_default.name]
    total, sum_s = timed(main.sum)
    decrypted_sum, decrypt_sum_s = timed(lambda: float(decrypt(secret, total)))
    want_sum = math.fsum(x.tolist())
    decrypted, decrypt_all_s = timed(lambda: decrypt(secret, main))

    packed, packed_s = timed(
        lambda: encrypt_packed(public, x, bound=BOUND, frac_bits=FRAC_BITS, randomness=djn_default)
    )
    folded, fold_s = timed(packed.fold)
    packed_total, packed_decrypt_s = timed(
        lambda: math.fsum(decrypt_packed(secret, folded).tolist())
    )
    packed_values, packed_all_s = timed(lambda: decrypt_packed(secret, packed))
    layout = packed.layout
    note = (
        f"{layout.slots} slots x {layout.slot_bits} bits, {len(packed.ciphertexts)} "
        f"ciphertexts; headroom {layout.headroom_bits} bits"
    )
    return PrivetResults(
        keygen=keygen,
        tables=tables,
        encrypt=timings,
        sum=Measured(sum_s),
        decrypt_sum=Measured(decrypt_sum_s, abs(decrypted_sum - want_sum)),
        decrypt_all=Measured(decrypt_all_s, max_error(decrypted, x)),
        packed_encrypt=Measured(packed_s),
        packed_sum=Measured(fold_s),
        packed_decrypt_sum=Measured(packed_decrypt_s, abs(packed_total - want_sum)),
        packed_decrypt_all=Measured(packed_all_s, max_error(packed_values, x)),
        packed_note=note,
        default_mode=djn_default.name,
        short_mode=djn_short.name,
    )


@dataclass(frozen=True)
class PheResults:
    keygen: Measured
    encrypt: Measured
    sum: Measured
    decrypt_sum: Measured
    decrypt_all: Measured


def measure_phe(phe: ModuleType, x: NDArray[np.float64], bits: int, quick: bool) -> PheResults:
    repeats = 1 if quick else KEYGEN_REPEATS
    seconds = []
    for _ in range(repeats):
        (public, private), took = timed(lambda: phe.generate_paillier_keypair(n_length=bits))
        seconds.append(took)
    values = x.tolist()
    numbers, encrypt_s = timed(lambda: [public.encrypt(v) for v in values])
    total, sum_s = timed(lambda: functools.reduce(lambda a, b: a + b, numbers))
    decrypted_sum, decrypt_sum_s = timed(lambda: private.decrypt(total))
    decrypted, decrypt_all_s = timed(lambda: [private.decrypt(n) for n in numbers])
    return PheResults(
        keygen=Measured(statistics.median(seconds)),
        encrypt=Measured(encrypt_s, max_error(decrypted, x)),
        sum=Measured(sum_s),
        decrypt_sum=Measured(decrypt_sum_s, abs(decrypted_sum - math.fsum(values))),
        decrypt_all=Measured(decrypt_all_s, max_error(decrypted, x)),
    )


def add(*parts: Measured) -> Measured:
    return Measured(sum(p.seconds for p in parts))


def build_rows(privet: PrivetResults, phe: PheResults | str, count: int, bits: int) -> list[Row]:
    def peer(pick: Callable[[PheResults], Measured]) -> Measured | str:
        return phe if isinstance(phe, str) else pick(phe)

    def peer_total(*picks: Callable[[PheResults], Measured]) -> Measured | str:
        return phe if isinstance(phe, str) else add(*(pick(phe) for pick in picks))

    default, short = privet.default_mode, privet.short_mode
    none = "no such step"
    rows = [
        Row(f"keygen {bits}-bit (median)", "cryptography RSA primes", privet.keygen,
            peer(lambda p: p.keygen)),
        Row("DJN table (once per key)", default, privet.tables[default], none),
        Row("DJN table (once per key)", short, privet.tables[short], none, end_section=True),
    ]  # fmt: skip
    for mode, measured in privet.encrypt.items():
        rows.append(Row(f"encrypt {count:,}", mode, measured, peer(lambda p: p.encrypt)))
    rows += [
        Row(f"sum {count:,} (homomorphic)", default, privet.sum, peer(lambda p: p.sum)),
        Row("decrypt the sum", "CRT", privet.decrypt_sum, peer(lambda p: p.decrypt_sum)),
        Row(f"decrypt {count:,}", "CRT", privet.decrypt_all, peer(lambda p: p.decrypt_all),
            end_section=True),
        Row(f"encrypt {count:,} packed", f"packed, {default}", privet.packed_encrypt,
            peer(lambda p: p.encrypt)),
        Row(f"sum {count:,} packed (fold)", f"packed, {default}", privet.packed_sum,
            peer(lambda p: p.sum)),
        Row("decrypt the sum packed", f"packed, {default}", privet.packed_decrypt_sum,
            peer(lambda p: p.decrypt_sum)),
        Row(f"decrypt {count:,} packed", f"packed, {default}", privet.packed_decrypt_all,
            peer(lambda p: p.decrypt_all), end_section=True),
    ]  # fmt: skip
    enc_sum_dec = peer_total(lambda p: p.encrypt, lambda p: p.sum, lambda p: p.decrypt_sum)
    tail = (privet.sum, privet.decrypt_sum)
    for mode in privet.encrypt:
        table = (privet.tables[mode],) if mode in privet.tables else ()
        label = mode + (" + table" if table else "")
        rows.append(
            Row("encrypt + sum + decrypt sum", label,
                add(*table, privet.encrypt[mode], *tail), enc_sum_dec, total=True)
        )  # fmt: skip
    rows.append(
        Row("encrypt + sum + decrypt sum", f"packed, {default} + table",
            add(privet.tables[default], privet.packed_encrypt, privet.packed_sum,
                privet.packed_decrypt_sum),
            enc_sum_dec, total=True, end_section=True)
    )  # fmt: skip
    enc_sum_all = peer_total(
        lambda p: p.encrypt, lambda p: p.sum, lambda p: p.decrypt_sum, lambda p: p.decrypt_all
    )
    rows += [
        Row(f"encrypt + sum + decrypt sum + decrypt {count:,}", f"{default} + table",
            add(privet.tables[default], privet.encrypt[default], *tail, privet.decrypt_all),
            enc_sum_all, total=True),
        Row(f"encrypt + sum + decrypt sum + decrypt {count:,}", f"packed, {default} + table",
            add(privet.tables[default], privet.packed_encrypt, privet.packed_sum,
                privet.packed_decrypt_sum, privet.packed_decrypt_all),
            enc_sum_all, total=True),
    ]  # fmt: skip
    return rows


# -- the table ---------------------------------------------------------------------------------


def fmt_seconds(measured: Measured | str | None) -> str:
    if measured is None or isinstance(measured, str):
        return MISSING
    return f"{measured.seconds:.3g}"


def fmt_error(measured: Measured | str | None) -> str:
    if measured is None or isinstance(measured, str) or measured.error is None:
        return ""
    return f"{measured.error:.1e}"


def table(rows: list[Row], bits: int) -> Table:
    result = Table(
        title=f"Paillier {bits}-bit, privet vs phe (gmpy2), seconds (one run; keygen: median)",
        title_justify="left",
    )
    for name in ("operation", "privet mode"):
        result.add_column(name, justify="left")
    for name in (
        "privet s",
        "phe s",
        "phe s\n/ privet s",
        f"target\n≥ {TARGET_RATIO:g}×",
        "privet\nmax |err|",
        "phe\nmax |err|",
    ):
        result.add_column(name, justify="right")
    result.add_column("note", overflow="fold", min_width=16)
    for row in rows:
        ratio = MISSING if row.ratio is None else f"{row.ratio:.1f}×"
        target = {True: "met", False: "missed", None: ""}[row.target_met]
        if row.total and row.target_met is None:
            target = MISSING
        note = row.phe if isinstance(row.phe, str) else ""
        result.add_row(
            row.operation,
            row.mode,
            fmt_seconds(row.privet),
            fmt_seconds(row.phe),
            ratio,
            target,
            fmt_error(row.privet),
            fmt_error(row.phe),
            note,
            end_section=row.end_section,
        )
    return result


def summary(rows: list[Row], count: int) -> str:
    met = [r.mode for r in rows if r.target_met is True and r.operation.endswith("decrypt sum")]
    missed = [r.mode for r in rows if r.target_met is False and r.operation.endswith("decrypt sum")]
    full = [r for r in rows if r.total and not r.operation.endswith("decrypt sum")]
    full_met = [r.mode for r in full if r.target_met is True]
    if all(r.target_met is None for r in rows if r.total):
        return f"target (phe s ≥ {TARGET_RATIO:g}× privet s, encrypt + sum + decrypt): not measured"
    return (
        f"target (phe s ≥ {TARGET_RATIO:g}× privet s on encrypt + sum + decrypt sum): met by "
        f"{', '.join(met) or 'none'}; missed by {', '.join(missed) or 'none'}. "
        f"With all {count:,} values decrypted as well: met by {', '.join(full_met) or 'none'}."
    )


def machine_facts() -> str:
    return (
        f"python {platform.python_version()} · numpy {np.__version__} · gmpy2 "
        f"{package_version('gmpy2')} · phe {package_version('phe')} · cryptography "
        f"{package_version('cryptography')} · tenseal {package_version('tenseal')} · "
        f"scikit-learn {package_version('scikit-learn')} · privet {package_version('privet')} · "
        f"{os.cpu_count()} CPUs · {platform.machine()} · "
        f"{datetime.now().astimezone().isoformat(timespec='seconds')}"
    )


# -- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK_KEY_BITS}-bit keys (insecure, for tests), {QUICK_VALUES} values",
    )
    parser.add_argument("--values", type=positive_int, default=None, help="how many floats")
    parser.add_argument("--no-phe", action="store_true", help="privet's Paillier figures only")
    parser.add_argument("--no-ckks", action="store_true", help="leave out the CKKS half")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quick: bool = args.quick
    bits = QUICK_KEY_BITS if quick else KEY_BITS
    count = args.values or (QUICK_VALUES if quick else VALUES)
    console = make_console()
    started = time.perf_counter()
    console.print(machine_facts())
    x = np.random.default_rng(SEED).uniform(-BOUND, BOUND, count)
    privet = measure_privet(x, bits, quick)
    console.print(f"privet done at {time.perf_counter() - started:.1f} s")
    phe_results: PheResults | str
    if args.no_phe:
        phe_results = "skipped (--no-phe)"
    else:
        phe = load_phe()
        phe_results = phe if isinstance(phe, str) else measure_phe(phe, x, bits, quick)
        console.print(f"phe done at {time.perf_counter() - started:.1f} s")
    rows = build_rows(privet, phe_results, count, bits)
    console.print(table(rows, bits))
    console.print(
        f"note: {count:,} floats uniform in [-{BOUND:g}, {BOUND:g}), seed {SEED}; privet encodes "
        f"them with {FRAC_BITS} fractional bits and a declared bound of {BOUND:g}, phe with its "
        "own per-value exponent (base 16). Packed: "
        + privet.packed_note
        + "; its sum decrypts one partial sum per slot, added in the clear. Totals with a DJN mode "
        "include building its table; decryption is CRT on both sides."
        + (" Quick: insecure 1024-bit keys, the figures mean nothing." if quick else "")
    )
    console.print(summary(rows, count))
    if not args.no_ckks:
        ckks = load_ckks()
        if isinstance(ckks, str):
            console.print(f"CKKS: not measured: {ckks}", markup=False)
        else:
            ckks.report(console, quick=quick)
    console.print(f"total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
