"""What the signing tests share: an independent JOSE implementation (joserfc) standing in
for a CIRT's own tooling, and `cirt-hub verify` run as a user runs it."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import orjson
import rfc8785
from joserfc import jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import KeySet, OKPKey
from joserfc.jws import JWSRegistry
from joserfc.registry import HeaderParameter

EXTENSION_ID = "extension-definition--d48c7d39-99e9-432b-b5db-b86b19be051f"
CLI = [sys.executable, "-m", "hub"]


def basic_auth(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def get_json(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, response.content_type, await response.json(content_type=None)


def registry() -> JWSRegistry:
    """joserfc, told about the hub's `provenance` header and allowed large payloads."""
    reg = JWSRegistry(
        header_registry={"provenance": HeaderParameter("cirt-hub provenance", lambda v: None)},
        algorithms=["EdDSA", "Ed25519"],
    )
    reg.max_payload_length = 64 * 1024 * 1024
    return reg


@contextmanager
def eddsa_allowed() -> Iterator[None]:
    # joserfc flags the alg name "EdDSA" as deprecated by RFC 9864 (which prefers "Ed25519");
    # the hub's contract names EdDSA, and the algorithm is the same Ed25519.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        yield


def canonical_without_extension(obj: dict[str, Any]) -> bytes:
    """The signed payload, computed from the contract alone (no hub code)."""
    body = dict(obj)
    extensions = dict(body.pop("extensions", {}))
    extensions.pop(EXTENSION_ID, None)
    if extensions:
        body["extensions"] = extensions
    return rfc8785.dumps(body)


def new_member_key(kid: str) -> OKPKey:
    return OKPKey.generate_key("Ed25519", parameters={"kid": kid})


def public_jwk(key: OKPKey) -> dict[str, str]:
    return {**key.as_dict(private=False), "kid": key.kid}


def detached_sign(payload: bytes, key: OKPKey, alg: str = "EdDSA") -> str:
    """A detached compact JWS of `payload` (RFC 7515 Appendix F), made with joserfc."""
    with eddsa_allowed():
        token = jws.serialize_compact(
            {"alg": alg, "kid": key.kid}, payload, key, registry=registry()
        )
    header, _, signature = token.split(".")
    return f"{header}..{signature}"


def member_sign(obj: dict[str, Any], key: OKPKey, alg: str = "EdDSA") -> dict[str, Any]:
    """`obj` signed the way the README tells a CIRT to, with joserfc."""
    detached = detached_sign(canonical_without_extension(obj), key, alg)
    ext = {"extension_type": "property-extension", "member_signature": detached}
    return {**obj, "extensions": {**obj.get("extensions", {}), EXTENSION_ID: ext}}


def joserfc_verify(detached: str, payload: bytes, keys: KeySet) -> dict[str, Any]:
    """The protected header of a valid detached JWS; raises if joserfc finds it invalid."""
    with eddsa_allowed():
        result = jws.deserialize_compact(detached, keys, registry=registry(), payload=payload)
    return dict(result.headers())


async def run_verify(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`cirt-hub verify ARGS` in a subprocess, off the loop (the hub under test shares it)."""
    return await asyncio.to_thread(
        subprocess.run,
        [*CLI, "verify", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def verdicts(result: subprocess.CompletedProcess) -> list[dict[str, Any]]:
    """The per-object lines of `cirt-hub verify --json`."""
    return [orjson.loads(line) for line in result.stdout.splitlines() if line.strip()]
