"""The hub's key files: encrypted at rest, useless without the passphrase, and a hub with
a real federation does not start without one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hub.signing.jws import b64url
from hub.signing.keyring import KeyringError, KeyStore, passphrase_from_environment
from tests.conftest import ROOT
from tests.signing.support import CLI

PASSPHRASE = "a passphrase only the operators know"


def raw_private(store: KeyStore, passphrase: str | None) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    key = store.private_key(store.current(), passphrase)
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def test_the_key_file_does_not_load_without_the_passphrase(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    record = store.ensure_key(PASSPHRASE)
    path = tmp_path / "keys" / f"{record.kid}.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "keys").stat().st_mode & 0o077 == 0
    secret = b64url(raw_private(store, PASSPHRASE))
    assert secret not in path.read_text()  # neither the key nor any encoding of it
    with pytest.raises(KeyringError, match="is encrypted: set CIRT_HUB_KEY_PASSPHRASE"):
        store.private_key(record, None)
    with pytest.raises(KeyringError, match="passphrase does not open key"):
        store.private_key(record, PASSPHRASE + "!")
    # A fresh reader of the same dir (another node) opens it with the passphrase alone.
    assert b64url(raw_private(KeyStore(tmp_path / "keys"), PASSPHRASE)) == secret


def test_a_sealed_key_cannot_be_moved_under_another_public_key(tmp_path: Path) -> None:
    first = KeyStore(tmp_path / "a")
    second = KeyStore(tmp_path / "b")
    a, b = first.ensure_key(PASSPHRASE), second.ensure_key(PASSPHRASE)
    forged = type(a)(a.kid, a.x, a.created, private=b.private)
    with pytest.raises(KeyringError, match="passphrase does not open key"):
        first.private_key(forged, PASSPHRASE)


def test_dev_keys_are_unencrypted_and_replaced_by_a_rotation(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    dev = store.ensure_key(None)
    assert dev.protection == "unencrypted"
    with pytest.raises(KeyringError, match="stored unencrypted"):
        store.private_key(dev, PASSPHRASE)
    new = store.rotate(PASSPHRASE)
    assert store.current() == new and new.protection == "passphrase"
    [old] = [r for r in store.records() if r.kid == dev.kid]
    assert old.protection == "destroyed" and old.retired is not None
    assert "private" not in (tmp_path / "keys" / f"{dev.kid}.json").read_text()


def test_passphrase_from_a_file_or_the_environment(tmp_path: Path) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    assert passphrase_from_environment({"CIRT_HUB_KEY_PASSPHRASE_FILE": str(secret)}) == PASSPHRASE
    assert passphrase_from_environment({"CIRT_HUB_KEY_PASSPHRASE": "x"}) == "x"
    assert passphrase_from_environment({"CIRT_HUB_KEY_PASSPHRASE": ""}) is None
    with pytest.raises(KeyringError, match="cannot read"):
        passphrase_from_environment({"CIRT_HUB_KEY_PASSPHRASE_FILE": str(tmp_path / "none")})


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin", **(env or {})},
    )


def test_serve_refuses_a_real_federation_without_a_passphrase(tmp_path: Path) -> None:
    config = ROOT / "examples" / "federation.yaml"
    result = run("serve", "--config", str(config), "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 2
    assert "needs a passphrase: set CIRT_HUB_KEY_PASSPHRASE" in result.stderr
    assert "--insecure-dev-keys" in result.stderr
    assert not (tmp_path / "d" / "keys").exists()


def test_keys_commands(tmp_path: Path) -> None:
    keys = str(tmp_path / "keys")
    assert "no keys in" in run("keys", "list", "--keys-dir", keys).stdout
    refused = run("keys", "rotate", "--keys-dir", keys)
    assert refused.returncode == 2 and "set CIRT_HUB_KEY_PASSPHRASE" in refused.stderr
    dev = run("keys", "rotate", "--keys-dir", keys, "--insecure-dev-keys")
    assert dev.returncode == 0 and "INSECURE DEV KEYS" in dev.stderr
    made = run("keys", "rotate", "--keys-dir", keys, env={"CIRT_HUB_KEY_PASSPHRASE": PASSPHRASE})
    assert made.returncode == 0 and "1 retired key(s)" in made.stdout
    lines = run("keys", "list", "--keys-dir", keys).stdout.splitlines()
    assert [line.split()[1:2] + line.split()[3:] for line in lines[1:]] == [
        ["current", "passphrase"],
        ["retired", "destroyed"],
    ]
