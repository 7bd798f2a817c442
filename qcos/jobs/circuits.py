"""Parsing and checking submitted circuits (OpenQASM 2 and 3) into Qiskit circuits.

Decisions, documented in docs/architecture.md ("Decisions") and docs/circuits.md:

* The version comes from the ``OPENQASM`` header; a program without one is OpenQASM 3 (the header
  is optional there, mandatory in OpenQASM 2).
* OpenQASM 3 programs get the standard gate library implicitly: when a program includes nothing,
  ``stdgates.inc`` is added, so the seed's quick-start ``OPENQASM 3.0; qubit q; h q; measure q;``
  runs as written.
* A bare OpenQASM 3 ``measure q;`` (legal OpenQASM, but Qiskit can only measure into bits) stores
  its result into an implicit bit register named ``meas_<q>``, mirroring the measured qubits.
* A circuit that measures nothing is refused: it would produce empty counts.
* Positions in errors are 1-based ``line`` and ``column`` of the text as submitted.
* The circuit hash is SHA-256 over the exact UTF-8 bytes submitted: no normalization.
* OpenQASM 3 goes through the reference (ANTLR) parser and ``qiskit_qasm3_import``, except for a
  plain subset -- ``OPENQASM 3.0``, ``include "stdgates.inc"``, register declarations, standard
  gates with literal float angles on indexed qubits, barriers, ``c = measure q`` -- which
  qiskit's native importer parses ~20x faster into the same circuit (``tests/jobs/
  test_qasm3_fast_path.py`` compares the two on generated programs). Anything outside that
  subset, or anything the native importer refuses, takes the reference path, so accepted
  programs, their circuits and the error positions are those of the reference parser.
* Before any parser runs, ``circuit_scan.prescan`` reads the text once and refuses what would
  cost the parser memory or time out of proportion (registers, loops, gate expansion, nesting,
  includes other than the standard library); the reference path has budgets of its own
  (docs/circuits.md). No parser can read a file: OpenQASM 2 gets no include path, and the OpenQASM
  3 importers only know ``stdgates.inc``.
"""

from __future__ import annotations

import copy
import re
import warnings
from dataclasses import dataclass

import openqasm3
from openqasm3 import ast as qasm_ast
from qiskit import QuantumCircuit, qasm2
from qiskit import qasm3 as qiskit_qasm3
from qiskit.exceptions import ExperimentalWarning
from qiskit_qasm3_import import convert as qasm3_convert
from qiskit_qasm3_import.exceptions import ConversionError

from ledger.crypto.canonical import sha256_tagged

from .circuit_lexer import count_tokens
from .circuit_limits import (
    MAX_QUBITS,
    CircuitError,
    CircuitLimitExceeded,
    Limits,
    Scan,
    UnboundedCircuit,
    limits_from_settings,
)
from .circuit_scan import prescan

__all__ = ["CircuitError", "CircuitLimitExceeded", "CircuitSummary", "Limits", "Scan", "UnboundedCircuit",
           "circuit_hash", "fast_path_eligible", "parse_circuit", "parse_scanned", "qasm_version", "summarize",
           "unrolled_size"]

_SPACE = re.compile(r"\s*")
# At most 9 digits: a longer "version" is no version (and int() of 5,000 digits would raise).
_VERSION = re.compile(r"OPENQASM\s+(\d{1,9})(?:\.(\d+))?\s*;")
_POSITION = re.compile(r"^(?:<input>:)?(\d+),(\d+):\s*(.*)$", re.DOTALL)


@dataclass(frozen=True)
class CircuitSummary:
    """What the governance layer needs to know about a circuit without running it."""

    qasm_version: int
    num_qubits: int
    num_clbits: int
    size: int
    depth: int
    ops: dict[str, int]


def circuit_hash(text: str) -> str:
    return sha256_tagged(text.encode("utf-8"))


def qasm_version(text: str) -> int:
    """The ``OPENQASM`` header's major version, after any whitespace and comments; 3 without one.
    A loop over ``str.find``, not one regular expression: comments in front of the header made
    the former pattern backtrack exponentially."""
    pos = 0
    while True:
        pos = _SPACE.match(text, pos).end()
        if text.startswith("//", pos):
            end = text.find("\n", pos)
        elif text.startswith("/*", pos):
            end = text.find("*/", pos + 2)
            end = end + 1 if end >= 0 else end
        else:
            break
        if end < 0:
            return 3
        pos = end + 1
    match = _VERSION.match(text, pos)
    return int(match.group(1)) if match else 3


def parse_circuit(text: str, limits: Limits | None = None) -> QuantumCircuit:
    """Parse OpenQASM 2 or 3 text; raise :class:`CircuitError` with the parser's position."""
    return parse_scanned(text, limits)[0]


def parse_scanned(text: str, limits: Limits | None = None) -> tuple[QuantumCircuit, Scan]:
    """The pre-scan (``circuit_scan``: every limit, before any parser runs), then the parse.
    ``limits`` default to the deployment's (``QCOS`` settings)."""
    version = qasm_version(text)
    if version not in (2, 3):
        raise CircuitError(f"unsupported OpenQASM version {version}; QCOS accepts 2 and 3", 1, 1)
    limits = limits or limits_from_settings()
    size = len(text.encode("utf-8"))
    if size > limits.max_bytes:  # before anything reads the text
        raise CircuitLimitExceeded(f"the circuit text is {size} bytes; the limit is {limits.max_bytes}",
                                   limit="bytes", maximum=limits.max_bytes)
    scan = prescan(text, version, limits)
    if version == 2:
        return _parse_qasm2(text), scan
    return _parse_qasm3(text, scan, limits), scan


def summarize(circuit: QuantumCircuit, version: int) -> CircuitSummary:
    return CircuitSummary(
        qasm_version=version,
        num_qubits=circuit.num_qubits,
        num_clbits=circuit.num_clbits,
        size=unrolled_size(circuit),
        depth=circuit.depth(),
        ops={str(k): int(v) for k, v in circuit.count_ops().items()},
    )


def unrolled_size(circuit: QuantumCircuit) -> int:
    """``circuit.size()`` with ``for`` bodies counted once per iteration (an empty body counts its
    iterations) and every branch of an ``if``/``switch`` counted: what admission bounds."""
    total = 0
    for instruction in circuit.data:
        operation = instruction.operation
        if operation.name == "for_loop":
            total += len(operation.params[0]) * max(1, unrolled_size(operation.blocks[0]))
        elif getattr(operation, "blocks", None):
            total += sum(unrolled_size(block) for block in operation.blocks)
        elif not getattr(operation, "_directive", False):
            total += 1
    return total


def _parse_qasm2(text: str) -> QuantumCircuit:
    try:
        # No include path: qelib1.inc is built in, and nothing else can be read from the disk.
        return qasm2.loads(text, include_path=())
    except qasm2.QASM2ParseError as exc:
        raise _positioned(str(exc.message if hasattr(exc, "message") else exc)) from None
    except Exception as exc:  # noqa: BLE001 -- e.g. its expression parser's RecursionError
        raise CircuitError(f"cannot parse this OpenQASM 2 program: {type(exc).__name__}") from None


def _parse_qasm3(text: str, scan: Scan, limits: Limits) -> QuantumCircuit:
    fast = _parse_qasm3_fast(text)
    if fast is not None:
        return fast
    _reference_budget("reference_bytes", scan.bytes, limits.max_reference_bytes, "bytes")
    _reference_budget("reference_tokens", count_tokens(text), limits.max_reference_tokens, "tokens")
    _reference_budget("reference_expansion", scan.expansion, limits.max_reference_expansion,
                      "operations copied into user-defined gate calls")
    return _parse_qasm3_reference(text)


def _reference_budget(limit: str, value: int, maximum: int, what: str) -> None:
    if value > maximum:
        raise CircuitLimitExceeded(
            f"the program has {value} {what}; OpenQASM 3 outside the plain subset QCOS parses natively "
            f"is limited to {maximum} (docs/circuits.md)", limit=limit, maximum=maximum)


def _parse_qasm3_reference(text: str) -> QuantumCircuit:
    try:
        program = openqasm3.parse(text)
    except Exception as exc:  # the reference parser raises several types for syntax errors
        raise _syntax_error(exc) from None
    program = _with_qcos_conveniences(program)
    try:
        return qasm3_convert(program)
    except ConversionError as exc:
        raise _positioned(exc.message) from None
    except Exception as exc:  # the importer raises plain errors for some unsupported constructs
        raise CircuitError(f"cannot import this OpenQASM 3 program: {exc}") from None


def _positioned(message: str) -> CircuitError:
    """Turn ``"<input>:6,11: msg"`` or ``"6,11: msg"`` (0-based column) into a CircuitError."""
    match = _POSITION.match(message.strip().strip("'\""))
    if not match:
        return CircuitError(message)
    return CircuitError(match.group(3), int(match.group(1)), int(match.group(2)) + 1)


def _syntax_error(exc: BaseException) -> CircuitError:
    """Find the offending token ANTLR recorded under the parser's exception chain."""
    seen: BaseException | None = exc
    while seen is not None:
        for candidate in (seen, *getattr(seen, "args", ())):
            token = getattr(candidate, "offendingToken", None)
            if token is not None and getattr(token, "line", None) is not None:
                near = (token.text or "").replace("<EOF>", "end of input")
                return CircuitError(f"syntax error near {near!r}", token.line, token.column + 1)
        message = str(seen)
        if message and _POSITION.match(message):
            return _positioned(message)
        lc = re.match(r"L(\d+):C(\d+):\s*(.*)", message)
        if lc:
            return CircuitError(lc.group(3), int(lc.group(1)), int(lc.group(2)) + 1)
        seen = seen.__cause__ or seen.__context__
    return CircuitError("syntax error")


def _with_qcos_conveniences(program: qasm_ast.Program) -> qasm_ast.Program:
    """Add the implicit stdgates include and targets for bare measurements (see module doc)."""
    statements = list(program.statements)
    bare = [s for s in statements if isinstance(s, qasm_ast.QuantumMeasurementStatement) and s.target is None]
    has_include = any(isinstance(s, qasm_ast.Include) for s in statements)
    if has_include and not bare:
        return program
    program = copy.copy(program)
    new_statements: list[qasm_ast.Statement] = []
    if not has_include:
        new_statements.append(qasm_ast.Include(filename="stdgates.inc"))
    measured_registers = {_operand_name(s.measure.qubit) for s in bare}
    for statement in statements:
        if statement in bare:
            statement = copy.copy(statement)
            statement.target = _mirror(statement.measure.qubit)
        new_statements.append(statement)
        if isinstance(statement, qasm_ast.QubitDeclaration) and statement.qubit.name in measured_registers:
            new_statements.append(
                qasm_ast.ClassicalDeclaration(
                    type=qasm_ast.BitType(size=statement.size),
                    identifier=qasm_ast.Identifier(name=f"meas_{statement.qubit.name}"),
                    init_expression=None,
                )
            )
    program.statements = new_statements
    return program


def _operand_name(operand) -> str:
    return operand.name if isinstance(operand, qasm_ast.Identifier) else operand.name.name


def _mirror(operand):
    if isinstance(operand, qasm_ast.Identifier):
        return qasm_ast.Identifier(name=f"meas_{operand.name}")
    mirrored = copy.copy(operand)
    mirrored.name = qasm_ast.Identifier(name=f"meas_{operand.name.name}")
    return mirrored


# --- the native fast path -------------------------------------------------------------------------
#
# Gates of stdgates.inc the native importer builds exactly as the reference importer does, with
# (number of angles, number of qubits). ``id`` is left out on purpose: the two importers build
# different gates for it.
FAST_GATES: dict[str, tuple[int, int]] = {
    "x": (0, 1), "y": (0, 1), "z": (0, 1), "h": (0, 1), "s": (0, 1), "sdg": (0, 1), "t": (0, 1),
    "tdg": (0, 1), "sx": (0, 1),
    "p": (1, 1), "phase": (1, 1), "rx": (1, 1), "ry": (1, 1), "rz": (1, 1), "u1": (1, 1), "u2": (2, 1),
    "u3": (3, 1),
    "cx": (0, 2), "CX": (0, 2), "cy": (0, 2), "cz": (0, 2), "ch": (0, 2), "swap": (0, 2),
    "cp": (1, 2), "cphase": (1, 2), "crx": (1, 2), "cry": (1, 2), "crz": (1, 2), "cu": (4, 2),
    "ccx": (0, 3), "cswap": (0, 3),
}
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_FAST_RESERVED = frozenset(FAST_GATES) | {
    "OPENQASM", "include", "qubit", "bit", "qreg", "creg", "measure", "barrier", "reset", "gate", "def", "pi",
    "tau", "euler", "U", "gphase", "id", "u", "if", "else", "for", "while", "in", "let", "const", "input",
    "output", "ctrl", "negctrl", "inv", "pow", "return", "box", "delay", "durationof", "stretch", "end",
    "true", "false", "int", "uint", "float", "angle", "bool", "complex", "duration", "array", "defcal", "cal",
    "defcalgrammar", "extern", "break", "continue", "switch", "case", "default", "opaque", "sizeof", "void",
}
# An unterminated comment runs to the end (rather than rescanning the rest for every "/*").
_COMMENT = re.compile(r"//[^\n]*|/\*.*?(?:\*/|\Z)", re.DOTALL)
_SPACES = re.compile(r"\s+")
# Sizes and indices of at most 9 digits: int() of a longer literal is refused (or slow) anyway.
_FAST_DECL = re.compile(rf"(qubit|bit)\s*(?:\[\s*([1-9][0-9]{{0,8}})\s*\])?\s+({_IDENT})")
_FAST_OPERAND = re.compile(rf"\s*({_IDENT})\s*(?:\[\s*([0-9]{{1,9}})\s*\])?\s*")
_FAST_ANGLE = re.compile(r"\s*-?(?:[0-9]+\.[0-9]*(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+)\s*")
_FAST_GATE = re.compile(rf"({_IDENT})\s*(?:\(([^()]*)\))?\s+([^=()]+)")
_FAST_MEASURE = re.compile(
    rf"({_IDENT})\s*(?:\[\s*([0-9]{{1,9}})\s*\])?\s*=\s*measure\s+({_IDENT})\s*(?:\[\s*([0-9]{{1,9}})\s*\])?")
_FAST_HEADER = re.compile(r"OPENQASM\s+3\.0")
_FAST_INCLUDE = re.compile(r'include\s+"stdgates\.inc"')

# loads_experimental warns on every call that it is experimental; it is used here only where the
# tests show it agrees with the reference importer.
warnings.filterwarnings("ignore", message="This is an experimental native version", category=ExperimentalWarning)


def fast_path_eligible(text: str) -> bool:
    """True when ``text`` lies in the plain subset the native importer handles like the reference
    one (module doc). A conservative syntactic check: False sends the program to the reference
    parser, which accepts or rejects it with its own positions."""
    # Runs of whitespace become one space first: the patterns below then cannot backtrack over
    # long runs (they took seconds on a few thousand spaces).
    statements = [s.strip() for s in _SPACES.sub(" ", _COMMENT.sub(" ", text)).split(";")]
    if statements[-1] or len(statements) < 3:  # text after the last ';' (or nothing but a header)
        return False
    statements.pop()
    if not _FAST_HEADER.fullmatch(statements[0]) or not _FAST_INCLUDE.fullmatch(statements[1]):
        return False
    qubits: dict[str, int | None] = {}  # register -> size (None: a single `qubit q`)
    bits: dict[str, int | None] = {}
    for statement in statements[2:]:
        decl = _FAST_DECL.fullmatch(statement)
        if decl:
            kind, size, name = decl.groups()
            if name in _FAST_RESERVED or name in qubits or name in bits:
                return False
            (qubits if kind == "qubit" else bits)[name] = int(size) if size else None
            continue
        measure = _FAST_MEASURE.fullmatch(statement)
        if measure:
            target, t_index, source, s_index = measure.groups()
            if target not in bits or source not in qubits:
                return False
            if (t_index is None) != (s_index is None):
                return False
            if t_index is None:
                if bits[target] != qubits[source]:
                    return False
            elif not (_in_range(bits[target], t_index) and _in_range(qubits[source], s_index)):
                return False
            continue
        gate = _FAST_GATE.fullmatch(statement)
        if not gate:
            return False
        name, angles, operand_text = gate.groups()
        if operand_text.count(",") >= MAX_QUBITS:
            return False  # wider than any register can be: not worth matching operand by operand
        operands = [_FAST_OPERAND.fullmatch(part) for part in operand_text.split(",")]
        if any(op is None or op.group(1) not in qubits for op in operands):
            return False
        refs = [(op.group(1), op.group(2)) for op in operands]
        if any(index is not None and not _in_range(qubits[reg], index) for reg, index in refs):
            return False
        if name == "barrier":
            if angles is not None:
                return False
            continue
        if name not in FAST_GATES:
            return False
        n_angles, n_qubits = FAST_GATES[name]
        given = [] if angles is None else angles.split(",")
        if len(given) != n_angles or not all(_FAST_ANGLE.fullmatch(a) for a in given) or len(refs) != n_qubits:
            return False
        if n_qubits > 1:
            # Multi-qubit gates only on distinct, explicitly indexed qubits (no register broadcast).
            if any(qubits[reg] is not None and index is None for reg, index in refs):
                return False
            if len({(reg, int(index) if index is not None else None) for reg, index in refs}) != n_qubits:
                return False
    return True


def _in_range(size: int | None, index: str) -> bool:
    return size is not None and int(index) < size


def _parse_qasm3_fast(text: str) -> QuantumCircuit | None:
    """The native importer's circuit for a program in the plain subset; None otherwise."""
    if not fast_path_eligible(text):
        return None
    try:
        return qiskit_qasm3.loads_experimental(text)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 -- Rust panics arrive as pyo3's PanicException (a BaseException)
        return None
