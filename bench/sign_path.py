"""What the Sign stage costs per delivered object: main's path before issue 21's signing step
and today's, in the same run.

    python -m bench.sign_path [--reports 400] [--rounds 7] [--seed 1]

Workload: the benchmark's incident reports (bench/workload.py: 1-200 objects, the six demo
members, every TLP level), routed once by the real stages before Sign (decode, authenticate,
validate, provenance, ownership, mark, route, confine responses, observe) under the
benchmark's federation (bench/nodes.py: every TLP level of every member reaches someone).
Then the Sign stage alone over those submissions, one thread: `MainSign` (the stage as it
was, kept here for this comparison and for the equality test in
tests/signing/test_signed_once.py) and `hub.pipeline.sign.Sign`, passes alternating, best of
`--rounds` each in CPU time of the thread (other work on the cores does not count).
Printed: µs per delivered object (one object in one collection) and per accepted object,
the ratio new/old, and bare Ed25519 over the same signatures' inputs (the floor). The new stage also
with cryptography's Ed25519 rather than libsodium's (PyNaCl): what that choice gains.
"""

from __future__ import annotations

import argparse
import base64
import gc
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.nodes import write_federation
from bench.workload import Generator
from hub.bus import Record
from hub.bus.url import open_bus
from hub.correlate.observe import Observe
from hub.correlate.responses import ConfineResponses
from hub.federation import Federation, load_federation
from hub.model import Item, RefusalCode, Stage, Submission
from hub.pipeline.authenticate import Authenticate
from hub.pipeline.compose import compose
from hub.pipeline.decode import Decode
from hub.pipeline.history import DeliveryHistory
from hub.pipeline.mark import Mark
from hub.pipeline.ownership import Ownership
from hub.pipeline.provenance import Provenance as ProvenanceStage
from hub.pipeline.route import Route
from hub.pipeline.sign import Sign, _as_published
from hub.pipeline.validate import Validate
from hub.policy.entitlement import Policy
from hub.records import encode_intake
from hub.signing.intake import IntakeKeys, new_intake_key
from hub.signing.jws import HUB_ALG, Signs, SodiumKey, b64url
from hub.signing.keyring import KeyStore
from hub.signing.provenance import (
    HEADER_CLAIMS,
    CanonicalizationError,
    HubSigner,
    Provenance,
    Sealer,
    canonical,
    orjson_is_canonical,
    with_extension,
    without_extension,
)
from hub.stix.markings import tlp_by_marking_id
from hub.topics import Topics

PASSPHRASE = "bench passphrase"


def _scan(path: Path) -> tuple[tuple[str, int, int], ...]:
    """What KeyStore did on every read before: list the keys dir and stat each key file."""
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return ()
    return tuple(
        sorted(
            (e.name, e.inode(), e.stat().st_mtime_ns)
            for e in entries
            if e.name.endswith(".json") and e.is_file()
        )
    )


@dataclass(frozen=True)
class MainSign:
    """The Sign stage as it was on main before issue 21's signing step: each delivery
    canonicalized, the protected header built and encoded per signature, cryptography's
    Ed25519, the keys dir listed per submission. Its signatures are the reference the new
    stage must equal. `key` is the private key of the signer's current key."""

    signer: HubSigner
    federation: Federation
    key: Ed25519PrivateKey

    def __call__(self, submission: Submission) -> Submission:
        _scan(self.signer.store.path)
        kid = self.signer.refresh()
        sender = next((m for m in self.federation.members if m.id == submission.member), None)
        anonymous = sender is not None and sender.sharing.get("anonymous") is True
        policy_version = submission.policy_version or self.federation.policy_version

        def seal(item: Item) -> Item:
            if item.obj.get("type") == "marking-definition" and item.id in tlp_by_marking_id():
                return _as_published(item)
            try:
                original = without_extension(item.obj)
                plain = orjson_is_canonical(original)
                accepted = canonical(original, plain=plain)
                sealed: dict[tuple[bytes, bool], dict[str, Any]] = {}
                deliveries = []
                for delivery in item.deliveries:
                    body = without_extension(delivery.obj)
                    payload = canonical(body, plain=plain)
                    hidden = anonymous or delivery.anonymous
                    key = (payload, hidden)
                    if key not in sealed:
                        sealed[key] = _main_attach(
                            body,
                            Sign._provenance(
                                item, payload, accepted, hidden, submission, policy_version
                            ),
                            self.key,
                            kid,
                            payload,
                        )
                    deliveries.append(replace(delivery, obj=sealed[key]))
            except CanonicalizationError as exc:
                where = f"objects[{item.index}] ({item.id or 'no id'})"
                return item.refuse(
                    RefusalCode.INVALID_STIX, f"{where}: has no canonical JSON form: {exc}"
                )
            return replace(item, deliveries=tuple(deliveries))

        return submission.map_accepted(seal)


def _main_b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _main_attach(
    body: Mapping[str, Any],
    provenance: Provenance,
    key: Ed25519PrivateKey,
    kid: str,
    payload: bytes,
) -> dict[str, Any]:
    """hub.signing.provenance.attach as main had it: the header's JSON and base64url made
    for every signature."""
    header = {"alg": HUB_ALG, "kid": kid, HEADER_CLAIMS: provenance.claims()}
    encoded_header = _main_b64url(orjson.dumps(header))
    signing_input = f"{encoded_header}.{_main_b64url(payload)}".encode("ascii")
    signature = f"{encoded_header}..{_main_b64url(key.sign(signing_input))}"
    return with_extension(body, provenance, kid, signature)


class CryptographySigner(HubSigner):
    """A HubSigner whose Sealers sign with cryptography's Ed25519 (as main did) rather than
    libsodium's: the measurement of what PyNaCl gains."""

    def __init__(self, store: KeyStore, passphrase: str) -> None:
        super().__init__(store, passphrase)
        self._key = private_key(store)

    def sealer(self) -> Sealer:
        return Sealer(super().sealer().kid, self._key)


def private_key(store: KeyStore) -> Ed25519PrivateKey:
    """cryptography's private key of the store's current key (sealed under PASSPHRASE)."""
    record = store.current()
    assert record is not None
    return store.private_key(record, PASSPHRASE)


def bench_federation(data_dir: Path) -> Federation:
    """The benchmark's federation (bench/nodes.py), loaded."""
    write_federation(data_dir / "federation.yaml")
    return load_federation(data_dir / "federation.yaml")


def routed(
    federation: Federation, reports: Iterable[tuple[str, list[dict[str, Any]]]], data_dir: Path
) -> list[Submission]:
    """Each (member, objects) as the Sign stage gets it: the API's intake record, decoded and
    taken through every stage before Sign, as one pipeline worker would."""
    topics = Topics()
    keys = IntakeKeys((new_intake_key(),), topics.intake, {})
    decode = Decode(federation, topics, intake_keys=lambda: keys)
    # Read from memory only: the bus is never started (its constructor does no I/O).
    history = DeliveryHistory(open_bus("embedded", data_dir), topics.decisions)
    key = os.urandom(32)
    before: Stage = compose(
        Authenticate(federation),
        Validate(federation),
        ProvenanceStage(federation),
        Ownership(federation, history),
        Mark(),
        Route(Policy(federation), key, history),
        ConfineResponses(federation),
        Observe(federation, key),
    )
    received = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    out = []
    for offset, (member, objects) in enumerate(reports):
        status_id = str(uuid.uuid4())
        value = encode_intake(
            status_id=status_id,
            member=member,
            account=f"{member}-submit",
            received=received,
            request_id=status_id,
            objects=objects,
        )
        record = Record(
            topics.intake, 0, offset, None, value, (keys.header(value),), int(time.time() * 1000)
        )
        out.append(before(decode(record)))
    return out


@contextmanager
def signer_in(data_dir: Path, kind: type[HubSigner] = HubSigner) -> Iterator[HubSigner]:
    """A signer with a fresh key, sealed under a passphrase as on a hub."""
    signer = kind(KeyStore(data_dir / "keys"), PASSPHRASE)
    signer.refresh()
    yield signer


def _timed(work: Callable[[], object]) -> float:
    """CPU seconds of this thread for one call of `work`, after a collection (none left over
    to pay for): what the stage costs the hub, whatever else shares the cores."""
    gc.collect()
    start = time.thread_time()
    work()
    return time.thread_time() - start


def main(reports: int, rounds: int, seed: int) -> None:
    generator = Generator(seed)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        federation = bench_federation(data_dir)
        bundles = [generator.incident_bundle() for _ in range(reports)]
        print(f"routing {reports} reports through the stages before Sign ...", file=sys.stderr)
        subs = routed(federation, [(s.member, objects) for s, objects in bundles], data_dir)
        accepted = [i for s in subs for i in s.items if i.accepted]
        deliveries = sum(len(i.deliveries) for i in accepted)
        variants = sum(len({id(d.obj) for d in i.deliveries}) for i in accepted)
        print(
            f"{len(subs)} submissions, {len(accepted):,} accepted objects, "
            f"{deliveries:,} deliveries ({deliveries / len(accepted):.2f} per object), "
            f"{variants:,} variants as routing hands them"
        )
        with signer_in(data_dir) as signer:
            key = private_key(signer.store)
            paths: dict[str, Stage] = {
                "main (before)": MainSign(signer, federation, key),
                "new, cryptography Ed25519": Sign(
                    CryptographySigner(signer.store, PASSPHRASE), federation
                ),
                "new (libsodium Ed25519)": Sign(signer, federation),
            }
            outputs = {name: [stage(s) for s in subs] for name, stage in paths.items()}
            reference = outputs["main (before)"]
            for name, out in outputs.items():
                if out != reference:
                    raise SystemExit(f"{name}: not the same signed objects as main's path")
            signed = [d.obj for s in reference for i in s.items if i.accepted for d in i.deliveries]
            unique = list({id(o): o for o in signed}.values())
            inputs = [_signing_input(o) for o in unique]
            bare: dict[str, Signs] = {
                "Ed25519 alone, cryptography": key,
                "Ed25519 alone, libsodium": SodiumKey(key),
            }
            print(f"{len(unique):,} signatures per pass; measuring, {rounds} rounds ...")
            best = dict.fromkeys([*paths, *bare], float("inf"))
            for _ in range(rounds):
                for name, stage in paths.items():
                    best[name] = min(best[name], _timed(lambda st=stage: [st(s) for s in subs]))
                for name, signs in bare.items():
                    spent = _timed(lambda k=signs: [k.sign(x) for x in inputs])
                    best[name] = min(best[name], spent)
    old = best["main (before)"]
    print()
    print(f"{'Sign stage':<30}{'µs/delivery':>12}{'µs/object':>11}{'x main':>8}")
    for name, seconds in best.items():
        print(
            f"{name:<30}{seconds / deliveries * 1e6:>12.1f}"
            f"{seconds / len(accepted) * 1e6:>11.1f}{seconds / old:>8.2f}"
        )


def _signing_input(obj: Any) -> bytes:
    """What the hub's signature over `obj` signs: header, a dot, the canonical object."""
    ext = obj["extensions"]["extension-definition--d48c7d39-99e9-432b-b5db-b86b19be051f"]
    header = ext["signature"].split(".")[0]
    return f"{header}.{b64url(canonical(without_extension(obj)))}".encode("ascii")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reports", type=int, default=400, help="incident reports (default 400)")
    parser.add_argument("--rounds", type=int, default=7, help="passes per path (default 7)")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    main(args.reports, args.rounds, args.seed)
