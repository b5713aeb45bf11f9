"""In-memory rewrites of OASIS's STIX 2.1 JSON Schemas, each keeping what they accept.

fastjsonschema compiles a schema to Python; some constructs come out wrong or slow:
- `$schema` says draft 2020-12, which fastjsonschema does not know; the schemas use only
  draft-07 keywords, so they compile as draft-07.
- software.json's CPE pattern has `$$` inside a character class; fastjsonschema turns every
  unescaped `$` into `\\Z` (end of string), which is not allowed there: it becomes `\\$`.
- `const` becomes a one-value `enum`: fastjsonschema 2.22 generates broken code for `const`
  without detailed exceptions.
- `anyOf`, `oneOf` and `not` compile to "validate, catch the exception": one raised and
  caught per failed branch, most of the time spent on valid objects. So an `anyOf` whose
  branches differ only in their `type` becomes one `type` list; `not: {anyOf: [{required:
  [k]}, ...]}` becomes `properties: {k: false, ...}`; and `not` over a value that must be a
  string anyway becomes a negative-lookahead `pattern`.
- the millisecond-precision pattern on `created`/`modified` goes (see `_rewritten`): the
  library accepts whole seconds, and the fast path repeats the library's decisions.
- a `$ref` to a document that refers to nothing else is replaced by that document: a call
  formats the instance's path for every list item (`object_refs[17]`) even when nothing fails.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin

# The JSON types each keyword constrains: an anyOf of branches `{type: T, <keywords for T
# alone>}` accepts what one `{type: [T...], <all those keywords>}` accepts.
_CONSTRAINS = {
    "minItems": {"array"},
    "maxItems": {"array"},
    "items": {"array"},
    "uniqueItems": {"array"},
    "minLength": {"string"},
    "maxLength": {"string"},
    "pattern": {"string"},
    "properties": {"object"},
    "minProperties": {"object"},
    "maxProperties": {"object"},
    "minimum": {"integer", "number"},
    "maximum": {"integer", "number"},
}
_TYPES = frozenset({"array", "string", "object", "integer", "number", "boolean"})
_CPE_DOLLARS = "#$$%"


def rewritten(documents: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """All the schemas (by `$id` URL), rewritten; the originals are left as they are."""
    shaped = {url: _rewritten(_cpe_fixed(url, doc)) for url, doc in documents.items()}
    leaves = {url: doc for url, doc in shaped.items() if not _refers(doc)}
    return {url: _positive(_inline(doc, url, leaves)) for url, doc in shaped.items()}


def _cpe_fixed(url: str, document: dict[str, Any]) -> Any:
    if not url.endswith("/software.json"):
        return document
    return _replaced_in_strings(document, _CPE_DOLLARS, "#\\$%")


def _replaced_in_strings(node: Any, old: str, new: str) -> Any:
    if isinstance(node, str):
        return node.replace(old, new)
    if isinstance(node, list):
        return [_replaced_in_strings(item, old, new) for item in node]
    if isinstance(node, dict):
        return {key: _replaced_in_strings(value, old, new) for key, value in node.items()}
    return node


def _rewritten(node: Any) -> Any:
    """The same schema in the shape fastjsonschema compiles to fast, correct code."""
    if isinstance(node, list):
        return [_rewritten(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _rewritten(value) for key, value in node.items()}
    if "$schema" in node:
        node["$schema"] = "http://json-schema.org/draft-07/schema#"
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if isinstance(node.get("allOf"), list):
        # `created`/`modified` "MUST be precise to the nearest millisecond"; the stix2
        # library (whose decisions the fast path must repeat) accepts whole seconds too, so
        # the schema's extra millisecond pattern would only send such objects the slow way.
        node["allOf"] = [
            part
            for part in node["allOf"]
            if not (isinstance(part, dict) and part.get("title") == "timestamp_millis")
        ]
        if not node["allOf"]:
            del node["allOf"]
    branches = node.get("anyOf")
    if isinstance(branches, list) and _only_types_differ(node, branches):
        del node["anyOf"]
        node["type"] = [branch["type"] for branch in branches]
        for branch in branches:
            node.update({k: v for k, v in branch.items() if k != "type"})
    negated = node.get("not")
    if isinstance(negated, dict) and _forbids_keys(negated):
        del node["not"]
        forbidden = {branch["required"][0]: False for branch in negated["anyOf"]}
        node["allOf"] = [*node.get("allOf", []), {"properties": forbidden}]
    return node


def _only_types_differ(node: Mapping[str, Any], branches: list[Any]) -> bool:
    if "type" in node:
        return False  # merging would replace the node's own type
    types = [b.get("type") if isinstance(b, dict) else None for b in branches]
    if not all(isinstance(t, str) and t in _TYPES for t in types) or len(set(types)) < len(types):
        return False
    merged: set[str] = {"type"}
    for branch in branches:
        keywords = set(branch) - {"type"}
        if keywords & (merged | set(node)):
            return False
        if any(
            k not in _CONSTRAINS or _CONSTRAINS[k] & set(types) != {branch["type"]}
            for k in keywords
        ):
            return False
        merged |= keywords
    return True


def _forbids_keys(negated: Mapping[str, Any]) -> bool:
    branches = negated.get("anyOf")
    return (
        list(negated) == ["anyOf"]
        and isinstance(branches, list)
        and all(
            isinstance(b, dict) and list(b) == ["required"] and len(b["required"]) == 1
            for b in branches
        )
    )


def _positive(node: Any) -> Any:
    """`node` with `not` over strings written as a negative lookahead `pattern`.

    `not` compiles to "validate, expect an exception": one raised and caught per valid
    object. Where the value must be a string anyway (`type: string` beside it, or in a
    sibling branch of an allOf), "no match of P" is the pattern `^(?![\\s\\S]*?(?:P))`, and
    "none of these strings" is `^(?!(?:a|b)$)`.
    """
    if isinstance(node, list):
        return [_positive(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _positive(value) for key, value in node.items()}
    negated = node.get("not")
    if node.get("type") == "string" and isinstance(negated, dict):
        lookahead = _lookahead(negated)
        if lookahead is not None:
            del node["not"]
            node["allOf"] = [*node.get("allOf", []), {"pattern": lookahead}]
    branches = node.get("allOf")
    if isinstance(branches, list) and any(
        isinstance(b, dict) and b.get("type") == "string" for b in branches
    ):
        node["allOf"] = [_positive_branch(b) for b in branches]
    return node


def _positive_branch(branch: Any) -> Any:
    if isinstance(branch, dict) and set(branch) <= {"not", "description"}:
        lookahead = _lookahead(branch.get("not"))
        if lookahead is not None:
            return {"pattern": lookahead}
    return branch


def _lookahead(negated: Any) -> str | None:
    """A pattern that a string matches exactly when `negated` does not accept it, or None."""
    if not isinstance(negated, dict):
        return None
    if list(negated) == ["pattern"] and not re.search(r"\\[0-9]", negated["pattern"]):
        return f"^(?![\\s\\S]*?(?:{negated['pattern']}))"
    values = negated.get("enum")
    if (
        list(negated) == ["enum"]
        and isinstance(values, list)
        and all(isinstance(v, str) for v in values)
    ):
        return f"^(?!(?:{'|'.join(re.escape(v) for v in values)})$)"
    return None


def _refers(node: Any) -> bool:
    if isinstance(node, dict):
        return "$ref" in node or any(_refers(v) for v in node.values())
    return isinstance(node, list) and any(_refers(v) for v in node)


def _inline(node: Any, base: str, leaves: Mapping[str, dict[str, Any]]) -> Any:
    """`node` with each `$ref` to a schema that refers to nothing replaced by that schema.

    A `$ref` to another document compiles to a call that formats the instance's path for
    every list item (`object_refs[17]`), even when nothing fails; inlined, it does not. The
    `$ref`s here have only `description` beside them, which draft-07 ignores anyway.
    """
    if isinstance(node, list):
        return [_inline(item, base, leaves) for item in node]
    if not isinstance(node, dict):
        return node
    target = urljoin(base, node["$ref"]) if isinstance(node.get("$ref"), str) else None
    if target is not None and target in leaves:
        return {k: v for k, v in leaves[target].items() if k not in ("$id", "$schema")}
    return {key: _inline(value, base, leaves) for key, value in node.items()}
