"""What every paged TAXII answer shares: `more`, `next`, and the date-added headers."""

from __future__ import annotations

from hub.api.taxii.query import encode_cursor
from hub.store.view import Page


def date_added_headers(page: Page) -> dict[str, str]:
    """X-TAXII-Date-Added-First/-Last (section 3.5.2) for the objects of this page."""
    if page.first_added is None:
        return {}
    return {
        "X-TAXII-Date-Added-First": page.first_added,
        "X-TAXII-Date-Added-Last": page.last_added or page.first_added,
    }


def more_and_next(page: Page, epoch: str) -> dict[str, object]:
    """`more`, and `next` (an opaque cursor) when there is more."""
    if page.more:
        return {"more": True, "next": encode_cursor(epoch, page.last_seq)}
    return {"more": False}
