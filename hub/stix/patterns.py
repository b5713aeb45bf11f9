"""STIX 2.1 pattern validity, as stix2-patterns decides it, without parsing every pattern.

ANTLR's Python runtime takes ~0.7 ms per pattern. Whether a pattern parses depends only on
its token types, not on what its literals hold, so a pattern is split into a skeleton (each
literal in a value position replaced by a placeholder of the same token kind) whose verdict
is cached, plus the literals themselves. The one check that reads literal contents,
stix2-patterns' hash-format check (`object_validator.verify_object`), runs on the real
literals every time. Anything the splitter is unsure of is left to the full validator.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from antlr4 import CommonTokenStream, InputStream, ParseTreeWalker
from stix2patterns.exceptions import STIXPatternErrorListener
from stix2patterns.helpers import brackets_check
from stix2patterns.v21 import object_validator
from stix2patterns.v21.grammars.STIXPatternLexer import STIXPatternLexer
from stix2patterns.v21.grammars.STIXPatternParser import STIXPatternParser
from stix2patterns.v21.inspector import InspectionListener
from stix2patterns.v21.validator import DuplicateQualifierTypeError, ValidationListener

# The lexer rules of STIXPattern.g4 (2.1) for the four quoted literal kinds. A literal only
# counts when no identifier character precedes it: otherwise ANTLR's longest match could
# read the quote into another token (`xh'00'` is the identifier `xh`, then a string).
_B64 = "[A-Za-z0-9+/]"
_LITERAL = re.compile(
    r"(?<![A-Za-z0-9_-])(?:"
    r"(?P<string>'(?:[^'\\]|\\['\\])*')"
    r"|(?P<hex>h'(?:[0-9A-Fa-f]{2})*')"
    rf"|(?P<binary>b'(?:{_B64}{{4}})*(?:{_B64}{{4}}|{_B64}{{3}}=|{_B64}{{2}}==)')"
    r"|(?P<timestamp>t'[0-9]{4}-(?:0[1-9]|1[012])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?Z')"
    r")"
)
_PLACEHOLDERS = {"hex": "h'00'", "binary": "b'AAAA'", "timestamp": "t'2000-01-01T00:00:00Z'"}
# A string literal is a value (not a path component such as hashes.'SHA-256', which is
# part of the pattern's structure) when an operator, `(` or `,` comes right before it.
_BEFORE_VALUE = re.compile(r"(?:[=<>(,]|\b(?:LIKE|MATCHES|ISSUBSET|ISSUPERSET))\s*\Z")
_STRING_PLACEHOLDER = re.compile(r"'#([0-9]+)'")
# A quoted literal of any kind ('..', h'..', b'..', t'..', with backslash escapes), or an
# unterminated one: nothing in it is part of the pattern's structure.
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'?", re.DOTALL)


_BRACKETS = re.compile(r"[][()]")
# Parentheses and brackets inside one another: the grammar's parser recurses about four
# levels for each, and with 600 chained comparisons at 32 still stays under Python's limit.
MAX_NESTING = 32


@dataclass(frozen=True, slots=True)
class Structure:
    """What a STIX pattern costs to parse, measured without its grammar in one pass."""

    comparisons: int  # object path tests (`type:property ...`)
    nesting: int  # parentheses and brackets inside one another, at the deepest


def structure(pattern: str) -> Structure:
    """The comparisons and nesting of a STIX pattern: every comparison has one object path,
    whose colon is the grammar's only one outside quoted literals. Linear and cheap, where
    the parser costs about 10 µs a character and recurses per chained AND/OR/FOLLOWEDBY and
    per level of nesting."""
    bare = _QUOTED.sub("", pattern)
    depth = deepest = 0
    for bracket in _BRACKETS.findall(bare):
        if bracket in "([":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return Structure(bare.count(":"), deepest)


@functools.lru_cache(maxsize=8192)
def _skeleton_verdict(skeleton: str) -> tuple[bool, tuple[tuple[str, Any, str, str], ...]]:
    """stix2-patterns' `run_validator` (2.1) on a skeleton, minus the hash-format check.

    Returns whether it is valid and the comparisons that the hash check must see.
    """
    errors = STIXPatternErrorListener()
    lexer = STIXPatternLexer(InputStream(skeleton))
    lexer.removeErrorListeners()
    parser = STIXPatternParser(CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser.addErrorListener(errors)
    for i, name in enumerate(parser.literalNames):
        if name == "<INVALID>":
            parser.literalNames[i] = parser.symbolicNames[i]
    tree = parser.pattern()
    if errors.err_strings or not brackets_check(skeleton):
        return False, ()
    inspection = InspectionListener()
    ParseTreeWalker.DEFAULT.walk(inspection, tree)
    try:
        ParseTreeWalker.DEFAULT.walk(ValidationListener(), tree)
    except DuplicateQualifierTypeError:
        return False, ()
    hashed = tuple(
        (kind, path, op, value)
        for kind, comparisons in inspection.pattern_data().comparisons.items()
        for path, op, value in comparisons
        if "hashes" in path
    )
    return True, hashed


def split(pattern: str) -> tuple[str, list[str]] | None:
    """The skeleton of `pattern` and its string literals in order, or None when unsure."""
    strings: list[str] = []
    parts: list[str] = []
    end = 0
    for match in _LITERAL.finditer(pattern):
        gap = pattern[end : match.start()]
        if "'" in gap or "/" in gap:
            # A quote outside every literal this splitter understands, or a comment
            # (/* */, //), which may hide quotes: the full validator decides.
            return None
        parts.append(gap)
        kind = match.lastgroup or ""
        text = match.group()
        if kind != "string":
            parts.append(_PLACEHOLDERS[kind])
        elif _BEFORE_VALUE.search(gap):
            parts.append(f"'#{len(strings)}'")
            strings.append(text)
        elif _STRING_PLACEHOLDER.fullmatch(text):
            return None  # kept as it is, it would pass for a placeholder
        else:
            parts.append(text)
        end = match.end()
    tail = pattern[end:]
    if "'" in tail or "/" in tail:
        return None
    parts.append(tail)
    return "".join(parts), strings


def is_valid(pattern: str) -> bool | None:
    """Whether stix2-patterns accepts `pattern` as STIX 2.1; None when only it can tell."""
    pieces = split(pattern)
    if pieces is None:
        return None
    skeleton, strings = pieces
    try:
        valid, hashed = _skeleton_verdict(skeleton)
    except Exception:
        return None  # the library raises on some odd shapes; let it speak for itself
    if not valid or not hashed:
        return valid
    comparisons: dict[str, list[tuple[Any, str, str]]] = {}
    for kind, path, op, value in hashed:
        if "'" in _STRING_PLACEHOLDER.sub("", value):
            return None  # a hash compared with a hex/binary/timestamp literal: rare
        restored = _STRING_PLACEHOLDER.sub(lambda m: strings[int(m.group(1))], value)
        comparisons.setdefault(kind, []).append((path, op, restored))
    try:
        return not object_validator.verify_object(SimpleNamespace(comparisons=comparisons))
    except Exception:
        return None
