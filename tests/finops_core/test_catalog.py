"""Price sheets are validated, immutable, versioned data; every catalogued backend is priceable."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from finops import catalog
from finops.catalog import BACKENDS, DEFAULT_SHEETS, FAMILY_PARAMETERS, PriceSheet, current_sheet, get_sheet

REPO = Path(__file__).resolve().parents[2]


def test_the_brief_backends_are_catalogued_with_their_routes():
    expected = {
        "simulator": ("local", "local-simulator"),
        "ibm_brisbane": ("ibm_quantum", "ibm-payg"),
        "ibm_heron": ("ibm_quantum", "ibm-payg"),
        "ibm_torino": ("ibm_quantum", "ibm-payg"),
        "ionq_aria": ("azure_quantum", "azure-ionq-aria"),
        "ionq_forte": ("azure_quantum", "azure-ionq-forte"),
        "rigetti_ankaa": ("aws_braket", "braket-qpu-rigetti-ankaa"),
        "quantinuum_h2": ("azure_quantum", "azure-quantinuum-hqc"),
        "braket_sv1": ("aws_braket", "braket-sim-sv1"),
        "braket_dm1": ("aws_braket", "braket-sim-dm1"),
        "iqm_garnet": ("aws_braket", "braket-qpu-iqm-garnet"),
    }
    for name, (provider, sheet_id) in expected.items():
        assert (BACKENDS[name].provider, BACKENDS[name].sheet_id) == (provider, sheet_id)
    # The route choices are documented where an operator will read them.
    assert "Azure route" in BACKENDS["ionq_aria"].notes
    assert "Braket route" in BACKENDS["rigetti_ankaa"].notes


def test_every_backend_names_a_sheet_in_force_and_every_sheet_is_decimal():
    for backend in BACKENDS.values():
        assert current_sheet(backend.sheet_id).sheet_id == backend.sheet_id
        assert all(isinstance(v, Decimal) for v in backend.inputs.values())
    for sheet in DEFAULT_SHEETS:
        assert FAMILY_PARAMETERS[sheet.family] <= sheet.parameters.keys()
        assert all(type(v) is Decimal for v in sheet.parameters.values())
        assert sheet.parameters["evidence_storage_usd"] == 0
        assert sheet.currency == "USD"
        assert sheet.notes


def test_published_prices_are_seeded():
    assert get_sheet("braket-qpu-ionq-forte", "1").parameters["per_shot_usd"] == Decimal("0.08")
    assert get_sheet("braket-qpu-ionq-aria", "1").parameters["per_shot_usd"] == Decimal("0.03")
    assert get_sheet("braket-qpu-iqm-garnet", "1").parameters["per_shot_usd"] == Decimal("0.00145")
    assert get_sheet("braket-qpu-quera-aquila", "1").parameters["per_shot_usd"] == Decimal("0.01")
    assert get_sheet("braket-qpu-rigetti-ankaa", "1").parameters["per_shot_usd"] == Decimal("0.0009")
    assert get_sheet("braket-sim-sv1", "1").parameters["per_minute_usd"] == Decimal("0.075")
    assert get_sheet("ibm-payg", "1").parameters["per_second_usd"] == Decimal("1.60")
    aria = get_sheet("azure-ionq-aria", "1").parameters
    assert (aria["minimum_usd"], aria["minimum_em_usd"]) == (Decimal("12.4166"), Decimal("97.50"))
    assert "MINIMUM IS ADDED" in get_sheet("azure-ionq-aria", "1").notes
    forte = get_sheet("azure-ionq-forte", "1").parameters
    assert (forte["per_1q_gate_shot_usd"], forte["per_2q_gate_shot_usd"]) == (Decimal("0.0001645"), Decimal("0.001121"))
    assert get_sheet("azure-rigetti", "1").parameters["usd_per_increment"] == Decimal("0.02")


def test_a_float_price_or_a_missing_price_is_refused():
    float_price: dict[str, Any] = {"per_task_usd": 0.3, "per_shot_usd": Decimal(1)}
    with pytest.raises(ValueError, match="finite Decimal"):
        PriceSheet("x", "1", "braket_qpu", date(2025, 1, 1), float_price)
    with pytest.raises(ValueError, match="lacks"):
        PriceSheet("x", "1", "braket_qpu", date(2025, 1, 1), {"per_task_usd": Decimal("0.3")})
    with pytest.raises(ValueError, match="unknown pricing family"):
        PriceSheet("x", "1", "nope", date(2025, 1, 1), {})
    with pytest.raises(ValueError, match="float"):
        PriceSheet.from_dict({**DEFAULT_SHEETS[1].to_dict(), "parameters": {"per_task_usd": 0.3}})


def test_sheets_are_immutable_and_round_trip_through_json_text():
    sheet = get_sheet("azure-ionq-aria", "1")
    with pytest.raises(TypeError):
        sheet.parameters["minimum_usd"] = Decimal(0)  # type: ignore[index]
    assert PriceSheet.from_dict(sheet.to_dict()) == sheet
    assert sheet.to_dict()["parameters"]["minimum_usd"] == "12.4166"


def test_a_new_version_takes_effect_on_its_date_and_old_versions_stay_resolvable(monkeypatch):
    old = get_sheet("ibm-payg", "1")
    new = PriceSheet(
        "ibm-payg", "2", "ibm_payg", date(2030, 1, 1), {**old.parameters, "per_second_usd": Decimal("1.75")}
    )
    monkeypatch.setattr(catalog, "DEFAULT_SHEETS", (*DEFAULT_SHEETS, new))
    assert current_sheet("ibm-payg", date(2029, 12, 31)).version == "1"
    assert current_sheet("ibm-payg", date(2030, 1, 1)).version == "2"
    assert get_sheet("ibm-payg", "1") is old
    with pytest.raises(LookupError):
        current_sheet("ibm-payg", date(2000, 1, 1))


def test_the_pricing_core_imports_without_django_or_qiskit():
    code = (
        "import sys, finops, finops.pricing; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'qiskit')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)
    assert "import" not in (REPO / "finops" / "__init__.py").read_text().split('"""')[2]
