"""The limits a circuit's text is held to before any parser runs, and how a refusal is reported
(docs/circuits.md). The pre-scan that enforces them is ``circuit_scan``; its lexical tables are
``circuit_lexer``.
"""

from __future__ import annotations

from dataclasses import dataclass

# The most qubits any backend accepts (the Clifford simulator's 1,000); also the most bits.
MAX_QUBITS = 1_000
MAX_REGISTERS = 256
MAX_GATE_DEFINITIONS = 1_000
MAX_GATE_NESTING = 32
MAX_BLOCK_NESTING = 32
MAX_EXPRESSION_DEPTH = 32
MAX_EXPRESSION_OPERATORS = 128
MAX_STATEMENT_TOKENS = 8_192
MAX_CONTROL_FLOW = 1_000
# Tokens read one by one: statements other than plain gate calls, measurements, barriers and
# resets (those are matched whole). Bounds the scan itself to a few hundred milliseconds.
MAX_SCANNED_TOKENS = 65_536
MAX_CONTROLS = 16
MAX_POWER_QUBITS = 4
# Programs outside the native fast subset go through the reference parser (ANTLR, in Python):
# ~50 µs a token, ~4 µs a character, and qiskit_qasm3_import deep-copies a user-defined gate's
# whole expansion at every call. These budgets hold it to about half a second (docs/circuits.md).
MAX_REFERENCE_TOKENS = 10_000
MAX_REFERENCE_BYTES = 32 * 1024
MAX_REFERENCE_EXPANSION = 4_096

STANDARD_INCLUDES = {2: "qelib1.inc", 3: "stdgates.inc"}
INCLUDE_REFUSED = "only the standard library can be included: \"qelib1.inc\" in OpenQASM 2, \"stdgates.inc\" in OpenQASM 3"


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
class CircuitLimitExceeded(CircuitError):
    """Over one of the documented limits; ``limit`` names it (``CIRCUIT_TOO_LARGE``)."""

    limit: str = ""
    maximum: int = 0


@dataclass(frozen=True)
class UnboundedCircuit(CircuitError):
    """The circuit's length cannot be known before it runs (a ``while`` loop, a loop over a range
    that is not integer literals): it can be neither priced nor admitted (``PRICING_ERROR``)."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 256 * 1024
    max_operations: int = 50_000
    max_qubits: int = MAX_QUBITS
    max_registers: int = MAX_REGISTERS
    max_gate_definitions: int = MAX_GATE_DEFINITIONS
    max_gate_nesting: int = MAX_GATE_NESTING
    max_block_nesting: int = MAX_BLOCK_NESTING
    max_expression_depth: int = MAX_EXPRESSION_DEPTH
    max_expression_operators: int = MAX_EXPRESSION_OPERATORS
    max_statement_tokens: int = MAX_STATEMENT_TOKENS
    max_controls: int = MAX_CONTROLS
    max_control_flow: int = MAX_CONTROL_FLOW
    max_scanned_tokens: int = MAX_SCANNED_TOKENS
    max_power_qubits: int = MAX_POWER_QUBITS
    max_reference_tokens: int = MAX_REFERENCE_TOKENS
    max_reference_bytes: int = MAX_REFERENCE_BYTES
    max_reference_expansion: int = MAX_REFERENCE_EXPANSION


def limits_from_settings() -> Limits:
    """The limits with the deployment's byte and operation limits (``QCOS`` settings) when Django is
    configured, so the web tier and the workers apply the same numbers."""
    try:
        from django.conf import settings

        config = settings.QCOS
    except Exception:  # noqa: BLE001 -- outside Django (scripts, tools): the documented defaults
        return Limits()
    return Limits(max_bytes=config["MAX_CIRCUIT_BYTES"], max_operations=config["MAX_CIRCUIT_OPERATIONS"])


@dataclass(frozen=True)
class Scan:
    """What the pre-scan found: upper bounds of what the parser will build."""

    version: int
    bytes: int
    tokens: int
    qubits: int
    clbits: int
    operations: int
    expansion: int  # operations copied to build user-defined gate calls (Σ calls × expanded size)

    # ``tokens`` counts only the tokens read one by one (plain statements are matched whole); the
    # reference parser's budget counts them all (``count_tokens``).
