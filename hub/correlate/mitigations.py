"""Mitigations shared on an alert: a STIX `course-of-action` and one `mitigates` relationship
from it to each indicator or malware (or attack pattern, tool, vulnerability) the alert
refers to.

Unlike a response, a mitigation is shared: it is an ordinary submission of its sender's and
goes where the sender's sharing rules send content of its TLP, never further, so a recipient
of the alert that those rules leave out does not receive it. The alert ids are per recipient
(hub.correlate.alerts), so the relationships point at the reports the alert refers to, which
every recipient holds under the same ids; an alert's page finds a mitigation through them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from hub.stix import timestamps

# What STIX 2.1 lets a course-of-action mitigate (section 4.3, its relationships).
MITIGABLE = ("indicator", "malware", "attack-pattern", "tool", "vulnerability")
MITIGATES = "mitigates"
MAX_TARGETS = 50  # relationships written for one mitigation: an alert's refs are bounded too


def is_mitigation(obj: Mapping[str, Any]) -> bool:
    """Whether `obj` is a `mitigates` relationship from a course-of-action."""
    return (
        obj.get("type") == "relationship"
        and obj.get("relationship_type") == MITIGATES
        and str(obj.get("source_ref", "")).startswith("course-of-action--")
    )


def mitigation_objects(
    name: str,
    description: str | None,
    targets: Iterable[str],
    author: str,
    marking: str,
) -> list[dict[str, Any]]:
    """The course-of-action by the member identity `author` and its `mitigates`
    relationships to `targets`, all under `marking` (unsigned, as a member submits them)."""
    now = timestamps.rfc3339_now()
    common = {
        "spec_version": "2.1",
        "created": now,
        "modified": now,
        "created_by_ref": author,
        "object_marking_refs": [marking],
    }
    action: dict[str, Any] = {
        "type": "course-of-action",
        "id": f"course-of-action--{uuid.uuid4()}",
        "name": name,
        **common,
    }
    if description:
        action["description"] = description
    relationships = [
        {
            "type": "relationship",
            "id": f"relationship--{uuid.uuid4()}",
            "relationship_type": MITIGATES,
            "source_ref": action["id"],
            "target_ref": target,
            **common,
        }
        for target in targets
    ]
    return [action, *relationships]
