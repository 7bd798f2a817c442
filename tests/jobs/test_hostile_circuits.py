"""Hostile circuits cost the web tier milliseconds and a few megabytes, never memory or seconds.

Each case goes through ``POST /estimates`` as a viewer and ``POST /jobs`` as a researcher, and
each request's wall time, traced Python memory and resident-memory growth are asserted: the
pre-scan (``qcos.jobs.circuit_scan``) must refuse before any parser builds what the text
declares. The limits are documented in docs/circuits.md.
"""

from __future__ import annotations

import gc
import os
import random
import resource
import time
import tracemalloc
from decimal import Decimal

import pytest

from qcos.errors import QCOSError
from qcos.jobs import circuit_lexer, circuit_limits, circuit_scan, circuits
from qcos.jobs import services as job_services
from qcos.jobs.models import QuantumJob
from tests.factories import BELL_QASM2, BELL_QASM3

pytestmark = pytest.mark.django_db

SECONDS = 0.5  # generous: the refusals below take a few milliseconds
TRACED_BYTES = 20 * 2**20
RSS_GROWTH_KB = 64 * 1024  # native (Rust, C) allocations are not traced: the process must not grow either

H2 = 'OPENQASM 2.0;\ninclude "qelib1.inc";\n'
H3 = 'OPENQASM 3.0;\ninclude "stdgates.inc";\n'


def _doubling(header: str, depth: int, registers: str) -> str:
    """A gate defined as two calls of the previous one, ``depth`` times: 2^depth operations."""
    lines = [header]
    for i in range(1, depth + 1):
        inner = "h" if i == 1 else f"g{i - 1}"
        lines.append(f"gate g{i} a {{ {inner} a; {inner} a; }}")
    return "\n".join(lines) + f"\n{registers} g{depth} q[0];\n"


def _chain(depth: int) -> str:
    lines = [H3] + [f"gate c{i} a {{ {'h' if i == 0 else f'c{i - 1}'} a; }}" for i in range(depth)]
    return "\n".join(lines) + f"\nqubit[1] q; bit[1] c; c{depth - 1} q[0]; c = measure q;\n"


V3_REGS = "qubit[2] q; bit[2] c;\n"
V2_REGS = "qreg q[2]; creg c[2];\n"
TOO_LARGE, INVALID, PRICING = "CIRCUIT_TOO_LARGE", "INVALID_CIRCUIT", "PRICING_ERROR"

HOSTILE = {
    # Registers: refused from the declaration, before anything is allocated.
    "qreg_huge": (H2 + "qreg q[2147483647];\ncreg c[1];\nmeasure q[0] -> c[0];\n", TOO_LARGE),
    "creg_huge": (H2 + "qreg q[1];\ncreg c[2147483647];\nmeasure q[0] -> c[0];\n", TOO_LARGE),
    "qubit_huge": (H3 + "qubit[2147483647] q;\nbit[1] c;\nc[0] = measure q[0];\n", TOO_LARGE),
    "bit_huge": (H3 + "qubit[1] q;\nbit[2147483647] c;\nc[0] = measure q[0];\n", TOO_LARGE),
    "qubit_huge_no_header": ("qubit[2147483647] q;", TOO_LARGE),
    "qubit_100_digits": (H3 + "qubit[" + "9" * 100 + "] q;", TOO_LARGE),
    "qreg_5000_digits": (H2 + "qreg q[" + "9" * 5000 + "];", TOO_LARGE),
    "qubits_in_total": (H3 + "qubit[600] a; qubit[600] b; bit c; c = measure a[0];", TOO_LARGE),
    "bits_in_total": (H2 + "qreg q[1]; creg a[600]; creg b[600]; measure q[0] -> a[0];", TOO_LARGE),
    "many_registers": (H2 + "".join(f"qreg r{i}[1];" for i in range(300)) + "creg c[1]; measure r0 -> c;",
                       TOO_LARGE),
    "qubit_size_expression": (H3 + "qubit[2**40] q; bit c; c = measure q[0];", INVALID),
    "qubit_size_constant": (H3 + "const uint n = 4; qubit[n] q; bit c; c = measure q[0];", INVALID),
    # Gates: definitions, their nesting and their expansion.
    "gate_doubling_18_v3": (_doubling(H3, 18, V3_REGS), TOO_LARGE),
    "gate_doubling_16_v2": (_doubling(H2, 16, V2_REGS), TOO_LARGE),
    "gate_doubling_15_v3_reference_budget": (_doubling(H3, 15, V3_REGS), TOO_LARGE),
    "gate_nesting_40": (_chain(40), TOO_LARGE),
    "gate_wide_expansion": (H2 + "gate w a { " + "h a; " * 300 + "}\ngate w2 a { " + "w a; " * 200 + "}\n"
                            + V2_REGS + "w2 q[0];\nmeasure q -> c;\n", TOO_LARGE),
    "gate_definitions_1001": (H2 + "".join(f"gate d{i} a {{ h a; }}\n" for i in range(1001)) + V2_REGS
                              + "measure q -> c;", TOO_LARGE),
    "ctrl_huge": (H3 + V3_REGS + "ctrl(2147483647) @ x q[0], q[1];\nc = measure q;", TOO_LARGE),
    "ctrl_expression": (H3 + V3_REGS + "ctrl(2**40) @ x q[0], q[1];\nc = measure q;", INVALID),
    "pow_on_a_wide_gate": (H3 + "qubit[6] q; bit[6] c; gate six a,b,d,e,f,g { h a; }\n"
                           "pow(0.5) @ six q[0], q[1], q[2], q[3], q[4], q[5];\nc = measure q;", TOO_LARGE),
    # Loops: unrolled operations count; nested loops multiply; unknown lengths cannot be priced.
    "for_1e9": (H3 + V3_REGS + "for uint i in [0:1000000000] { h q; }\nc = measure q;", TOO_LARGE),
    "for_1e9_empty": (H3 + V3_REGS + "for uint i in [0:1000000000] { }\nc = measure q;", TOO_LARGE),
    "for_1e9_one_statement": (H3 + V3_REGS + "for uint i in [0:1000000000] h q[0];\nc = measure q;", TOO_LARGE),
    "for_nested_1000x1000": (H3 + V3_REGS + "for uint i in [0:999] { for uint j in [0:999] { h q[0]; } }\n"
                             "c = measure q;", TOO_LARGE),
    "for_30000_times_2": (H3 + V3_REGS + "for uint i in [1:30000] { h q[0]; x q[1]; }\nc = measure q;", TOO_LARGE),
    "for_step": (H3 + V3_REGS + "for uint i in [0:2:200000] { h q[0]; }\nc = measure q;", TOO_LARGE),
    "for_variable_range": (H3 + V3_REGS + "for uint i in [0:n] { h q[0]; }\nc = measure q;", PRICING),
    "for_over_a_name": (H3 + V3_REGS + "for uint i in values { h q[0]; }\nc = measure q;", PRICING),
    "while_true": (H3 + V3_REGS + "while (true) { h q[0]; }\nc = measure q;", PRICING),
    "while_on_a_measurement": (H3 + "qubit[1] q; bit[1] c;\nc[0] = measure q[0];\n"
                               "while (c[0]) { x q[0]; c[0] = measure q[0]; }\n", PRICING),
    "while_inside_a_for": (H3 + V3_REGS + "for uint i in [0:3] { while (true) { h q[0]; } }\nc = measure q;",
                           PRICING),
    "if_1001_v2": (H2 + V2_REGS + "measure q -> c;\n" + "if(c==1) x q[0];\n" * 1001, TOO_LARGE),
    "blocks_nested_40": (H3 + V3_REGS + "if (c[0]) { " * 40 + "x q[0];" + " }" * 40 + "\nc = measure q;", TOO_LARGE),
    # Expressions: nesting and length.
    "parens_50000_v2": (H2 + V2_REGS + "rz(" + "(" * 50000 + "1" + ")" * 50000 + ") q[0];\nmeasure q -> c;",
                        TOO_LARGE),
    "parens_50000_v3": (H3 + V3_REGS + "rz(" + "(" * 50000 + "1" + ")" * 50000 + ") q[0];\nc = measure q;",
                        TOO_LARGE),
    "parens_5000_v3": (H3 + V3_REGS + "rz(" + "(" * 5000 + "1" + ")" * 5000 + ") q[0];\nc = measure q;",
                       TOO_LARGE),
    "brackets_5000_v3": (H3 + V3_REGS + "h q[" + "[" * 5000 + "0" + "]" * 5000 + "];\nc = measure q;",
                         TOO_LARGE),
    "unary_10000_v2": (H2 + V2_REGS + "rz(" + "-" * 10000 + "1) q[0];\nmeasure q -> c;", TOO_LARGE),
    "unary_10000_v3": (H3 + V3_REGS + "rz(" + "~" * 10000 + "1) q[0];\nc = measure q;", TOO_LARGE),
    "binary_20000_v2": (H2 + V2_REGS + "rz(" + "+".join(["1"] * 20000) + ") q[0];\nmeasure q -> c;", TOO_LARGE),
    "binary_5000_v3": (H3 + V3_REGS + "rz(" + "*".join(["1"] * 5000) + ") q[0];\nc = measure q;", TOO_LARGE),
    # Operations: counted, not parsed.
    "ops_50001_statements_v3": (H3 + "qubit q;\nbit c;\n" + "x q;\n" * 50001 + "c = measure q;", TOO_LARGE),
    "ops_50001_broadcast_v2": (H2 + "qreg q[1000]; creg c[1000];\n" + "h q;\n" * 51 + "measure q -> c;", TOO_LARGE),
    "ops_50001_broadcast_v3": (H3 + "qubit[1000] q; bit[1000] c;\n" + "h q;\n" * 51 + "c = measure q;", TOO_LARGE),
    "measure_broadcast_v2": (H2 + "qreg q[1000]; creg c[1000];\n" + "measure q -> c;\n" * 51, TOO_LARGE),
    "statement_of_40000_operands": (H3 + "qubit[2] q; bit[2] c;\nbarrier " + "q[0], " * 40000 + "q[1];", TOO_LARGE),
    # The reference (ANTLR) parser's own budget.
    "reference_path_token_budget": (H3 + V3_REGS + "rz(pi/4) q[0];\n" * 1000 + "c = measure q;", TOO_LARGE),
    "reference_path_byte_budget": (H3 + V3_REGS + " " * 40000 + "rz(pi) q[0];\nc = measure q;", TOO_LARGE),
    # Text the scanners must not backtrack over.
    "header_behind_comments": ("/**/" * 60 + "x", INVALID),
    "fast_path_whitespace": (H3 + V3_REGS + "h" + " " * 30000 + "(;", None),
    "unterminated_comment": (H3 + "/*" + "x" * 20000, INVALID),
    "many_comment_openers_in_strings": (H3 + 'include "/*";' * 2000, INVALID),
    "many_comment_openers": (H2 + "/*" * 100000, None),
    "unterminated_string": (H3 + 'include "stdgates.inc', INVALID),
}

# Every include but the standard library's is refused with one message that reveals nothing.
INCLUDES = {
    "etc_passwd_v2": 'OPENQASM 2.0;\ninclude "/etc/passwd";\nqreg q[1];\ncreg c[1];\nmeasure q -> c;\n',
    "etc_passwd_v3": 'OPENQASM 3.0;\ninclude "/etc/passwd";\nqubit q;\nbit c;\nc = measure q;\n',
    "proc_environ_v2": 'OPENQASM 2.0;\ninclude "/proc/self/environ";\nqreg q[1];\ncreg c[1];\nmeasure q -> c;\n',
    "proc_environ_v3": 'OPENQASM 3.0;\ninclude "/proc/self/environ";\nqubit q;\nbit c;\nc = measure q;\n',
    "missing_v2": 'OPENQASM 2.0;\ninclude "/nonexistent/nothing.inc";\nqreg q[1];\ncreg c[1];\nmeasure q -> c;\n',
    "missing_v3": 'OPENQASM 3.0;\ninclude "/nonexistent/nothing.inc";\nqubit q;\nbit c;\nc = measure q;\n',
    "relative_v2": 'OPENQASM 2.0;\ninclude "../../../../etc/passwd";\nqreg q[1];\ncreg c[1];\nmeasure q -> c;\n',
    "relative_v3": 'OPENQASM 3.0;\ninclude "../../etc/hostname";\nqubit q;\nbit c;\nc = measure q;\n',
    "through_qelib1_v2": 'OPENQASM 2.0;\ninclude "qelib1.inc/../../etc/passwd";\nqreg q[1];\ncreg c[1];\n',
    "settings_module_v2": 'OPENQASM 2.0;\ninclude "qcos/settings.py";\nqreg q[1];\ncreg c[1];\nmeasure q -> c;\n',
    "qelib1_in_v3": 'OPENQASM 3.0;\ninclude "qelib1.inc";\nqubit q;\nbit c;\nc = measure q;\n',
    "stdgates_in_v2": 'OPENQASM 2.0;\ninclude "stdgates.inc";\nqreg q[1];\ncreg c[1];\nmeasure q -> c;\n',
    "second_include_v3": 'OPENQASM 3.0;\ninclude "stdgates.inc";\ninclude "/etc/passwd";\nqubit q;\nbit c;\n',
}

LEGIT = {
    "bell_v2": BELL_QASM2,
    "bell_v3": BELL_QASM3,
    "quick_start": "OPENQASM 3.0; qubit q; h q; measure q;",
    "ghz_v2": H2 + "qreg q[5];\ncreg c[5];\nh q[0];\n" + "".join(f"cx q[{i}],q[{i + 1}];\n" for i in range(4))
              + "measure q -> c;\n",
    "user_gate_v2": H2 + "gate bell a, b { h a; cx a, b; }\nqreg q[2];\ncreg c[2];\nbell q[0], q[1];\nmeasure q -> c;\n",
    "user_gate_v3": H3 + "gate bell a, b { h a; cx a, b; }\nqubit[2] q;\nbit[2] c;\nbell q[0], q[1];\nc = measure q;\n",
    "small_for_loop": H3 + V3_REGS + "for uint i in [0:9] { h q[0]; }\nc = measure q;\n",
    "if_else": H3 + V3_REGS + "c[0] = measure q[0];\nif (c[0]) { x q[1]; } else { h q[1]; }\nc = measure q;\n",
    "comments_before_the_header": "// a Bell pair\n/* two qubits */\n" + BELL_QASM3,
    "gate_doubling_12_v2": _doubling(H2, 12, V2_REGS) + "measure q -> c;\n",
}


def _measured(send):
    """(response, seconds, traced peak bytes, resident growth in KiB) of one request: timed on its
    own, then repeated under tracemalloc (which slows Python down) for its memory."""
    gc.collect()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    response = send()
    seconds = time.perf_counter() - started
    tracemalloc.start()
    try:
        again = send()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert again.status_code == response.status_code
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    return response, seconds, peak, growth


def _assert_refused_cheaply(response, seconds, peak, growth, code):
    assert response.status_code == 400, response.content[:500]
    error = response.json()["error"]
    if code is not None:
        assert error["code"] == code, error
    assert seconds < SECONDS, f"{seconds:.3f} s"
    assert peak < TRACED_BYTES, f"{peak / 2**20:.1f} MiB traced"
    assert growth < RSS_GROWTH_KB, f"resident memory grew by {growth / 1024:.0f} MiB"
    return error


def _estimate(actor, circuit, backend="simulator"):
    return lambda: actor.client.post("/api/v2.1/estimates", {"circuit": circuit, "backend": backend, "shots": 100},
                                     format="json")


def _submit(actor, circuit):
    return lambda: actor.client.post("/api/v2.1/jobs", {"circuit": circuit, "backend": "simulator", "shots": 100},
                                     format="json")


@pytest.fixture(scope="module", autouse=True)
def _warm_parsers():
    # The first OpenQASM 3 parse loads the ANTLR grammar (~100 ms): not a request's cost.
    circuits.parse_circuit(LEGIT["if_else"], circuit_limits.Limits())


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_estimate_is_refused_in_milliseconds_and_megabytes(vera, name):
    circuit, code = HOSTILE[name]
    _assert_refused_cheaply(*_measured(_estimate(vera, circuit)), code)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_submit_is_refused_in_milliseconds_and_megabytes_and_writes_nothing(alice, name):
    circuit, code = HOSTILE[name]
    _assert_refused_cheaply(*_measured(_submit(alice, circuit)), code)
    assert not QuantumJob.objects.exists()


@pytest.mark.parametrize("name", sorted(INCLUDES))
def test_only_the_standard_library_can_be_included_and_the_answer_says_nothing(vera, alice, name):
    circuit = INCLUDES[name]
    answers = []
    for send in (_estimate(vera, circuit), _submit(alice, circuit)):
        error = _assert_refused_cheaply(*_measured(send), "INVALID_CIRCUIT")
        answers.append(error)
    for error in answers:
        assert error["message"].endswith(circuit_limits.INCLUDE_REFUSED)
        assert "root" not in error["message"] and "passwd" not in error["message"]
        assert error["details"]["line"] == 2 or name == "second_include_v3"


def test_an_include_answers_the_same_whether_the_file_exists_or_not(tmp_path, monkeypatch):
    # A file that really exists next to the worker, and one that does not: one answer, and the
    # parsers themselves (without the pre-scan) cannot read either.
    (tmp_path / "present.inc").write_text("gate leak a { h a; }\n")
    monkeypatch.chdir(tmp_path)
    for version, registers in ((2, "qreg q[1]; creg c[1]; leak q[0]; measure q -> c;"),
                               (3, "qubit q; bit c; leak q; c = measure q;")):
        answers = set()
        for name in ("present.inc", str(tmp_path / "present.inc"), "absent.inc", str(tmp_path / "absent.inc")):
            text = f'OPENQASM {version}.0;\ninclude "{name}";\n{registers}\n'
            with pytest.raises(circuits.CircuitError) as refused:
                circuits.parse_circuit(text)
            answers.add(str(refused.value))
        assert len(answers) == 1, answers
    with pytest.raises(circuits.CircuitError) as v2:
        circuits._parse_qasm2('OPENQASM 2.0;\ninclude "present.inc";\nqreg q[1];\nleak q[0];\n')
    assert "unable to find" in str(v2.value)  # the include path is empty: nothing is opened
    with pytest.raises(circuits.CircuitError) as v3:
        circuits._parse_qasm3_reference('OPENQASM 3.0;\ninclude "present.inc";\nqubit q;\nleak q;\n')
    assert "non-stdgates" in str(v3.value)


@pytest.mark.parametrize("name", sorted(LEGIT))
def test_legitimate_circuits_are_still_accepted(vera, alice, name):
    circuit = LEGIT[name]
    estimate = _estimate(vera, circuit)()
    assert estimate.status_code == 200, estimate.content
    submitted = _submit(alice, circuit)()
    assert submitted.status_code == 202, submitted.content


def test_a_loop_is_priced_and_admitted_at_its_unrolled_size(vera, alice):
    def loop(times: int) -> str:
        return H3 + V3_REGS + f"for uint i in [1:{times}] {{ cx q[0], q[1]; }}\nc = measure q;\n"

    once = vera.client.post("/api/v2.1/estimates", {"circuit": loop(1), "backend": "ionq_aria", "shots": 100},
                            format="json").json()
    ten = vera.client.post("/api/v2.1/estimates", {"circuit": loop(10), "backend": "ionq_aria", "shots": 100},
                           format="json").json()
    assert ten["inputs"]["n2q"] == 10 * once["inputs"]["n2q"] == 10
    assert Decimal(ten["breakdown"]["compute"]) > Decimal(once["breakdown"]["compute"])
    # Admission: 25,000 iterations of two gates is 50,002 operations with the measurements.
    limit = job_services.circuit_limits().max_operations
    body = H3 + V3_REGS + "for uint i in [1:{n}] {{ h q[0]; x q[1]; }}\nc = measure q;\n"
    refused = alice.client.post("/api/v2.1/jobs", {"circuit": body.format(n=limit // 2), "backend": "simulator"},
                                format="json")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "CIRCUIT_TOO_LARGE"
    parsed, scan = job_services.circuit_parse(body.format(n=1000))
    assert scan.operations == 2002 == circuits.summarize(parsed, 3).size


@pytest.mark.parametrize(("text", "operations"), [
    (H2 + "qreg q[3]; creg c[3]; h q; cx q[0], q[1]; barrier q; measure q -> c;", 3 + 1 + 1 + 3),
    (H3 + "qubit[4] q; bit[4] c; h q; reset q; c = measure q;", 12),
    (H3 + "qubit[4] q; bit[4] c; for uint i in [0:2:6] { h q[0]; if (c[0]) { x q; } } c = measure q;",
     4 * (1 + 4) + 4),
    (H3 + "gate g a { h a; x a; } gate g2 a { g a; g a; } qubit[3] q; bit[3] c; g2 q; c = measure q;",
     3 * 4 + 3),
    (H3 + "qubit[2] q; bit[2] c; for uint i in [5:1] { h q[0]; } c = measure q;", 1 + 2),
])
def test_the_pre_scan_counts_broadcasts_loops_branches_and_gate_bodies(text, operations):
    assert circuit_scan.prescan(text, circuits.qasm_version(text)).operations == operations


def test_the_reference_parser_stays_within_its_budget_at_its_largest():
    # The largest program the reference path accepts (just under its token budget), timed: the
    # figure docs/circuits.md gives, with room for a loaded machine.
    limits = circuit_limits.Limits()
    statements = (limits.max_reference_tokens - 40) // 11
    text = H3 + V3_REGS + "rz(pi/4) q[0];\n" * statements + "c = measure q;"
    started = time.perf_counter()
    assert not circuits.fast_path_eligible(text)
    circuits.parse_scanned(text, limits)
    assert circuit_lexer.count_tokens(text) <= limits.max_reference_tokens
    assert time.perf_counter() - started < 3.0


def test_every_limit_the_backends_need_fits_under_the_parser_ceiling():
    from workers.providers.registry import BACKENDS

    assert max(spec.max_qubits_clifford for spec in BACKENDS.values()) <= circuit_limits.MAX_QUBITS


# --- fuzzing: only CircuitError ever leaves the parser ------------------------------------------------

_WORDS = ["qreg", "creg", "qubit", "bit", "gate", "opaque", "measure", "reset", "barrier", "if", "else", "for",
          "while", "in", "include", "ctrl", "negctrl", "inv", "pow", "@", "let", "const", "int", "uint", "float",
          "angle", "switch", "case", "default", "box", "delay", "def", "return", "break", "continue", "cal",
          "defcal", "pragma", "#pragma", "@ann", "input", "output", "gphase", "U", "CX", "h", "x", "cx", "rz", "q",
          "c", "a", "pi", "->", "=", "==", "++", "**", "~", "!", "-", "+", "*", "/", "(", ")", "[", "]", "{", "}",
          ";", ",", ":", ".", '"', "'", "/*", "*/", "//", "\n", "$0", "0", "1", "2147483647", "-1", "1e308",
          "0x7fffffff", "0b101", "1_000", "99999999999999999999999999999999999999", "1.5", "100ns", "\x00", "é"]
_STATEMENTS = ["qreg q[{n}];", "creg c[{n}];", "qubit[{n}] q;", "bit[{n}] c;", "h q[{i}];", "h q;",
               "cx q[{i}], q[{j}];", "cx q[{i}],q[{j}];", "measure q -> c;", "c = measure q;", "measure q[{i}] -> c[{j}];",
               "rz({e}) q[{i}];", "barrier q;", "reset q[{i}];", "if(c=={n}) x q[{i}];", "if (c[{i}]) {{ x q[{j}]; }}",
               "for uint i in [{i}:{n}] {{ h q[{j}]; }}", "for uint i in [{i}:{j}:{n}] h q;", "while (c[{i}]) {{ x q; }}",
               "gate g{i} a {{ h a; g{j} a; }}", "gate g{i}(t) a, b {{ rz(t) a; cx a, b; }}", "g{i} q[{j}];",
               "ctrl({n}) @ x q[{i}], q[{j}];", "pow({e}) @ h q[{i}];", "inv @ g{i} q;", 'include "{f}";',
               "let r = q[{i}:{n}];", "switch ({i}) {{ case {j} {{ x q; }} default {{ }} }}", "box {{ h q; }}",
               "delay[{n}ns] q;", "const uint n = {n};", "qubit[n] r;", "input float[64] t;", "rz(t) q[{i}];",
               "gphase({e});", "def f(qubit a) {{ h a; }}", "opaque o a;", "U({e},{e},{e}) q[{i}];"]
_NUMBERS = ["0", "1", "2", "3", "5", "1000", "1001", "2147483647", "-1", "-5", "99999999999999999999", "1e3", "n"]
_EXPRESSIONS = ["pi", "pi/2", "-pi", "1.5", "(" * 40 + "1" + ")" * 40, "-" * 40 + "1", "+".join(["1"] * 200), "t",
                "2**64", "1e308*1e308", "0/0", "sin(1)", "[0]"]
_FILES = ["qelib1.inc", "stdgates.inc", "/etc/passwd", "/proc/self/environ", "x.inc", "", "../qelib1.inc"]


_VALID_2 = ["h q[{i}];", "x q;", "cx q[{i}],q[{j}];", "rz({e}) q[{i}];", "barrier q;", "reset q[{i}];",
            "u3({e},{e},{e}) q[{j}];", "if(c=={i}) x q[{j}];", "gate g{i} a {{ h a; }}", "ccx q[0],q[1],q[2];"]
_VALID_3 = ["h q[{i}];", "x q;", "cx q[{i}], q[{j}];", "rz({e}) q[{i}];", "barrier q;", "reset q[{i}];",
            "for uint i in [{i}:{j}] {{ h q[{i}]; }}", "if (c[{i}]) {{ x q[{j}]; }}", "ctrl @ x q[{i}], q[3];",
            "c[{i}] = measure q[{j}];", "gate g{i} a {{ h a; }}", "inv @ s q[{i}];", "box {{ h q[{i}]; }}"]
_ANGLES = ["pi", "pi/2", "-pi/4", "0.5", "1e-3", "2*pi"]


def _well_formed(rng: random.Random) -> str:
    v3 = rng.random() < 0.5
    size = rng.choice([4, 4, 4, 1000, 1001, 2147483647])
    parts = [H3 + f"qubit[{size}] q; bit[4] c;\n" if v3 else H2 + f"qreg q[{size}]; creg c[4];\n"]
    for _ in range(rng.randint(1, 30)):
        parts.append(rng.choice(_VALID_3 if v3 else _VALID_2).format(
            i=rng.randint(0, 3), j=rng.randint(0, 3), e=rng.choice(_ANGLES)) + "\n")
    parts.append("c = measure q[0:3];\n" if v3 else "measure q[0] -> c[0];\n")
    return "".join(parts)


def _fuzzed(rng: random.Random) -> str:
    if rng.random() < 0.4:
        return _well_formed(rng)
    header = rng.choice(["", "OPENQASM 2.0;\n", "OPENQASM 3.0;\n", "OPENQASM 3;\n", "OPENQASM 4.0;\n", H2, H3])
    parts = [header]
    for _ in range(rng.randint(1, 25)):
        if rng.random() < 0.8:
            parts.append(rng.choice(_STATEMENTS).format(
                n=rng.choice(_NUMBERS), i=rng.randint(0, 3), j=rng.randint(0, 3), e=rng.choice(_EXPRESSIONS),
                f=rng.choice(_FILES)))
        else:
            parts.append(" ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 12))))
        parts.append(rng.choice(["\n", " ", ""]))
    text = "".join(parts)
    roll = rng.random()
    if roll < 0.15:
        text = text[: rng.randint(0, len(text))]  # truncated
    elif roll < 0.3 and text:
        i = rng.randrange(len(text))
        text = text[:i] + rng.choice(_WORDS) + text[i + 1:]  # one token replaced
    elif roll < 0.35:
        text = text * rng.randint(2, 50)  # repeated
    return text


def test_fuzzed_programs_only_ever_raise_circuit_errors_and_stay_fast():
    rng = random.Random(14)
    accepted = refused = 0
    slowest = 0.0
    for _ in range(600):
        text = _fuzzed(rng)
        started = time.perf_counter()
        try:
            circuit, _scan = job_services.circuit_parse(text)
        except QCOSError as exc:
            assert exc.code in ("INVALID_CIRCUIT", "CIRCUIT_TOO_LARGE", "PRICING_ERROR"), (exc.code, text)
            refused += 1
        else:
            accepted += 1
            circuits.summarize(circuit, circuits.qasm_version(text))
            circuits.unrolled_size(circuit)
        slowest = max(slowest, time.perf_counter() - started)
    assert accepted > 50 and refused > 300  # the generator reaches both outcomes
    assert slowest < 2.0, slowest


def test_fuzzed_programs_never_answer_500_over_http(vera):
    rng = random.Random(1414)
    for _ in range(80):
        text = _fuzzed(rng)
        response = vera.client.post("/api/v2.1/estimates", {"circuit": text, "backend": "ibm_brisbane"}, format="json")
        assert response.status_code in (200, 400), (response.status_code, text)
        if response.status_code == 400:
            assert set(response.json()["error"]) >= {"code", "message", "details"}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_the_pre_scan_alone_is_linear_at_the_byte_limit():
    # The largest texts the scan can be given, of its most expensive shapes: read token by token,
    # refused or counted within a bounded time.
    size = circuit_limits.Limits().max_bytes
    for unit in ("rz((1)) q[0];", "measure q[0] -> c[0];", "x q[0];", ";", "{}", "a ", "if(c==1) x q[0];"):
        text = H2 + V2_REGS + unit * ((size - 100) // len(unit))
        started = time.perf_counter()
        try:
            circuit_scan.prescan(text, 2)
        except circuits.CircuitError:
            pass
        assert time.perf_counter() - started < 1.5, unit
