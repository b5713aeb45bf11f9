"""OASIS's STIX 2.1 JSON Schemas (hub/stix/oasis_schemas), compiled by fastjsonschema.

One schema per object type: the whole-bundle schema's oneOf lacks incident, grouping,
location, note and opinion, so it refuses valid bundles. The schemas `$ref` each other by
remote URL; every such URL is served from the shipped files and any other fetch is refused,
so validation never touches the network. Each type compiles on first use (~50 ms each,
~2 s for all of them) so that a hub starts without paying for types it never sees.

The schemas are rewritten in memory before compiling, each time to the same meaning
(`hub.stix.schema_rewrites` says which and why): fastjsonschema gets some constructs wrong
and compiles others to code that raises an exception per valid object. `format` is not
asserted (an annotation in draft 2020-12) and defaults are never written into objects.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import fastjsonschema

from hub.stix import schema_rewrites

BASE_URL = "http://raw.githubusercontent.com/oasis-open/cti-stix2-json-schemas/stix2.1/schemas/"
_FOLDERS = ("sdos", "sros", "observables", "common")
_NOT_OBJECTS = frozenset(
    {
        "binary",
        "bundle",
        "core",
        "cyber-observable-core",
        "dictionary",
        "extension",
        "external-reference",
        "granular-marking",
        "hashes-type",
        "hex",
        "identifier",
        "kill-chain-phase",
        "properties",
        "timestamp",
        "url-regex",
    }
)
Validator = Callable[[Any], Any]


class UnknownSchema(Exception):
    """A schema referred to a URL that is not one of the shipped STIX schemas."""


class SchemasMissing(RuntimeError):
    """The hub's copy of the STIX 2.1 schemas is not where the package puts it."""


def schema_folder() -> Path:
    """Where the hub's copy of OASIS's schemas is (package data, see its README)."""
    return Path(str(resources.files("hub.stix").joinpath("oasis_schemas")))


def check_shipped() -> int:
    """Load every schema once; how many. SchemasMissing if the package lacks them: the fast
    validation path then cannot run, and the hub must not start on the slow one unseen."""
    count = len(_store())
    if not count:
        raise SchemasMissing(
            f"the STIX 2.1 JSON Schemas are missing from {schema_folder()} (package data of "
            "hub.stix): reinstall cirt-hub"
        )
    return count


def _documents() -> Iterator[tuple[str, dict[str, Any]]]:
    root = schema_folder()
    for folder in _FOLDERS:
        for entry in sorted((root / folder).glob("*.json")):
            document = json.loads(entry.read_text(encoding="utf-8"))
            yield f"{BASE_URL}{folder}/{entry.name}", document


@functools.cache
def _store() -> dict[str, dict[str, Any]]:
    return schema_rewrites.rewritten(dict(_documents()))


def _local(url: str) -> dict[str, Any]:
    """fastjsonschema's handler for remote `$ref`s: the shipped file, or a refusal."""
    document = _store().get(url)
    if document is None:
        raise UnknownSchema(f"no shipped STIX schema at {url}; schemas are never fetched")
    return document


def schema_url(kind: str) -> str | None:
    """The URL (the `$id`) of the schema for objects of type `kind`, if OASIS wrote one."""
    if kind in _NOT_OBJECTS:
        return None
    for folder in _FOLDERS:
        url = f"{BASE_URL}{folder}/{kind}.json"
        if url in _store():
            return url
    return None


@functools.cache
def validator(kind: str) -> Validator | None:
    """The compiled schema for objects of type `kind` (compiled once, on first use)."""
    url = schema_url(kind)
    if url is None:
        return None
    check = fastjsonschema.compile(
        _store()[url],
        handlers={"http": _local, "https": _local},
        use_default=False,
        use_formats=False,
        detailed_exceptions=False,
    )
    # patternProperties search every property name of every object against each pattern;
    # the names are few and recur, so those searches are remembered (~10% of the time here).
    # REGEX_PATTERNS is the generated code's table of compiled patterns, one per compile.
    compiled = check.__globals__.get("REGEX_PATTERNS")
    if isinstance(compiled, dict):
        for source in _name_patterns() & compiled.keys():
            compiled[source] = _Remembered(compiled[source])
    return check


class _Remembered:
    """A compiled regex whose `search` results are remembered (for property names)."""

    def __init__(self, regex: re.Pattern[str]) -> None:
        self.search = functools.lru_cache(maxsize=4096)(regex.search)


@functools.cache
def _name_patterns() -> frozenset[str]:
    found: set[str] = set()

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            names = node.get("patternProperties")
            if isinstance(names, dict):
                found.update(names)
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(list(_store().values()))
    return frozenset(found)


def conforms(obj: Mapping[str, Any]) -> bool | None:
    """Whether `obj` is valid against its type's schema; None when its type has none."""
    check = validator(str(obj.get("type")))
    if check is None:
        return None
    try:
        check(obj)
    except fastjsonschema.JsonSchemaException:
        return False
    return True
