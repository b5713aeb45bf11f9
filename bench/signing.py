"""How many objects per second does one core sign and verify, against the bare Ed25519 ceiling?

    python -m bench.signing [--bundle FILE] [--passes 3]

Workload: a real bundle (default: MITRE ATT&CK for ICS 18.1 from the shared test data,
1,826 objects). Baselines, measured in the same run on the same objects: Ed25519 alone
signing (and verifying) each object's canonical bytes, computed beforehand — the ceiling no
signing path can beat. Then the hub's full paths: `HubSigner.sign` (drop the extension,
RFC 8785 canonical JSON, JWS header and base64url, Ed25519, attach the extension) and
`Verifier.verify` (parse the JWS, check the provenance claims, canonicalize, Ed25519).
The hub's canonicalization alone (orjson where it is byte-identical, else rfc8785), the
rfc8785 package alone and orjson's bare sorted dump are shown to say where time goes.
One thread, best of `--passes` passes over the whole bundle.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.signing.keyring import KeyStore
from hub.signing.provenance import HubSigner, Provenance, canonical
from hub.signing.verify import Verifier, hub_keys

DEFAULT_BUNDLE = "mitre-attack/ics-attack-18.1.json"
PASSPHRASE = "bench passphrase"


@dataclass(frozen=True)
class SigningKit:
    """A hub signer with a fresh key, the bare Ed25519 key under it, and a provenance."""

    signer: HubSigner
    key: Ed25519PrivateKey
    provenance: Provenance

    def sign(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """The hub's full signing path for one delivered object (`HubSigner.sign`): drop the
        extension, canonicalize, JWS over Ed25519, attach the provenance extension."""
        return self.signer.sign(obj, self.provenance)

    def verifier(self) -> Verifier:
        return Verifier(hub_keys(self.signer.store.jwks()))


@contextmanager
def signing_kit() -> Iterator[SigningKit]:
    """A SigningKit whose key store lives in a temporary directory for the block's life."""
    with tempfile.TemporaryDirectory() as tmp:
        signer = HubSigner(KeyStore(Path(tmp, "keys")), PASSPHRASE)
        signer.refresh()  # makes the key, encrypted under the passphrase as on a hub
        record = signer.store.current()
        assert record is not None
        key = signer.store.private_key(record, PASSPHRASE)
        provenance = Provenance("2026-11-23T08:00:00.000Z", "ng-cert", "0123456789abcdef")
        yield SigningKit(signer, key, provenance)


def testdata() -> Path:
    for candidate in (
        os.environ.get("CIRT_HUB_TESTDATA"),
        Path(__file__).resolve().parents[2] / "shared" / "testdata" / "stix",
        "/work/shared/testdata/stix",
    ):
        if candidate and Path(candidate, "README.md").is_file():
            return Path(candidate)
    raise SystemExit("shared STIX test data not found; set CIRT_HUB_TESTDATA or give --bundle")


def rate(objects: list[Any], work: Callable[[Any], object], passes: int) -> float:
    """Objects per second of `work` over `objects`, best of `passes`."""
    best = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        for obj in objects:
            work(obj)
        best = min(best, time.perf_counter() - start)
    return len(objects) / best


def main(bundle: Path, passes: int) -> None:
    objects: list[dict[str, Any]] = orjson.loads(bundle.read_bytes())["objects"]
    size = bundle.stat().st_size
    print(f"{bundle.name}: {len(objects):,} objects, {size / len(objects):,.0f} bytes each on avg")
    with signing_kit() as kit:
        key, public = kit.key, kit.key.public_key()
        payloads = [canonical(o) for o in objects]
        raw_signatures = [key.sign(p) for p in payloads]
        signed = [kit.sign(o) for o in objects]
        verifier = kit.verifier()
        assert all(verifier.verify(o).valid for o in signed)

        print("measuring (one thread) ...", flush=True)
        sign_ceiling = rate(payloads, key.sign, passes)
        pairs = list(zip(raw_signatures, payloads, strict=True))
        verify_ceiling = rate(pairs, lambda sp: public.verify(*sp), passes)
        rows = [
            ("sign", "Ed25519 sign of canonical bytes (ceiling)", sign_ceiling, sign_ceiling),
            ("sign", "full sign path (HubSigner.sign)", rate(
                objects, kit.sign, passes
            ), sign_ceiling),
            ("sign", "  of which: canonical() (orjson path)", rate(
                objects, canonical, passes
            ), sign_ceiling),
            ("sign", "  for scale: rfc8785 package (reference)", rate(
                objects, rfc8785.dumps, passes
            ), sign_ceiling),
            ("sign", "  for scale: orjson dump with sorted keys", rate(
                objects, lambda o: orjson.dumps(o, option=orjson.OPT_SORT_KEYS), passes
            ), sign_ceiling),
            ("verify", "Ed25519 verify of canonical bytes (ceiling)", verify_ceiling,
             verify_ceiling),
            ("verify", "full verify path (Verifier.verify)", rate(
                signed, verifier.verify, passes
            ), verify_ceiling),
        ]  # fmt: skip
    print()
    print(f"{'':<7}{'what':<46} {'objects/s':>11} {'x ceiling':>10}")
    for kind, name, value, ceiling in rows:
        print(f"{kind:<7}{name:<46} {value:>11,.0f} {value / ceiling:>10.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    main(args.bundle or testdata() / DEFAULT_BUNDLE, args.passes)
