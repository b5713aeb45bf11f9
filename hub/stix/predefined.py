"""Objects every reader gets exactly as published, unsigned: TLP definitions, the hub's extensions.

The TLP marking definitions are the specifications' own: validators compare them with the
specification, so the hub adds nothing to them (no provenance extension). The provenance and
response extension-definitions are the cirt-hub project's, the same on every hub; an
extension-definition takes no `extensions` of its own. The hub publishes them all in `public`;
a verifier accepts them by equality with these copies, not by a signature.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

EXTENSION_DEFINITION_FILE = "schemas/provenance.extension-definition.json"
RESPONSE_DEFINITION_FILE = "schemas/response.extension-definition.json"


@cache
def tlp_definitions() -> dict[str, dict[str, Any]]:
    """The nine standard TLP definitions (1.0 and 2.0) by id, as their specifications write them."""
    text = resources.files("hub.stix").joinpath("tlp_definitions.json").read_text()
    return {obj["id"]: obj for obj in json.loads(text)["definitions"]}


def _schema_file(name: str) -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(resources.files("hub").joinpath(name).read_text())
    return definition


@cache
def extension_definition() -> dict[str, Any]:
    """The STIX extension-definition of the hub's provenance extension (schemas/)."""
    return _schema_file(EXTENSION_DEFINITION_FILE)


@cache
def response_definition() -> dict[str, Any]:
    """The STIX extension-definition of responses to alerts (schemas/), so that readers of a
    response note or a named sighting can resolve the extension it carries."""
    return _schema_file(RESPONSE_DEFINITION_FILE)


def extension_definitions() -> dict[str, dict[str, Any]]:
    """The hub's own extension-definitions by id (no member may version them)."""
    return {d["id"]: d for d in (extension_definition(), response_definition())}


def predefined() -> dict[str, dict[str, Any]]:
    """Every object the hub publishes unsigned, by id."""
    return {**tlp_definitions(), **extension_definitions()}


def is_predefined(obj: object) -> bool:
    """Whether `obj` is one of them, unchanged."""
    if not isinstance(obj, Mapping):
        return False
    known = predefined().get(str(obj.get("id")))
    return known is not None and dict(obj) == known
