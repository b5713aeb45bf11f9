"""TAXII 2.1 objects (sections 5.3-5.8): readers get what routing granted; members submit.


A submission is answered 202 only after it is durable on the bus; every object in it is
then reported on the status resource as a success or a failure with its reason.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import web

from hub.api import ratelimit
from hub.api.access import permitted_collection, permitted_reading
from hub.api.bodies import read_body
from hub.api.intake import accept, intake_keys
from hub.api.keys import (
    ACCOUNT,
    INTAKE_GATE,
    METRICS,
    SETTINGS,
    VIEW,
)
from hub.api.media import require_taxii_accept, require_taxii_content, taxii_response
from hub.api.taxii.paging import date_added_headers, more_and_next
from hub.api.taxii.query import ONE_OBJECT, VERSIONS, object_query
from hub.errors import (
    HubError,
    NotFound,
    PayloadTooLarge,
)
from hub.stix.envelope import envelope_objects, parse_body
from hub.store.view import Entry, Page

log = logging.getLogger(__name__)


def _envelope(page: Page, epoch: str) -> web.Response:
    # The stored JSON is spliced in as is, in one join: no parse and re-serialise per
    # object, and no copy of the page beyond the body itself.
    head = orjson.dumps(more_and_next(page, epoch))[:-1]
    parts = [head, b',"objects":[']
    for n, obj in enumerate(page.objects):
        parts += (b",", obj) if n else (obj,)
    parts.append(b"]}")
    return taxii_response(b"".join(parts), headers=date_added_headers(page))


async def _read_page(request: web.Request, **query: Any) -> tuple[Page, str]:
    require_taxii_accept(request)
    scope, collection = await permitted_reading(request)
    settings, view = request.app[SETTINGS], request.app[VIEW]
    page = await view.objects(
        object_query(
            request,
            collection.alias,
            settings.page_limit,
            view.epoch,
            scope.reader,
            max_bytes=settings.page_bytes,
            **query,
        )
    )
    return page, view.epoch


async def get_objects(request: web.Request) -> web.Response:
    """Get Objects (5.3): an envelope of the objects the filters select, paged."""
    return _envelope(*await _read_page(request))


async def get_object(request: web.Request) -> web.Response:
    """Get an Object (5.5): its versions the filters select (the latest by default)."""
    object_id = request.match_info["object"]
    page, epoch = await _read_page(request, allowed=ONE_OBJECT, object_id=object_id)
    if not page.entries and not page.more and "next" not in request.query:
        raise NotFound(f"no object {object_id!r} in this collection matches")
    return _envelope(page, epoch)


async def get_versions(request: web.Request) -> web.Response:
    """Get Object Versions (5.8): every version of one object, oldest first, paged."""
    object_id = request.match_info["object"]
    page, epoch = await _read_page(
        request,
        with_json=False,
        allowed=VERSIONS,
        object_id=object_id,
        default_versions=("all",),
    )
    if not page.entries and not page.more and "next" not in request.query:
        raise NotFound(f"no object {object_id!r} in this collection")
    body = {**more_and_next(page, epoch), "versions": [version_of(e) for e in page.entries]}
    return taxii_response(body, headers=date_added_headers(page))


async def get_manifest(request: web.Request) -> web.Response:
    """Get Object Manifests (5.6): id, date added, version and media type per object."""
    page, epoch = await _read_page(request, with_json=False)
    body = {
        **more_and_next(page, epoch),
        "objects": [
            {
                "id": e.id,
                "date_added": e.date_added,
                "version": version_of(e),
                "media_type": f"application/stix+json;version={e.spec_version}",
            }
            for e in page.entries
        ],
    }
    return taxii_response(body, headers=date_added_headers(page))


def version_of(entry: Entry) -> str:
    # Objects without `modified` or `created` (SCOs) have one version: when it was added.
    return entry.version or entry.date_added


async def add_objects(request: web.Request) -> web.Response:
    """Take a submission; count it per member as accepted (202) or refused (a 4xx/503)."""
    submissions = request.app[METRICS].submissions
    try:
        response = await _add_objects(request)
    except HubError as exc:
        account = request.get(ACCOUNT)
        member = account.member if account is not None and account.member else "unknown"
        submissions.labels(member, "refused" if exc.status < 500 else "unavailable").inc()
        raise
    submissions.labels(request[ACCOUNT].member or "unknown", "accepted").inc()
    return response


async def _add_objects(request: web.Request) -> web.Response:
    require_taxii_accept(request)
    account, _ = await permitted_collection(request, "write")
    ratelimit.admit(request, account)  # 429 while the member is over its rate_limits
    require_taxii_content(request)
    assert account.member is not None  # can_write() holds only for member accounts
    request.app[INTAKE_GATE].check(account.member)
    settings = request.app[SETTINGS]
    if (request.content_length or 0) > settings.max_content_length:
        raise PayloadTooLarge(
            f"the body is {request.content_length} bytes; max_content_length is "
            f"{settings.max_content_length}"
        )
    keys = intake_keys(request)
    limits = settings.federation.hub.limits
    body = parse_body(await read_body(request), limits.max_depth)
    objects = envelope_objects(body, limits.max_objects)
    await ratelimit.charge(request, account, len(objects))
    return await accept(request, account, objects, keys)
