"""The pre-scan: reads a circuit's text once, before any parser, and refuses what breaks a limit
of ``circuit_limits`` (docs/circuits.md).

The parsers build what a program declares before QCOS can look at it: a register of 2^31 qubits,
a gate that expands to 2^18 operations, a loop of 10^9 iterations, parentheses nested 50,000 deep.
This scan reads the text token by token (plain statements in one match), keeping one statement in
memory at a time, and refuses such programs from what they *say*, so a hostile circuit costs
milliseconds and a few megabytes. It is not a parser: it only needs to be an upper bound on what a
parser would build. Where it cannot tell, it counts high (an unknown operand is taken to be every
declared qubit) or refuses (a register size or a loop range that is not an integer literal).

What it counts as operations (the number ``MAX_CIRCUIT_OPERATIONS`` bounds): one per qubit each
gate, measurement, reset or delay applies to (a gate on a register applies once per qubit), one
per barrier, a user-defined gate counted as the operations of its body (expanded recursively), a
``for`` body once per iteration (an empty body counts the iterations), and every branch of an
``if``/``switch`` (the worst case, as pricing does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .circuit_lexer import (
    BLOCK_HEADERS,
    BUILDS_NOTHING,
    KEYWORDS,
    MODIFIERS,
    SIMPLE,
    TOKEN,
    Token,
    after_group,
    literal,
    shown,
    signed_literal,
    split,
)
from .circuit_limits import (
    INCLUDE_REFUSED,
    STANDARD_INCLUDES,
    CircuitError,
    CircuitLimitExceeded,
    Limits,
    Scan,
    UnboundedCircuit,
)


@dataclass(slots=True)
class _Frame:
    kind: str  # "top", "gate" or "block"
    scale: int  # product of the trip counts of the loops around it, up to its gate (or the program)
    trips: int = 1
    ops: int = 0  # operations accumulated (gate and top frames) or added beneath (blocks)
    gate: str = ""
    gate_qubits: frozenset[str] = frozenset()
    gate_depth: int = 1
    pos: int = 0


@dataclass(slots=True)
class _Gate:
    size: int
    depth: int


@dataclass
class _Scanner:
    text: str
    version: int
    limits: Limits
    size: int
    frames: list[_Frame] = field(default_factory=list)
    registers: int = 0
    qubit_registers: dict[str, int] = field(default_factory=dict)
    gates: dict[str, _Gate] = field(default_factory=dict)
    definitions: int = 0
    control_flow: int = 0
    expansion: int = 0
    in_gate: _Frame | None = None  # the gate definition being read
    qubits: int = 0
    clbits: int = 0
    tokens: int = 0

    # --- tokens ----------------------------------------------------------------------------------

    def scan(self) -> Scan:
        self.frames.append(_Frame(kind="top", scale=1))
        headers = BLOCK_HEADERS.get(self.version, BLOCK_HEADERS[3])
        v3 = self.version == 3
        limits = self.limits
        max_depth, max_operators = limits.max_expression_depth, limits.max_expression_operators
        max_statement, max_tokens = limits.max_statement_tokens, limits.max_scanned_tokens
        text, pos, tokens = self.text, 0, 0
        simple, next_token = SIMPLE.match, TOKEN.match
        # The hot loop, kept to local variables: a plain statement in one match, anything else one
        # token per iteration, with the statement's tokens collected until its ';', '{' or '}'.
        statement: list[tuple[str, str, int]] = []
        depth = run = operators = 0
        while True:
            if not statement:
                match = simple(text, pos)
                if match is not None and self.simple_statement(match):
                    pos = match.end()
                    continue
            match = next_token(text, pos)
            pos = match.end()
            kind = match.lastgroup
            if kind == "end":
                break
            value = match.group(kind)
            if kind == "semis":
                tokens += value.count(";")
                if depth == 0:
                    if statement:
                        self.end_statement(statement)
                        statement, run, operators = [], 0, 0
                    continue
                kind, value = "p", ";"
            if kind == "p":
                if depth == 0 and value in "{}":
                    tokens += 1
                    if value == "{":
                        if self.opens_block(statement, headers):
                            self.open_block(statement, match.start(kind))
                            statement, run, operators = [], 0, 0
                            continue
                    else:
                        if statement:
                            self.end_statement(statement)
                            statement, run, operators = [], 0, 0
                        if len(self.frames) > 1:
                            self.close_block()
                        continue
                if value in "([{":
                    depth += 1
                    if depth + run > max_depth:
                        raise self.too_deep(match.start(kind))
                elif value in ")]}" and depth:
                    depth -= 1
                run = 0
            elif kind == "op":
                run += 1
                operators += 1
                if operators > max_operators:
                    raise self.too_large(match.start(kind), "expression_operators", max_operators,
                                         f"a statement has more than {max_operators} operators")
                if depth + run > max_depth:
                    raise self.too_deep(match.start(kind))
            elif kind == "id" or kind == "num":
                run = 0
            elif kind == "bc":
                raise self.error(match.start(kind), "unterminated comment")
            elif kind == "str":
                if len(value) < 2 or value[-1] != value[0]:
                    raise self.error(match.start(kind), "unterminated string")
                run = 0
            elif (kind == "pragma" or kind == "ann") and v3:
                if kind == "pragma":  # a pragma is a statement to the end of its line
                    tokens += 1
                    if statement:
                        self.end_statement(statement)
                        statement, depth, run, operators = [], 0, 0, 0
                continue  # an annotation qualifies the next statement and builds nothing
            else:
                kind = "other"  # the parser refuses it, or it is not OpenQASM 2 (pragma, annotation)
                run = 0
            tokens += 1
            statement.append((kind, value, match.start(kind)))
            if tokens > max_tokens:
                raise self.too_large(match.start(kind), "scanned_tokens", max_tokens,
                                     f"the circuit has more than {max_tokens} tokens outside plain gate, "
                                     "measure, barrier and reset statements")
            if len(statement) > max_statement:
                raise self.too_large(statement[0][2], "statement_tokens", max_statement,
                                     f"a statement has more than {max_statement} tokens")
        self.tokens += tokens
        if statement:
            self.end_statement(statement)
        while len(self.frames) > 1:  # unclosed blocks: the parser refuses them; count them anyway
            self.close_block()
        return Scan(version=self.version, bytes=self.size, tokens=self.tokens,
                    qubits=self.qubits, clbits=self.clbits, operations=self.frames[0].ops,
                    expansion=self.expansion)

    def too_deep(self, pos: int) -> CircuitError:
        maximum = self.limits.max_expression_depth
        return self.too_large(pos, "expression_depth", maximum, f"an expression is nested more than {maximum} deep")

    # --- blocks ----------------------------------------------------------------------------------

    def opens_block(self, statement: list[Token], headers: frozenset[str]) -> bool:
        if not statement:
            return True  # a bare scope
        first, last = statement[0], statement[-1]
        return first[0] == "id" and first[1] in headers and last[1] not in ("in", "=")

    def open_block(self, header: list[Token], pos: int) -> None:
        trips, start = self.prefixes(header) if header else (1, 0)
        rest = header[start:]
        parent = self.frames[-1]
        if rest and rest[0][1] == "gate":
            frame = self.gate_frame(rest, pos)
        else:
            if not header or (rest and rest[0][1] in ("switch", "case", "default")):
                self.count_control_flow(pos)
            # A body is built once even when its loop never runs: it counts at least once.
            frame = _Frame(kind="block", scale=parent.scale * max(1, trips), trips=trips, pos=pos)
            if frame.scale > self.limits.max_operations:
                raise self.too_many_operations(pos, frame.scale)
        self.frames.append(frame)
        if frame.kind == "gate":
            self.in_gate = frame
        if len(self.frames) - 1 > self.limits.max_block_nesting:
            raise self.too_large(pos, "block_nesting", self.limits.max_block_nesting,
                                 f"blocks are nested more than {self.limits.max_block_nesting} deep")

    def gate_frame(self, header: list[Token], pos: int) -> _Frame:
        self.definitions += 1
        if self.definitions > self.limits.max_gate_definitions:
            raise self.too_large(header[0][2], "gate_definitions", self.limits.max_gate_definitions,
                                 f"the circuit defines more than {self.limits.max_gate_definitions} gates")
        name = header[1][1] if len(header) > 1 else ""
        i = 2
        if i < len(header) and header[i][1] == "(":
            i = after_group(header, i)
        qubits = frozenset(t[1] for t in header[i:] if t[0] == "id")
        return _Frame(kind="gate", scale=1, gate=name, gate_qubits=qubits, pos=pos)

    def close_block(self) -> None:
        frame = self.frames.pop()
        self.in_gate = next((f for f in reversed(self.frames) if f.kind == "gate"), None)
        if frame.kind == "gate":
            known = self.gates.get(frame.gate)
            size, depth = frame.ops, frame.gate_depth
            if known is not None:  # a redefinition (the parser refuses it): keep the larger
                size, depth = max(size, known.size), max(depth, known.depth)
            self.gates[frame.gate] = _Gate(size=size, depth=depth)
        elif frame.ops == 0 and frame.trips > 1:
            # An empty loop still runs its iterations: count them.
            self.add(frame.trips, frame.pos, scale=self.frames[-1].scale)

    def prefixes(self, tokens: list[Token]) -> tuple[int, int]:
        """Skip ``if (...)``, ``else``, ``box[...]`` and ``for ... in <set>`` heads; return the
        product of the loops' trip counts and where the statement proper starts."""
        trips, i, n = 1, 0, len(tokens)
        while i < n and tokens[i][0] == "id":
            word = tokens[i][1]
            if word in ("if", "for", "box"):
                self.count_control_flow(tokens[i][2])
            if word == "if" and i + 1 < n and tokens[i + 1][1] == "(":
                i = after_group(tokens, i + 1)
            elif word == "else":
                i += 1
            elif self.version == 3 and word == "box":
                i += 1
                if i < n and tokens[i][1] == "[":
                    i = after_group(tokens, i)
            elif self.version == 3 and word == "while":
                raise self.error(tokens[i][2], "a while loop has no bound on its length: it can be neither "
                                 "priced nor admitted", UnboundedCircuit)
            elif self.version == 3 and word == "for":
                count, i = self.loop_trips(tokens, i)
                trips *= count
            else:
                break
        return trips, i

    def loop_trips(self, tokens: list[Token], start: int) -> tuple[int, int]:
        n = len(tokens)
        i = start + 1
        while i < n and tokens[i][1] != "in":
            i += 1
        if i + 1 >= n or tokens[i + 1][1] not in ("[", "{"):
            raise self.error(tokens[start][2], "a for loop must run over a range or a set of integer "
                             "literals, so that its length is known before it runs", UnboundedCircuit)
        end = after_group(tokens, i + 1)
        inner = tokens[i + 2:end - 1]
        if tokens[i + 1][1] == "{":
            count = len(split(inner, ",")) if inner else 0
        else:
            count = self.range_length(split(inner, ":"), tokens[start][2])
        return count, end

    def range_length(self, parts: list[list[Token]], pos: int) -> int:
        values = [signed_literal(part) for part in parts]
        if len(values) not in (2, 3) or any(v is None for v in values):
            raise self.error(pos, "a for loop's range must be integer literals ([start:stop] or "
                             "[start:step:stop]), so that its length is known before it runs", UnboundedCircuit)
        start, step, stop = (values[0], 1, values[1]) if len(values) == 2 else values
        if step == 0:
            raise self.error(pos, "a range's step cannot be zero")
        if step > 0:
            return max(0, (stop - start) // step + 1)
        return max(0, (start - stop) // -step + 1)

    # --- statements ------------------------------------------------------------------------------

    def end_statement(self, tokens: list[Token]) -> None:
        trips, start = self.prefixes(tokens)
        if start >= len(tokens):
            return
        operations = self.operations(tokens[start:])
        if trips > 1 and operations == 0:
            operations = 1  # an empty loop body still runs its iterations
        if operations:
            self.add(operations * max(1, trips), tokens[0][2])

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
                self.gates.setdefault(tokens[1][1], _Gate(size=1, depth=1))
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

    def call_cost(self, callee: _Gate | None, broadcast: int, pos: int) -> int:
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


def prescan(text: str, version: int, limits: Limits | None = None) -> Scan:
    """Check ``text`` against every limit the parsers cannot enforce themselves, before they run.

    Raises :class:`CircuitLimitExceeded` (over a limit), :class:`UnboundedCircuit` (a loop whose
    length is unknown) or :class:`CircuitError` (a forbidden include, a register size that is not a
    literal, an unterminated comment or string). Anything else is left to the parser."""
    limits = limits or Limits()
    size = len(text.encode("utf-8"))
    if size > limits.max_bytes:
        raise CircuitLimitExceeded(f"the circuit text is {size} bytes; the limit is {limits.max_bytes}",
                                   limit="bytes", maximum=limits.max_bytes)
    return _Scanner(text=text, version=version, limits=limits, size=size).scan()
