"""The comparisons of a STIX pattern, and where their object paths lead.

A comparison (`email-message:to_refs[*].value = 'x'`) tests a property of an object, or of
an object it refers to: paths follow the cyber-observables' reference properties (the
table in `sco_references.json`). Patterns are read with OASIS's grammar (stix2-patterns),
so every comparison is found whatever the spacing, nesting or quoting, with the place of
each part in the pattern's text for rewriting it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from antlr4 import CommonTokenStream, InputStream, ParserRuleContext
from antlr4.tree.Tree import ParseTree, TerminalNodeImpl
from stix2patterns.exceptions import STIXPatternErrorListener
from stix2patterns.v21.grammars.STIXPatternLexer import STIXPatternLexer
from stix2patterns.v21.grammars.STIXPatternParser import STIXPatternParser

P = STIXPatternParser
_LITERALS = frozenset(
    {
        P.StringLiteral,
        P.IntPosLiteral,
        P.IntNegLiteral,
        P.FloatPosLiteral,
        P.FloatNegLiteral,
        P.BinaryLiteral,
        P.HexLiteral,
        P.TimestampLiteral,
        P.BoolLiteral,
    }
)
# One step of an object path after the type: a name, a quoted name, or a list index.
_STEP = re.compile(r"\.?(?:'((?:[^'\\]|\\.)*)'|([A-Za-z0-9_-]+)|\[(?:\*|-?[0-9]+)\])")


@dataclass(frozen=True, slots=True)
class Literal:
    start: int  # where it is in the pattern's text (end exclusive)
    end: int
    token: int  # its token type (P.StringLiteral, P.IntPosLiteral, ...)
    text: str


@dataclass(frozen=True, slots=True)
class Comparison:
    """One comparison: its object type, path (property names, list indexes left out),
    operator (`=`, `IN`, `LIKE`, `EXISTS`, ...; `NOT` apart), and where it is."""

    object_type: str
    path: tuple[str, ...]
    operator: str
    negated: bool
    path_text: str  # `type:path` as written (without spaces)
    start: int
    end: int
    literals: tuple[Literal, ...]


@cache
def reference_targets() -> Mapping[str, Mapping[tuple[str, ...], tuple[str, ...]]]:
    """Per cyber-observable type, its reference properties (as paths) and their targets."""
    text = resources.files("hub.stix").joinpath("sco_references.json").read_text()
    table = {k: v for k, v in json.loads(text).items() if not k.startswith("_")}
    return {
        kind: {tuple(path.split(".")): tuple(targets) for path, targets in refs.items()}
        for kind, refs in table.items()
    }


def split_path(path_text: str) -> tuple[str, tuple[str, ...]]:
    """(object type, property names) of `type:a.b[*].'c-d'`: indexes left out."""
    kind, _, rest = path_text.partition(":")
    names: list[str] = []
    for match in _STEP.finditer(rest):
        quoted, plain = match.group(1), match.group(2)
        if quoted is not None:
            names.append(quoted.replace("\\'", "'").replace("\\\\", "\\"))
        elif plain is not None:
            names.append(plain)
    return kind, tuple(names)


def _terminals(node: ParseTree) -> Iterator[TerminalNodeImpl]:
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, TerminalNodeImpl):
            yield current
        elif isinstance(current, ParserRuleContext):
            stack.extend(reversed(list(current.getChildren())))


def comparisons(pattern: str) -> list[Comparison] | None:
    """Every comparison of a STIX 2.1 pattern, in order; None if it does not parse."""
    errors = STIXPatternErrorListener()
    lexer = STIXPatternLexer(InputStream(pattern))
    lexer.removeErrorListeners()
    parser = STIXPatternParser(CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser.addErrorListener(errors)
    try:
        tree = parser.pattern()
    except RecursionError:
        return None  # the grammar's parser recurses per comparison: validation refuses these
    if errors.err_strings:
        return None
    found: list[Comparison] = []
    stack: list[ParseTree] = [tree]
    while stack:
        node = stack.pop()
        if not isinstance(node, ParserRuleContext):
            continue  # a terminal
        if isinstance(node, P.PropTestContext) and not isinstance(node, P.PropTestParenContext):
            found.append(_comparison(node))
            continue
        stack.extend(reversed(list(node.getChildren())))
    return found


def _comparison(node: Any) -> Comparison:
    """One comparison (a STIXPatternParser.PropTestContext)."""
    path = node.objectPath()
    path_text = path.getText()
    kind, names = split_path(path_text)
    operator, negated = "", False
    literals: list[Literal] = []
    for terminal in _terminals(node):
        token = terminal.symbol
        if token.tokenIndex <= path.stop.tokenIndex and token.tokenIndex >= path.start.tokenIndex:
            continue
        if token.type in _LITERALS:
            literals.append(Literal(token.start, token.stop + 1, token.type, token.text))
        elif token.type == P.NOT:
            negated = True
        elif token.type not in (P.LPAREN, P.RPAREN, P.COMMA):
            operator = token.text.upper()
    return Comparison(
        kind,
        names,
        operator,
        negated,
        path_text,
        node.start.start,
        node.stop.stop + 1,
        tuple(literals),
    )
