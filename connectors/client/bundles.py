"""What a member sends: STIX objects read from files, a folder or standard input, and cut
into requests the hub will take."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from hub.i18n.cli import say


class InputError(Exception):
    """A file that holds no usable STIX; the message names the file and where."""


@dataclass(frozen=True)
class Source:
    """The objects of one input file (or of standard input, named "-")."""

    name: str
    objects: list[dict[str, Any]]


def _objects(doc: Any, name: str) -> list[dict[str, Any]]:
    if isinstance(doc, Mapping) and isinstance(doc.get("objects"), list):
        found = doc["objects"]  # a STIX bundle or a TAXII envelope
    elif isinstance(doc, list):
        found = doc
    elif isinstance(doc, Mapping) and "type" in doc and "id" in doc:
        found = [doc]
    else:
        raise InputError(
            say("%(file)s: neither a STIX bundle, a TAXII envelope nor a STIX object", file=name)
        )
    for index, obj in enumerate(found):
        if not isinstance(obj, Mapping) or not isinstance(obj.get("id"), str):
            raise InputError(
                say(
                    "%(file)s: objects[%(index)s] is not a STIX object with an id",
                    file=name,
                    index=index,
                )
            )
    return list(found)


def parse(data: bytes, name: str) -> Source:
    """The objects in `data`; InputError names `name` and the line and column of bad JSON."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InputError(
            say(
                "%(file)s: not JSON (line %(line)s, column %(column)s): %(error)s",
                file=name,
                line=exc.lineno,
                column=exc.colno,
                error=exc.msg,
            )
        ) from exc
    return Source(name, _objects(doc, name))


def paths(inputs: list[str]) -> list[str]:
    """The files behind the command line's FILE|DIR|- arguments, folders read in name order."""
    found: list[str] = []
    for item in inputs:
        path = Path(item)
        if item == "-":
            found.append("-")
        elif path.is_dir():
            found.extend(str(p) for p in sorted(path.rglob("*.json")) if p.is_file())
        elif path.is_file():
            found.append(item)
        else:
            raise InputError(say("%(file)s: no such file or folder", file=item))
    return found


def read(name: str) -> Source:
    """One input: a file path, or "-" for standard input."""
    if name == "-":
        return parse(sys.stdin.buffer.read(), "<stdin>")
    try:
        return parse(Path(name).read_bytes(), name)
    except OSError as exc:
        raise InputError(say("%(file)s: cannot read: %(error)s", file=name, error=exc)) from exc


def version(obj: Mapping[str, Any]) -> str:
    """The version TAXII names an object by: `modified`, else `created`, else "" (SCOs)."""
    return str(obj.get("modified") or obj.get("created") or "")


def envelope(objects: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"objects": objects})


def chunks(
    objects: list[dict[str, Any]], max_bytes: int, max_objects: int
) -> Iterator[list[dict[str, Any]]]:
    """`objects` cut into envelopes of at most `max_bytes` (as JSON) and `max_objects` each.

    An object that alone is larger than `max_bytes` still goes in a request of its own: the
    hub then refuses it with a 413 that names it, which says more than a client-side skip.
    """
    overhead = len(envelope([]))
    batch: list[dict[str, Any]] = []
    size = overhead
    for obj in objects:
        cost = len(orjson.dumps(obj)) + 1  # and its comma
        if batch and (size + cost > max_bytes or len(batch) >= max_objects):
            yield batch
            batch, size = [], overhead
        batch.append(obj)
        size += cost
    if batch:
        yield batch


def bundle(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """A STIX 2.1 bundle of `objects` (bundles have no spec_version in 2.1)."""
    return {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects}
