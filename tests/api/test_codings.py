"""Content codings: answers in the coding the client prefers (zstd, gzip, deflate or none),
request bodies in zstd as well as gzip, and a decompression bomb in either refused with a
4xx while the hub's memory stays bounded."""

from __future__ import annotations

import asyncio
import base64
import gzip
import time
import zlib
from dataclasses import replace
from pathlib import Path

import aiohttp
import orjson
import pytest
from backports.zstd import CompressionParameter, ZstdCompressor
from backports.zstd import compress as zstd_compress
from backports.zstd import decompress as zstd_decompress

from hub.federation import Federation, Limits
from tests.hubs import RunningHub, read_all, running_hub
from tests.stixdata import shared_objects

TAXII = "application/taxii+json;version=2.1"
LIMIT = 1024 * 1024  # max_content_length of the bomb tests' hub
EMBEDDED = pytest.mark.parametrize("bus_url", ["embedded"], indirect=True)


def basic(hub: RunningHub, username: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{hub.password(username)}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Accept": TAXII}


async def exchange(
    method: str, url: str, headers: dict[str, str], data: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request as sent (no Accept-Encoding unless given); the answer's bytes as received."""
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.request(
            method, url, headers=headers, data=data, skip_auto_headers=["Accept-Encoding"]
        ) as response,
    ):
        return response.status, dict(response.headers), await response.read()


def decoded(coding: str | None, wire: bytes) -> bytes:
    if coding == "zstd":
        return zstd_decompress(wire)
    if coding == "gzip":
        return gzip.decompress(wire)
    if coding == "deflate":
        return zlib.decompress(wire)
    return wire


@EMBEDDED
@pytest.mark.parametrize(
    ("accept_encoding", "coding"),
    [
        ("zstd", "zstd"),
        ("gzip, deflate, zstd", "zstd"),  # aiohttp's client with zstd: equals, zstd wins
        ("*", "zstd"),
        ("gzip", "gzip"),
        ("x-gzip", "gzip"),
        ("deflate", "deflate"),
        ("zstd;q=0.5, gzip", "gzip"),
        ("zstd;q=0, *", "gzip"),
        ("gzip;q=0", None),
        ("gzip;q=0.5, identity", None),
        ("identity", None),
        ("br", None),
        (None, None),
    ],
)
async def test_an_answer_comes_in_the_coding_the_client_prefers(
    hub: RunningHub, accept_encoding: str | None, coding: str | None
) -> None:
    url = hub.collection_url("public") + "objects/"
    headers = basic(hub, "ke-cirt-read")
    for _ in range(100):  # the hub publishes its definitions in `public` as it starts
        status, _, plain = await exchange("GET", url, headers)
        if len(plain) > 1024:  # large enough to be compressed
            break
        await asyncio.sleep(0.1)
    assert status == 200 and len(plain) > 1024, plain
    if accept_encoding is not None:
        headers["Accept-Encoding"] = accept_encoding
    status, answer, wire = await exchange("GET", url, headers)
    assert status == 200
    assert answer.get("Content-Encoding") == coding
    assert orjson.loads(decoded(coding, wire)) == orjson.loads(plain)
    assert answer["Vary"] == "Accept-Encoding"
    # What the hub decodes in request bodies, for clients choosing how to send theirs.
    assert answer["Accept-Encoding"] == "zstd, gzip, deflate"


@EMBEDDED
async def test_a_zstd_submission_is_accepted_and_its_objects_are_readable(
    hub: RunningHub,
) -> None:
    objects = shared_objects("mitre-attack/ics-attack-18.1.json")
    attack = [o for o in objects if len(orjson.dumps(o)) < 8000][:50]
    body = orjson.dumps({"objects": attack})
    headers = {
        **basic(hub, "ke-cirt-submit"),
        "Content-Type": TAXII,
        "Content-Encoding": "zstd",
    }
    sent = zstd_compress(body, 12)
    status, _, answer = await exchange(
        "POST", hub.collection_url("inbox") + "objects/", headers, sent
    )
    assert status == 202, answer
    status_url = f"{hub.api_root}status/{orjson.loads(answer)['id']}/?wait=10"
    for _ in range(20):
        status, _, answer = await exchange("GET", status_url, basic(hub, "ke-cirt-submit"))
        found = orjson.loads(answer)
        if found["status"] == "complete":
            break
    assert found["status"] == "complete" and found["success_count"] == len(attack), found
    readable = await read_all(hub, "member-ke-cirt", "ke-cirt-read")
    assert {o["id"] for o in attack} <= {o["id"] for o in readable}


@EMBEDDED
async def test_an_encoded_form_is_refused_rather_than_misread(hub: RunningHub) -> None:
    form = gzip.compress(b"username=ke-cirt-operator&password=x")
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Encoding": "gzip",
        "Origin": hub.base_url,
    }
    status, _, answer = await exchange("POST", hub.base_url + "/dashboard/login", headers, form)
    assert status == 415
    assert "accepted on JSON bodies only" in orjson.loads(answer)["description"]


def zstd_bomb(decoded: int, window_log: int, declared: int | None = None) -> bytes:
    """A zstd frame with a window of 2**window_log bytes (and a declared content size) that
    decodes to `decoded` bytes of one JSON string: a few KB on the wire."""
    compressor = ZstdCompressor(
        options={
            CompressionParameter.compression_level: 1,
            CompressionParameter.window_log: window_log,
        }
    )
    if declared is not None:
        compressor.set_pledged_input_size(declared)
    parts = [compressor.compress(b'{"objects": [{"type": "note", "content": "')]
    block = b"x" * (1 << 20)
    parts += [compressor.compress(block) for _ in range(decoded >> 20)]
    # A frame that declared more than it holds never ends: the rest "is still to come".
    mode = ZstdCompressor.FLUSH_BLOCK if declared else ZstdCompressor.FLUSH_FRAME
    parts.append(compressor.flush(mode))
    return b"".join(parts)


def gzip_bomb(decoded: int) -> bytes:
    packer = zlib.compressobj(9, wbits=16 + zlib.MAX_WBITS)
    block = b"x" * (1 << 20)
    parts = [packer.compress(b'{"objects": [{"type": "note", "content": "')]
    parts += [packer.compress(block) for _ in range(decoded >> 20)]
    return b"".join([*parts, packer.flush()])


def memory_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/self/status")


@pytest.fixture
async def small_hub(tmp_path: Path, demo_secrets: Path):
    """A hub taking bodies of at most LIMIT bytes (1 MB)."""

    def small(federation: Federation) -> Federation:
        return replace(federation, hub=replace(federation.hub, limits=Limits(LIMIT)))

    async with running_hub("embedded", tmp_path / "hub", demo_secrets, adjust=small) as hub:
        yield hub


@pytest.mark.parametrize(
    ("encoding", "bomb", "expected", "words"),
    [
        # 128 MB from a frame with the 8 MB window RFC 9659 allows
        ("zstd", lambda: zstd_bomb(128 << 20, 23), 413, "once decoded"),
        # the same in a frame declaring 1 TB, whose window is at most 8 MB
        ("zstd", lambda: zstd_bomb(128 << 20, 23, declared=1 << 40), 413, "once decoded"),
        # a frame asking for a 128 MB window (what aiohttp's own decoder allows) and 1 TB
        ("zstd", lambda: zstd_bomb(128 << 20, 27, declared=1 << 40), 400, "at most 8 MB"),
        ("zstd", lambda: zstd_bomb(128 << 20, 27), 400, "at most 8 MB"),
        ("gzip", lambda: gzip_bomb(128 << 20), 413, "once decoded"),
    ],
)
async def test_a_decompression_bomb_is_refused_within_bounded_memory(
    small_hub: RunningHub, encoding: str, bomb, expected: int, words: str
) -> None:
    body = bomb()
    assert len(body) < 200_000  # what a hostile member sends: little
    headers = {
        **basic(small_hub, "ke-cirt-submit"),
        "Content-Type": TAXII,
        "Content-Encoding": encoding,
    }
    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from now
    before = memory_kb("VmRSS")
    started = time.monotonic()
    status, answer, wire = await exchange(
        "POST", small_hub.collection_url("inbox") + "objects/", headers, body
    )
    growth = memory_kb("VmHWM") - before
    error = orjson.loads(wire)
    assert status == expected, error
    assert answer["Content-Type"] == TAXII and error["http_status"] == str(expected)
    assert words in error["description"], error
    # The decoded limit (1 MB), a zstd window (8 MB) and slack; never what the frame asks.
    assert growth < 16 * 1024, f"the hub's memory grew by {growth} KB"
    assert time.monotonic() - started < 5
    # The hub goes on serving.
    status, _, _ = await exchange(
        "GET", small_hub.base_url + "/taxii2/", basic(small_hub, "ke-cirt-read")
    )
    assert status == 200
