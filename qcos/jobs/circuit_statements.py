"""What one statement of a circuit builds, for the pre-scan (``circuit_scan``): declarations,
gate calls (broadcast over registers, user-defined gates expanded), measurements, includes; and
the counters every limit of ``circuit_limits`` is checked against as they grow."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .circuit_lexer import BUILDS_NOTHING, KEYWORDS, MODIFIERS, Token, after_group, literal, shown, signed_literal, split
from .circuit_limits import INCLUDE_REFUSED, STANDARD_INCLUDES, CircuitError, CircuitLimitExceeded, Limits


@dataclass(slots=True)
class Frame:
    kind: str  # "top", "gate" or "block"
    scale: int  # product of the trip counts of the loops around it, up to its gate (or the program)
    trips: int = 1
    ops: int = 0  # operations accumulated (gate and top frames) or added beneath (blocks)
    gate: str = ""
    gate_qubits: frozenset[str] = frozenset()
    gate_depth: int = 1
    pos: int = 0


@dataclass(slots=True)
class Gate:
    size: int
    depth: int


@dataclass
class ScanState:
    """The scanner's state and its statement rules; ``circuit_scan.Scanner`` feeds it."""

    text: str
    version: int
    limits: Limits
    size: int
    frames: list[Frame] = field(default_factory=list)
    registers: int = 0
    qubit_registers: dict[str, int] = field(default_factory=dict)
    gates: dict[str, Gate] = field(default_factory=dict)
    definitions: int = 0
    control_flow: int = 0
    expansion: int = 0
    in_gate: Frame | None = None  # the gate definition being read
    qubits: int = 0
    clbits: int = 0
    tokens: int = 0

    def add(self, operations: int, pos: int, scale: int | None = None) -> None:
        """Add operations at the current frame: to the innermost gate's size, or the program's."""
        amount = operations * (self.frames[-1].scale if scale is None else scale)
        for frame in reversed(self.frames):
            frame.ops += amount
            if frame.kind == "gate":
                if frame.ops > self.limits.max_operations:
                    raise self.too_large(frame.pos, "gate_size", self.limits.max_operations,
                                         f"the gate {frame.gate!r} expands to more than "
                                         f"{self.limits.max_operations} operations")
                return
        if self.frames[0].ops > self.limits.max_operations:
            raise self.too_many_operations(pos, self.frames[0].ops)

    def operations(self, tokens: list[Token]) -> int:
        first = tokens[0]
        word = first[1] if first[0] == "id" else ""
        v3 = self.version == 3
        if word == "include":
            self.check_include(tokens)
            return 0
        if word in ("qreg", "creg") or (v3 and word in ("qubit", "bit")):
            return self.declaration(tokens)
        if v3 and word == "let":
            self.count_register(first[2])
            return 0
        if word == "opaque":
            self.definitions += 1
            if len(tokens) > 1:
                self.gates.setdefault(tokens[1][1], Gate(size=1, depth=1))
            return 0
        if word in BUILDS_NOTHING and (v3 or word in ("OPENQASM", "gate")):
            return 0
        if word == "barrier" or (v3 and word == "gphase"):
            return 1
        if word == "measure":
            return self.operand_size(split(tokens[1:], "->")[0])
        if word == "reset" or (v3 and word == "delay"):
            rest = tokens[1:]
            if rest and rest[0][1] == "[":
                rest = rest[after_group(rest, 0):]
            operands = split(rest, ",") if rest else []
            return max(1, sum(self.operand_size(op) for op in operands))
        assignment = next((i for i, t in enumerate(tokens) if t[0] == "op" and t[1].endswith("=")
                           and t[1] not in ("==", "!=", "<=", ">=")), None)
        if assignment is not None:
            rest = tokens[assignment + 1:]
            if rest and rest[0][1] == "measure":
                return self.operand_size(rest[1:])
            return 0
        return self.gate_call(tokens)

    def check_include(self, tokens: list[Token]) -> None:
        name = next((t[1][1:-1] for t in tokens[1:] if t[0] == "str"), None)
        if name is None or name != STANDARD_INCLUDES.get(self.version):
            # One answer whatever the name: nothing is ever opened, so nothing can be learnt.
            raise self.error(tokens[0][2], INCLUDE_REFUSED)

    def declaration(self, tokens: list[Token]) -> int:
        """``qreg q[n]``, ``creg c[n]``, ``qubit[n] q``, ``bit[n] c`` (``= measure ...``) and the
        single ``qubit q``/``bit c``: sizes must be integer literals."""
        word, n = tokens[0][1], len(tokens)
        quantum = word in ("qreg", "qubit")
        size, name = 1, ""
        if word in ("qreg", "creg"):
            name = tokens[1][1] if n > 1 else ""
            if n > 2 and tokens[2][1] == "[":
                size = self.literal_size(tokens, 2)
        else:
            i = 1
            if n > 1 and tokens[1][1] == "[":
                size = self.literal_size(tokens, 1)
                i = after_group(tokens, 1)
            name = tokens[i][1] if i < n else ""
        self.count_register(tokens[0][2])
        what = "qubits" if quantum else "bits"
        if size > self.limits.max_qubits:
            raise self.too_large(tokens[0][2], what, self.limits.max_qubits,
                                 f"the register {name!r} has {shown(size)} {what}; the limit is {self.limits.max_qubits}")
        if quantum:
            self.qubits += size
            self.qubit_registers[name] = size
            total = self.qubits
        else:
            self.clbits += size
            total = self.clbits
        if total > self.limits.max_qubits:
            raise self.too_large(tokens[0][2], what, self.limits.max_qubits,
                                 f"the circuit declares more than {self.limits.max_qubits} {what}")
        for i, token in enumerate(tokens):
            if token[1] == "measure":
                return self.operand_size(tokens[i + 1:])
        return 0

    def literal_size(self, tokens: list[Token], bracket: int) -> int:
        end = after_group(tokens, bracket)
        inner = tokens[bracket + 1:end - 1]
        value = literal(inner[0][1]) if len(inner) == 1 and inner[0][0] == "num" else None
        if value is None:
            raise self.error(tokens[bracket][2], "a register's size must be an integer literal")
        return value

    def count_control_flow(self, pos: int) -> None:
        """Each ``if``, ``for``, ``box``, ``switch`` branch or scope builds a circuit of its own."""
        self.control_flow += 1
        if self.control_flow > self.limits.max_control_flow:
            raise self.too_large(pos, "control_flow", self.limits.max_control_flow,
                                 f"the circuit has more than {self.limits.max_control_flow} control-flow "
                                 "statements (if, for, box, switch cases, scopes)")

    def count_register(self, pos: int) -> None:
        self.registers += 1
        if self.registers > self.limits.max_registers:
            raise self.too_large(pos, "registers", self.limits.max_registers,
                                 f"the circuit declares more than {self.limits.max_registers} registers")

    def gate_call(self, tokens: list[Token]) -> int:
        i, n, controls, power = 0, len(tokens), 0, False
        while i < n and tokens[i][0] == "id" and tokens[i][1] in MODIFIERS:
            modifier = tokens[i]
            i += 1
            argument: list[Token] = []
            if i < n and tokens[i][1] == "(":
                end = after_group(tokens, i)
                argument, i = tokens[i + 1:end - 1], end
            if modifier[1] in ("ctrl", "negctrl"):
                value = 1 if not argument else (literal(argument[0][1]) if len(argument) == 1 else None)
                if value is None:
                    raise self.error(modifier[2], f"the argument of {modifier[1]} must be an integer literal")
                controls += value
                if controls > self.limits.max_controls:
                    raise self.too_large(modifier[2], "controls", self.limits.max_controls,
                                         f"a gate has more than {self.limits.max_controls} control qubits")
            elif modifier[1] == "pow":
                power = True
            if i < n and tokens[i][1] == "@":
                i += 1
        if i >= n:
            return 1
        callee = self.gates.get(tokens[i][1])
        i += 1
        if i < n and tokens[i][1] == "(":
            i = after_group(tokens, i)
        if i < n and tokens[i][1] == "[":  # a duration
            i = after_group(tokens, i)
        operands = split(tokens[i:], ",") if i < n else []
        if power and len(operands) > self.limits.max_power_qubits:
            # pow builds the gate's matrix: 4^n numbers for n qubits.
            raise self.too_large(tokens[0][2], "power_qubits", self.limits.max_power_qubits,
                                 f"pow applies to gates on at most {self.limits.max_power_qubits} qubits")
        broadcast = max((self.operand_size(op) for op in operands), default=1)
        return self.call_cost(callee, broadcast, tokens[0][2])

    def call_cost(self, callee: Gate | None, broadcast: int, pos: int) -> int:
        """The operations of one gate statement applied to ``broadcast`` qubits (or qubit tuples)."""
        if callee is None:
            return broadcast
        gate = self.in_gate
        if gate is not None:
            gate.gate_depth = max(gate.gate_depth, callee.depth + 1)
            if gate.gate_depth > self.limits.max_gate_nesting:
                raise self.too_large(pos, "gate_nesting", self.limits.max_gate_nesting,
                                     f"gate definitions are nested more than {self.limits.max_gate_nesting} deep")
        # The importer copies the callee's whole expansion once per broadcast qubit, loops or not.
        self.expansion += broadcast * max(1, callee.size)
        return broadcast * max(1, callee.size)

    def simple_statement(self, match: re.Match) -> bool:
        """A plain statement (module doc) counted from one regular expression match, without
        tokens: the bulk of large programs. False: read it token by token instead."""
        name, params, args, measured = match.group("name", "params", "args", "measured")
        if name is None:
            operations = self.named_size(measured or match.group("measured3"))
        elif name in KEYWORDS and not (name in ("barrier", "reset") and params is None):
            return False  # keywords have their own rules
        elif params is not None and len(params) > 24:
            return False  # long parameters and operand lists get the exact checks
        elif name == "barrier":
            operations = 1
        elif name == "reset":
            operations = sum(self.named_size(operand) for operand in args.split(","))
        else:
            broadcast = max(map(self.named_size, args.split(","))) if "," in args else self.named_size(args)
            callee = self.gates.get(name)
            pos = match.start("name")
            operations = broadcast if callee is None else self.call_cost(callee, broadcast, pos)
        top = self.frames[0]
        if len(self.frames) == 1 and top.ops + operations <= self.limits.max_operations:
            top.ops += operations
        else:
            self.add(operations, match.end())
        return True

    def named_size(self, operand: str) -> int:
        """``operand_size`` for an operand of a plain statement: a name, or a name[literal]."""
        operand = operand.strip()
        if "[" in operand:
            return 1
        gate = self.in_gate
        if gate is not None and operand in gate.gate_qubits:
            return 1
        return self.qubit_registers.get(operand) or max(1, self.qubits)

    def operand_size(self, tokens: list[Token]) -> int:
        """How many qubits an operand names: 1 for an indexed qubit, the register's size for a
        register, the count of a literal slice or set; every declared qubit when it cannot tell."""
        if not tokens:
            return 0
        first = tokens[0]
        unknown = max(1, self.qubits)
        if first[0] != "id":
            return unknown
        if first[1].startswith("$"):
            return 1
        gate = self.in_gate
        if gate is not None and first[1] in gate.gate_qubits:
            return 1
        size = self.qubit_registers.get(first[1], unknown)
        if len(tokens) == 1:
            return size
        if tokens[1][1] != "[":
            return unknown
        end = after_group(tokens, 1)
        inner = tokens[2:end - 1]
        if inner and inner[0][1] == "{":
            inner = inner[1:-1]
            return min(size, len(split(inner, ","))) if inner else 0
        parts = split(inner, ":")
        if len(parts) > 1:
            values = [signed_literal(part) for part in parts]
            if len(values) in (2, 3) and all(v is not None for v in values):
                start, step, stop = (values[0], 1, values[1]) if len(values) == 2 else values
                if step:
                    count = (stop - start) // step + 1 if step > 0 else (start - stop) // -step + 1
                    return max(0, min(size, count))
            return size
        elements = split(inner, ",")
        return min(size, len(elements)) if len(elements) > 1 else 1

    # --- errors ----------------------------------------------------------------------------------

    def error(self, pos: int, message: str, cls: type[CircuitError] = CircuitError, **extra) -> CircuitError:
        line = self.text.count("\n", 0, pos) + 1
        column = pos - self.text.rfind("\n", 0, pos)
        return cls(message, line, column, **extra)

    def too_large(self, pos: int, limit: str, maximum: int, message: str) -> CircuitError:
        return self.error(pos, message, CircuitLimitExceeded, limit=limit, maximum=maximum)

    def too_many_operations(self, pos: int, operations: int) -> CircuitError:
        maximum = self.limits.max_operations
        return self.too_large(pos, "operations", maximum,
                              f"the circuit has more than {maximum} operations (loops unrolled, "
                              f"user-defined gates expanded); the limit is {maximum}")
