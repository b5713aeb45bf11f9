"""The hub's English wording in the STIX content it writes itself (alerts, rules).

STIX content is one language for every recipient; readers' languages are the console's and
the notifications' business (message catalogues).
"""

from __future__ import annotations


def counted(number: int, one: str, many: str) -> str:
    """`number` with its noun: "1 country", "3 countries"."""
    return f"{number} {one if number == 1 else many}"
