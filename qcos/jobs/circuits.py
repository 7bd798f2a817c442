"""Parsing and checking submitted circuits (OpenQASM 2 and 3) into Qiskit circuits.

Decisions, documented in the README:

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
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

import openqasm3
from openqasm3 import ast as qasm_ast
from qiskit import QuantumCircuit, qasm2
from qiskit_qasm3_import import convert as qasm3_convert
from qiskit_qasm3_import.exceptions import ConversionError

from ledger.crypto.canonical import sha256_tagged

_HEADER = re.compile(r"^\s*(?:(?://[^\n]*\n|/\*.*?\*/)\s*)*OPENQASM\s+(\d+)(?:\.(\d+))?\s*;", re.DOTALL)
_POSITION = re.compile(r"^(?:<input>:)?(\d+),(\d+):\s*(.*)$", re.DOTALL)


@dataclass(frozen=True)
class CircuitError(Exception):
    """A circuit that cannot be accepted; ``line``/``column`` are 1-based when known."""

    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}, column {self.column}: " if self.line is not None else ""
        return f"{where}{self.message}"


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
    match = _HEADER.match(text)
    return int(match.group(1)) if match else 3


def parse_circuit(text: str) -> QuantumCircuit:
    """Parse OpenQASM 2 or 3 text; raise :class:`CircuitError` with the parser's position."""
    version = qasm_version(text)
    if version == 2:
        return _parse_qasm2(text)
    if version == 3:
        return _parse_qasm3(text)
    raise CircuitError(f"unsupported OpenQASM version {version}; QCOS accepts 2 and 3", 1, 1)


def summarize(circuit: QuantumCircuit, version: int) -> CircuitSummary:
    return CircuitSummary(
        qasm_version=version,
        num_qubits=circuit.num_qubits,
        num_clbits=circuit.num_clbits,
        size=circuit.size(),
        depth=circuit.depth(),
        ops={str(k): int(v) for k, v in circuit.count_ops().items()},
    )


def _parse_qasm2(text: str) -> QuantumCircuit:
    try:
        return qasm2.loads(text)
    except qasm2.QASM2ParseError as exc:
        raise _positioned(str(exc.message if hasattr(exc, "message") else exc)) from None


def _parse_qasm3(text: str) -> QuantumCircuit:
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
