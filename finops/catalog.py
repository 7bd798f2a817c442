"""Price sheets and the backend catalogue, kept as data.

Why data and not code: providers change prices without warning, and an estimate or a cost row must
say which prices produced it long after they changed. Each ``PriceSheet`` is immutable and carries a
``sheet_id`` plus a ``version``; a price change is a *new* sheet with a later ``effective_from``,
never an edit, so every estimate stamped ``(sheet_id, version)`` can be recomputed and audited.
The formulas that read these parameters live in ``finops.formulas`` (one per ``family``); the
parameter names each family needs are listed in ``FAMILY_PARAMETERS`` and checked on construction,
so a sheet loaded from the database cannot silently miss a price.

Every sheet also has ``evidence_storage_usd``: QCOS's own per-job fee for storing the signed
evidence bundle (default $0). It exists on local-simulator sheets too, because storage costs money
even when compute does not.

Figures are those recorded in the project's field reference (REFERENCE.md §1) from the providers'
public pages; ``notes`` say where a figure is an assumption rather than a published price.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

D = Decimal

# Parameter names each pricing family reads. ``evidence_storage_usd`` is common to all.
FAMILY_PARAMETERS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "local": frozenset(),
        "braket_qpu": frozenset({"per_task_usd", "per_shot_usd"}),
        "braket_simulator": frozenset({"per_minute_usd", "minimum_billed_ms"}),
        "ibm_payg": frozenset({"per_second_usd", "subjob_overhead_s", "billing_increment_s"}),
        "azure_ionq": frozenset(
            {"per_1q_gate_shot_usd", "per_2q_gate_shot_usd", "minimum_usd", "minimum_em_usd", "minimum_added"}
        ),
        "quantinuum_hqc": frozenset(
            {"usd_per_hqc", "hqc_base", "hqc_divisor", "weight_1q", "weight_2q", "weight_spam"}
        ),
        "rigetti_azure": frozenset({"usd_per_increment", "increment_ms"}),
    }
)
COMMON_PARAMETERS = frozenset({"evidence_storage_usd"})


@dataclass(frozen=True)
class PriceSheet:
    """One immutable, versioned set of prices for one pricing family.

    ``parameters`` hold Decimals only: a float such as 0.1 is already wrong in binary, and a price
    that is wrong by 1e-17 becomes a visible cent after enough shots. They are stored read-only so a
    caller cannot alter the module-level defaults that every other estimate shares.
    """

    sheet_id: str
    version: str
    family: str
    effective_from: date
    parameters: Mapping[str, Decimal]
    currency: str = "USD"
    notes: str = ""

    def __post_init__(self) -> None:
        if self.family not in FAMILY_PARAMETERS:
            raise ValueError(f"unknown pricing family {self.family!r}")
        if self.currency != "USD":
            # Budgets are kept in USD; a second currency needs an exchange-rate policy first.
            raise ValueError(f"price sheet {self.sheet_id} is in {self.currency}; only USD is supported")
        params = dict(self.parameters)
        params.setdefault("evidence_storage_usd", D(0))
        missing = (FAMILY_PARAMETERS[self.family] | COMMON_PARAMETERS) - params.keys()
        if missing:
            raise ValueError(f"price sheet {self.sheet_id} v{self.version} lacks {sorted(missing)}")
        for name, value in params.items():
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                raise ValueError(f"{self.sheet_id}.{name} must be a finite Decimal >= 0, got {value!r}")
        object.__setattr__(self, "parameters", MappingProxyType(params))

    @property
    def key(self) -> tuple[str, str]:
        return (self.sheet_id, self.version)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (Decimals as strings, so no float ever touches a price)."""
        return {
            "sheet_id": self.sheet_id,
            "version": self.version,
            "family": self.family,
            "currency": self.currency,
            "effective_from": self.effective_from.isoformat(),
            "parameters": {k: str(v) for k, v in sorted(self.parameters.items())},
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PriceSheet:
        """Inverse of ``to_dict``; parameters must be strings or Decimals (floats are refused)."""
        params: dict[str, Decimal] = {}
        for name, value in data["parameters"].items():
            if isinstance(value, float):
                raise ValueError(f"parameter {name} is a float; give prices as strings")
            params[name] = D(value)
        return cls(
            sheet_id=data["sheet_id"],
            version=str(data["version"]),
            family=data["family"],
            currency=data.get("currency", "USD"),
            effective_from=date.fromisoformat(data["effective_from"]),
            parameters=params,
            notes=data.get("notes", ""),
        )


_ADOPTED = date(2025, 1, 1)  # when QCOS adopted these published figures (REFERENCE.md §1)


def _braket_qpu(sheet_id: str, per_shot: str, device: str) -> PriceSheet:
    return PriceSheet(
        sheet_id=sheet_id,
        version="1",
        family="braket_qpu",
        effective_from=_ADOPTED,
        parameters={"per_task_usd": D("0.30"), "per_shot_usd": D(per_shot)},
        notes=f"Amazon Braket {device}: $0.30 per task + ${per_shot} per shot (on-demand, no reservation). "
        "Failed and cancelled tasks cost 0, as in braket.tracking.",
    )


def _braket_sim(sheet_id: str, device: str) -> PriceSheet:
    return PriceSheet(
        sheet_id=sheet_id,
        version="1",
        family="braket_simulator",
        effective_from=_ADOPTED,
        parameters={"per_minute_usd": D("0.075"), "minimum_billed_ms": D(3000)},
        notes=f"Amazon Braket {device}: $0.075 per minute, metered by the millisecond with a 3,000 ms "
        "minimum per task (braket.tracking.tracker: max(duration, MIN_SIMULATOR_DURATION) x price / 60,000 ms).",
    )


def _azure_ionq(sheet_id: str, device: str, p1: str, p2: str, note: str) -> PriceSheet:
    return PriceSheet(
        sheet_id=sheet_id,
        version="1",
        family="azure_ionq",
        effective_from=_ADOPTED,
        parameters={
            "per_1q_gate_shot_usd": D(p1),
            "per_2q_gate_shot_usd": D(p2),
            "minimum_usd": D("12.4166"),
            "minimum_em_usd": D("97.50"),
            "minimum_added": D(1),
        },
        notes=f"Azure Quantum IonQ {device}: ${p1} per 1q gate-shot + ${p2} per 2q gate-shot; a gate on "
        "N>=3 qubits bills as 6(N-2) 2q gates; measurements are free. MINIMUM IS ADDED "
        "(minimum_added=1): Microsoft's pricing page writes AQT = m + 0.000220 N1q C + 0.000975 N2q C "
        "while its tables call m a 'minimum price per program execution'. The additive reading is never "
        "below the floor reading, so a reservation made with it covers either; publish a new version "
        "with minimum_added=0 (charge = max(m, gate-shots)) if an invoice shows a floor. "
        "m = $12.4166 without error mitigation, $97.50 with it (Azure's default setting). " + note,
    )


DEFAULT_SHEETS: tuple[PriceSheet, ...] = (
    PriceSheet(
        sheet_id="local-simulator",
        version="1",
        family="local",
        effective_from=_ADOPTED,
        parameters={},
        notes="Local simulators cost nothing to run; only evidence storage can be charged.",
    ),
    _braket_qpu("braket-qpu-ionq-forte", "0.08", "IonQ Forte"),
    _braket_qpu("braket-qpu-ionq-aria", "0.03", "IonQ Aria"),
    _braket_qpu("braket-qpu-iqm-garnet", "0.00145", "IQM Garnet"),
    _braket_qpu("braket-qpu-quera-aquila", "0.01", "QuEra Aquila (analog: no gate-model backend uses it)"),
    _braket_qpu("braket-qpu-rigetti-ankaa", "0.0009", "Rigetti Ankaa"),
    _braket_sim("braket-sim-sv1", "SV1"),
    _braket_sim("braket-sim-dm1", "DM1"),
    PriceSheet(
        sheet_id="ibm-payg",
        version="1",
        family="ibm_payg",
        effective_from=_ADOPTED,
        parameters={"per_second_usd": D("1.60"), "subjob_overhead_s": D(2), "billing_increment_s": D(1)},
        notes="IBM Quantum pay-as-you-go: $1.60 per second of QPU usage ($96/min); queue time is free; a "
        "job failed by a system error costs 0. Pre-run estimate per IBM's documentation: 2 s per sub-job "
        "+ (rep_delay + circuit duration) x executions. Usage is rounded up to whole seconds "
        "(billing_increment_s): IBM reports usage in seconds, and rounding up keeps a reservation "
        "sufficient; set 0 for unrounded usage if invoices show fractions.",
    ),
    _azure_ionq("azure-ionq-aria", "Aria", "0.000220", "0.000975", ""),
    _azure_ionq(
        "azure-ionq-forte",
        "Forte",
        "0.0001645",
        "0.001121",
        "Forte's gate-shot prices are from REFERENCE.md; its minimums are assumed equal to Aria's "
        "(Microsoft lists one minimum for all IonQ QPUs).",
    ),
    PriceSheet(
        sheet_id="azure-quantinuum-hqc",
        version="1",
        family="quantinuum_hqc",
        effective_from=_ADOPTED,
        parameters={
            "usd_per_hqc": D("13.50"),
            "hqc_base": D(5),
            "hqc_divisor": D(5000),
            "weight_1q": D(1),
            "weight_2q": D(10),
            "weight_spam": D(5),
        },
        notes="Quantinuum H-series on Azure: HQC = 5 + C (N1q + 10 N2q + 5 Nm) / 5000, Nm = implicit initial "
        "state preparation of every qubit + mid/final measurements + resets. HQCs are sold by subscription: "
        "usd_per_hqc defaults to the Standard plan's $135,000 / 10,000 HQC = $13.50; set the tenant's "
        "contracted rate in a new version. HQCs are not rounded.",
    ),
    PriceSheet(
        sheet_id="azure-rigetti",
        version="1",
        family="rigetti_azure",
        effective_from=_ADOPTED,
        parameters={"usd_per_increment": D("0.02"), "increment_ms": D(10)},
        notes="Rigetti on Azure: $0.02 per started 10 ms increment of execution time (REFERENCE.md; a "
        "Feb-2025 Microsoft page lists $0.013 - publish a new version when the invoice confirms). "
        "No per-job, per-shot or per-gate charge.",
    ),
)


def _index(sheets: tuple[PriceSheet, ...]) -> dict[tuple[str, str], PriceSheet]:
    index: dict[tuple[str, str], PriceSheet] = {}
    for sheet in sheets:
        if sheet.key in index:
            raise ValueError(f"duplicate price sheet {sheet.key}")
        index[sheet.key] = sheet
    return index


_SHEETS_BY_KEY = _index(DEFAULT_SHEETS)


def get_sheet(sheet_id: str, version: str) -> PriceSheet:
    """The exact sheet an estimate was stamped with (settlement must use the same prices)."""
    try:
        return _SHEETS_BY_KEY[(sheet_id, version)]
    except KeyError:
        raise LookupError(f"no price sheet {sheet_id} version {version}") from None


def current_sheet(sheet_id: str, on: date | None = None) -> PriceSheet:
    """The version of ``sheet_id`` in force on ``on`` (today by default): latest ``effective_from``."""
    day = on or datetime.now(UTC).date()  # price changes are dated in UTC
    candidates = [s for s in DEFAULT_SHEETS if s.sheet_id == sheet_id and s.effective_from <= day]
    if not candidates:
        raise LookupError(f"no price sheet {sheet_id} in force on {day.isoformat()}")
    return max(candidates, key=lambda s: s.effective_from)


def sheet_family(sheet_id: str) -> str:
    """The pricing family of a catalogue sheet id (the same for all its versions)."""
    families = {s.family for s in DEFAULT_SHEETS if s.sheet_id == sheet_id}
    if len(families) != 1:
        raise LookupError(f"no single family for price sheet {sheet_id}")
    return families.pop()


@dataclass(frozen=True)
class Backend:
    """A backend QCOS can price: who runs it, which sheet prices it, and the hardware inputs its
    formula needs (gate durations, repetition delay) when the formula is time-based.

    ``inputs`` are Decimals in SI units (seconds). ``num_qubits`` is None for local simulators,
    whose capacity is the worker registry's business, not a pricing question.
    """

    name: str
    provider: str
    sheet_id: str
    target: str
    num_qubits: int | None
    inputs: Mapping[str, Decimal] = field(default_factory=dict)
    notes: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", MappingProxyType(dict(self.inputs)))


# IBM gate durations: medians of the calibration snapshots shipped as qiskit-ibm-runtime 0.51 fake
# backends (FakeBrisbane, FakeTorino, FakeFez); rep_delay is those backends' default_rep_delay.
# A 1q gate is costed as one sx pulse, rz-type phase gates as 0 (virtual on IBM hardware).
def _ibm(name: str, target: str, qubits: int, durations: str, notes: str) -> Backend:
    sx, two_q, measure, reset = (D(x) for x in durations.split())
    inputs = {"gate_1q_s": sx, "gate_2q_s": two_q, "measure_s": measure, "reset_s": reset, "rep_delay_s": D("0.00025")}
    return Backend(name, "ibm_quantum", "ibm-payg", target, qubits, inputs, notes)


def _braket(name: str, sheet_id: str, arn: str, qubits: int, notes: str = "") -> Backend:
    qpu = "Braket route: a fixed per-task + per-shot price, so the pre-submit estimate is exact. "
    # Simulator duration is unknown before the run: reserve one billed minute unless told otherwise.
    inputs = {"expected_duration_ms": D(60000)} if "simulator" in arn else {}
    return Backend(name, "aws_braket", sheet_id, arn, qubits, inputs, notes if inputs else qpu + notes)


_IONQ_EM = {"error_mitigation_default": D(1)}  # debiasing is Azure's default setting for IonQ QPUs

BACKENDS: Mapping[str, Backend] = MappingProxyType(
    {
        b.name: b
        for b in (
            Backend("simulator", "local", "local-simulator", "aer_simulator", None),
            _ibm("ibm_brisbane", "ibm_brisbane", 127, "6.0E-8 6.6E-7 1.3E-6 1.86E-6", "Eagle r3; ECR 2q gate."),
            _ibm("ibm_torino", "ibm_torino", 133, "3.2E-8 6.8E-8 1.56E-6 1.708E-6", "Heron r1; CZ 2q gate."),
            _ibm(
                "ibm_heron", "ibm_fez", 156, "2.4E-8 8.4E-8 1.56E-6 1.584E-6",
                "Any Heron r2 system (durations of ibm_fez); use a named backend when known.",
            ),
            Backend(
                "ionq_aria", "azure_quantum", "azure-ionq-aria", "ionq.qpu.aria-1", 25, _IONQ_EM,
                "Azure route, not Braket: Azure removed its client-side estimate in 2024, so this is where a "
                "pre-submit estimate adds most, and its gate-based price rewards small circuits. Error mitigation "
                "is on by default, hence the $97.50 minimum unless disabled. Braket route: `ionq_aria_braket`.",
            ),
            Backend(
                "ionq_forte", "azure_quantum", "azure-ionq-forte", "ionq.qpu.forte-1", 36, _IONQ_EM,
                "Azure route, as ionq_aria; the Braket route is `ionq_forte_braket`.",
            ),
            _braket("ionq_aria_braket", "braket-qpu-ionq-aria", "arn:aws:braket:us-east-1::device/qpu/ionq/Aria-1", 25),
            _braket(
                "ionq_forte_braket", "braket-qpu-ionq-forte", "arn:aws:braket:us-east-1::device/qpu/ionq/Forte-1", 36
            ),
            _braket(
                "rigetti_ankaa", "braket-qpu-rigetti-ankaa", "arn:aws:braket:us-west-1::device/qpu/rigetti/Ankaa-3", 84,
                "Azure bills Rigetti by execution time, known only after the run: `rigetti_ankaa_azure`.",
            ),
            Backend(
                "rigetti_ankaa_azure", "azure_quantum", "azure-rigetti", "rigetti.qpu.ankaa-3", 84,
                {
                    # Assumed, not published by Rigetti: typical Ankaa-class figures with a generous
                    # per-shot overhead (readout + active reset + control latency). Settlement uses
                    # the measured execution time, so these only size the reservation.
                    "gate_1q_s": D("4.0E-8"), "gate_2q_s": D("7.2E-8"), "measure_s": D("1.5E-6"),
                    "reset_s": D("1.0E-6"), "shot_overhead_s": D("0.0002"), "job_overhead_s": D(0),
                },
                "Azure route, priced by an execution-time model: shots x (circuit duration + shot overhead).",
            ),
            Backend(
                "quantinuum_h2", "azure_quantum", "azure-quantinuum-hqc", "quantinuum.qpu.h2-1", 56,
                notes="Azure route (Quantinuum's HQC model).",
            ),
            _braket("braket_sv1", "braket-sim-sv1", "arn:aws:braket:::device/quantum-simulator/amazon/sv1", 34),
            _braket("braket_dm1", "braket-sim-dm1", "arn:aws:braket:::device/quantum-simulator/amazon/dm1", 17),
            _braket("iqm_garnet", "braket-qpu-iqm-garnet", "arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet", 20),
        )
    }
)  # fmt: skip


def get_backend(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise LookupError(f"unknown backend {name!r}; known: {', '.join(sorted(BACKENDS))}") from None
