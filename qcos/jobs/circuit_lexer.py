"""The tokens of OpenQASM 2 and 3 as the pre-scan (``circuit_scan``) reads them: regular
expressions that cannot backtrack beyond one token, the keyword tables, and helpers over lists of
tokens. Nothing here allocates more than the token it returns."""

from __future__ import annotations

import re

# One token per match, with the whitespace and comments before it. No alternative can backtrack
# beyond its own token: an unterminated string runs to the end of its line and an unterminated
# block comment is refused, so the whole scan is linear in the text. The repeats are possessive
# (*+): a greedy repeat keeps a backtracking frame per iteration, megabytes on a long comment run.
TOKEN = re.compile(
    r"""(?:\s+|//[^\n]*|/\*[^*]*\*+(?:[^/*][^*]*\*+)*+/)*+(?:
      (?P<bc>/\*)
    | (?P<num>0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+
        |(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9]+)?)
    | (?P<pragma>\#?pragma[ \t][^\n]*)
    | (?P<ann>@[^\W\d][\w.]*[^\n]*)
    | (?P<id>[^\W\d]\w*|\$[0-9]+)
    | (?P<str>"[^"\n]*"?|'[^'\n]*'?)
    | (?P<semis>;[\s;]*)
    | (?P<arrow>->)
    | (?P<op>\*\*=?|<<=?|>>=?|&&|\|\||\+\+|==|!=|<=|>=|[-+*/%&|^]=|[-+*/%<>&|^~!=])
    | (?P<p>[;{}()\[\],:@.])
    | (?P<other>\S)
    | (?P<end>\Z)
    )""",
    re.VERBOSE,
)
# A plain statement: a gate call with flat parameters (no parentheses inside) on at most 65 names
# or literally indexed names, or a measurement of one. Each part is unambiguous and the repeats
# possessive, so a failed match costs its length once and no memory.
OPERAND = r"[A-Za-z_][A-Za-z0-9_]*(?:\[[0-9]{1,6}\])?"
SIMPLE = re.compile(
    rf"""(?:\s+|//[^\n]*)*+(?:
      measure[ \t]+(?P<measured>{OPERAND})[ \t]*->[ \t]*{OPERAND}
    | {OPERAND}[ \t]*=[ \t]*measure[ \t]+(?P<measured3>{OPERAND})
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:[ \t]*\((?P<params>[\w \t.,+\-*/]*)\))?
      [ \t]+(?P<args>{OPERAND}(?:[ \t]*,[ \t]*{OPERAND}){{0,64}}+)
    )[ \t]*;""",
    re.VERBOSE,
)
INT = re.compile(r"[0-9][0-9_]*|0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+")
HUGE = 10**30  # any literal with more digits than this is "too large" for every limit

BLOCK_HEADERS = {
    2: frozenset({"gate"}),
    3: frozenset({"gate", "def", "for", "while", "if", "else", "box", "switch", "case", "default", "cal",
                  "defcal", "extern"}),
}
BUILDS_NOTHING = frozenset({"OPENQASM", "const", "input", "output", "int", "uint", "float", "angle", "bool",
                             "complex", "duration", "stretch", "array", "extern", "defcalgrammar", "return",
                             "break", "continue", "end", "gate", "def", "cal", "defcal"})
MODIFIERS = frozenset({"ctrl", "negctrl", "inv", "pow"})
# Words with their own rules in a statement: never counted as a plain gate call.
KEYWORDS = frozenset({"include", "qreg", "creg", "qubit", "bit", "let", "opaque", "barrier", "gphase", "measure",
                       "reset", "delay", "if", "else", "for", "while", "box", "switch", "case", "default",
                       "pragma"}) | BUILDS_NOTHING | MODIFIERS


# A token: (kind, text, position). Plain tuples: there is one per token of the text.
Token = tuple[str, str, int]


def count_tokens(text: str) -> int:
    """Every token of ``text`` (comments and whitespace are not tokens). Linear; for the reference
    parser's budget, on texts already within its byte budget."""
    count = -1  # the final match is the end of the text
    for _ in TOKEN.finditer(text):
        count += 1
    return count


def after_group(tokens: list[Token], start: int) -> int:
    """The index after the bracket opened at ``start`` is closed (or the end)."""
    depth = 0
    for i in range(start, len(tokens)):
        text = tokens[i][1]
        if tokens[i][0] != "p":
            continue
        if text in "([{":
            depth += 1
        elif text in ")]}":
            depth -= 1
            if depth == 0:
                return i + 1
    return len(tokens)


def split(tokens: list[Token], separator: str) -> list[list[Token]]:
    parts: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token[0] == "p" and token[1] in "([{":
            depth += 1
        elif token[0] == "p" and token[1] in ")]}":
            depth -= 1
        elif depth == 0 and token[1] == separator:
            parts.append([])
            continue
        parts[-1].append(token)
    return parts


def literal(text: str) -> int | None:
    """An integer literal's value (``HUGE`` past 30 digits); None for anything else."""
    if not INT.fullmatch(text):
        return None
    digits = text.replace("_", "")
    if len(digits) > 30:
        return HUGE
    if digits[:2].lower() in ("0x", "0b", "0o"):
        return int(digits, 0) if len(digits) > 2 else None
    return int(digits, 10)


def signed_literal(tokens: list[Token]) -> int | None:
    if len(tokens) == 2 and tokens[0][1] in ("-", "+") and tokens[1][0] == "num":
        value = literal(tokens[1][1])
        return None if value is None else (-value if tokens[0][1] == "-" else value)
    if len(tokens) == 1 and tokens[0][0] == "num":
        return literal(tokens[0][1])
    return None


def shown(value: int) -> str:
    return f"{value}" if value < HUGE else "more than 10^30"
