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

from .circuit_lexer import BLOCK_HEADERS, SIMPLE, TOKEN, Token, after_group, signed_literal, split
from .circuit_limits import CircuitError, CircuitLimitExceeded, Limits, Scan, UnboundedCircuit
from .circuit_statements import Frame, Gate, ScanState


class _Scanner(ScanState):
    """The token loop and the blocks (loops, branches, gate bodies); ``ScanState`` counts what
    each statement builds."""

    # --- tokens ----------------------------------------------------------------------------------

    def scan(self) -> Scan:
        self.frames.append(Frame(kind="top", scale=1))
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
            frame = Frame(kind="block", scale=parent.scale * max(1, trips), trips=trips, pos=pos)
            if frame.scale > self.limits.max_operations:
                raise self.too_many_operations(pos, frame.scale)
        self.frames.append(frame)
        if frame.kind == "gate":
            self.in_gate = frame
        if len(self.frames) - 1 > self.limits.max_block_nesting:
            raise self.too_large(pos, "block_nesting", self.limits.max_block_nesting,
                                 f"blocks are nested more than {self.limits.max_block_nesting} deep")

    def gate_frame(self, header: list[Token], pos: int) -> Frame:
        self.definitions += 1
        if self.definitions > self.limits.max_gate_definitions:
            raise self.too_large(header[0][2], "gate_definitions", self.limits.max_gate_definitions,
                                 f"the circuit defines more than {self.limits.max_gate_definitions} gates")
        name = header[1][1] if len(header) > 1 else ""
        i = 2
        if i < len(header) and header[i][1] == "(":
            i = after_group(header, i)
        qubits = frozenset(t[1] for t in header[i:] if t[0] == "id")
        return Frame(kind="gate", scale=1, gate=name, gate_qubits=qubits, pos=pos)

    def close_block(self) -> None:
        frame = self.frames.pop()
        self.in_gate = next((f for f in reversed(self.frames) if f.kind == "gate"), None)
        if frame.kind == "gate":
            known = self.gates.get(frame.gate)
            size, depth = frame.ops, frame.gate_depth
            if known is not None:  # a redefinition (the parser refuses it): keep the larger
                size, depth = max(size, known.size), max(depth, known.depth)
            self.gates[frame.gate] = Gate(size=size, depth=depth)
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

    def end_statement(self, tokens: list[Token]) -> None:
        trips, start = self.prefixes(tokens)
        if start >= len(tokens):
            return
        operations = self.operations(tokens[start:])
        if trips > 1 and operations == 0:
            operations = 1  # an empty loop body still runs its iterations
        if operations:
            self.add(operations * max(1, trips), tokens[0][2])


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
