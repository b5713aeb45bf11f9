"""What the view tests feed the view: its topics and an object of theirs."""

from __future__ import annotations

FEED = "cirt-hub.feed.region-west-africa"
STATUS = "cirt-hub.status"


def indicator(obj_id: str, modified: str) -> dict:
    """A TLP-less STIX indicator: the smallest object a feed carries."""
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": obj_id,
        "created": "2026-01-01T00:00:00Z",
        "modified": modified,
        "pattern": "[ipv4-addr:value = '203.0.113.9']",
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
    }
