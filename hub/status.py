"""TAXII 2.1 status resources (section 4.3): what became of each object of a request."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def _detail(
    obj_id: str, version: str | None, received: str, message: str | None = None
) -> dict[str, Any]:
    detail: dict[str, Any] = {"id": obj_id, "version": version or received}
    if message:
        detail["message"] = message
    return detail


def pending_status(
    status_id: str, received: str, objects: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """The status of a request just accepted: every object pending."""
    pendings = [
        _detail(str(o.get("id")), o.get("modified") or o.get("created"), received) for o in objects
    ]
    return {
        "id": status_id,
        "status": "pending",
        "request_timestamp": received,
        "total_count": len(pendings),
        "success_count": 0,
        "successes": [],
        "failure_count": 0,
        "failures": [],
        "pending_count": len(pendings),
        "pendings": pendings,
    }


def complete_status(
    status_id: str,
    received: str,
    outcomes: Iterable[tuple[str, str | None, str | None]],
) -> dict[str, Any]:
    """The final status from (id, version, refusal message or None) per object."""
    successes, failures = [], []
    for obj_id, version, refusal in outcomes:
        if refusal is None:
            successes.append(_detail(obj_id, version, received))
        else:
            failures.append(_detail(obj_id, version, received, refusal))
    return {
        "id": status_id,
        "status": "complete",
        "request_timestamp": received,
        "total_count": len(successes) + len(failures),
        "success_count": len(successes),
        "successes": successes,
        "failure_count": len(failures),
        "failures": failures,
        "pending_count": 0,
        "pendings": [],
    }
