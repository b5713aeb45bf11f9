"""Backups of a hub's data dir, taken while the hub runs, and their restore.

A backup is a folder: `manifest.json` (what it holds, the SHA-256 of every file, and the
point of the log it stops at), `data/` (the data dir), `keys/` (the keys dir, wherever it
lives) and, when the pseudonym key lives outside the data dir, `pseudonym.key`.

SQLite files are copied with SQLite's online backup API: one read transaction, so each copy
is the file as it was at one commit, whatever the hub writes meanwhile. The order is what
makes the whole consistent at one point of the log:

1. every view (`view-*.sqlite3`): a view only holds records from the bus, with the offsets
   it read up to, so a view copied before the bus never claims a record the copied bus has
   not (the restored view resumes from its offsets and catches up); and the subscriptions'
   outbox (`notify-*.sqlite3`), which finds its place again in whatever view it meets;
2. the other files of the data dir (the published-definitions marker says something is on
   the bus: copied before it, never a claim ahead of it);
3. the bus (`bus.sqlite3`), the system of record: its end offsets are the backup's point;
4. the keys, after the bus, so every key that signed or MACed a record in the copy is there.
   Key files are copied as they are: a sealed private key stays sealed.

On Kafka the topics are the system of record and are not in the backup (Kafka's own
replication and tools keep them); the backup holds the keys and the node's files, and a
restored node rebuilds its view from the topics.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import orjson

from hub.bus.url import EMBEDDED_FILE
from hub.control import PID_FILE
from hub.ops.datadir import hub_version, read_format
from hub.signing.keyring import keys_dir_lock

MANIFEST = "manifest.json"
BACKUP_FORMAT = "cirt-hub-backup-v1"
# SQLite's side files: the online backup reads through them, a copy of them would be torn.
_SIDE_SUFFIXES = ("-wal", "-shm", "-journal")
_NOT_DATA = {PID_FILE, ".lock", ".upgrade.lock"}
_CHUNK = 1 << 20
# The top-level names a backup writes; a manifest naming anything else is refused.
_AREAS = ("data", "keys", "pseudonym.key")


class BackupError(Exception):
    """A backup or restore that cannot be done as asked; the message says why."""


@dataclass(frozen=True)
class BackupFile:
    path: str  # inside the backup, e.g. "data/bus.sqlite3", "keys/intake.key"
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    created: str
    hub_version: str
    data_format: int
    bus: str  # "embedded", or "kafka" (topics not in the backup)
    # The backup's point: the next offset of every topic partition on the copied bus.
    log_point: dict[str, dict[str, int]] = field(default_factory=dict)
    audit_head: str | None = None  # "SEQ:HASH", as `cirt-hub audit verify` prints it
    files: tuple[BackupFile, ...] = ()
    format: str = BACKUP_FORMAT

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        raw = orjson.loads(data)
        if not isinstance(raw, dict) or raw.get("format") != BACKUP_FORMAT:
            raise BackupError(f"{MANIFEST}: not a {BACKUP_FORMAT} manifest")
        try:
            files = tuple(BackupFile(**f) for f in raw.pop("files"))
            return cls(files=files, **raw)
        except (KeyError, TypeError) as exc:
            raise BackupError(f"{MANIFEST}: damaged ({exc})") from exc

    @property
    def records(self) -> int:
        return sum(sum(p.values()) for p in self.log_point.values())


@dataclass(frozen=True)
class Locations:
    """Where a hub keeps what a backup holds."""

    data_dir: Path
    keys_dir: Path | None = None  # None: DATA_DIR/keys
    pseudonym_key: Path | None = None  # None: DATA_DIR/pseudonym.key

    @property
    def keys(self) -> Path:
        return self.keys_dir or self.data_dir / "keys"

    @property
    def outside_pseudonym_key(self) -> Path | None:
        """The pseudonym key file when it is not in the data dir (then it is copied apart)."""
        key = self.pseudonym_key
        if key is None or key.resolve().parent == self.data_dir.resolve():
            return None
        return key


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as src:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def copy_sqlite(src: Path, dst: Path) -> None:
    """`dst` becomes `src` as it was at one commit (SQLite's online backup, one step)."""
    with (
        closing(sqlite3.connect(src, timeout=30.0)) as source,
        closing(sqlite3.connect(dst)) as target,
    ):
        source.execute("PRAGMA busy_timeout=30000")
        source.execute("PRAGMA query_only=1")
        # One step (pages=-1) holds one read transaction for the whole copy: a writer goes
        # on in the WAL meanwhile, and the copy never restarts however busy the hub is.
        source.backup(target)
        # The copy stands alone: no WAL beside it to lose on the way to the backup disk.
        target.execute("PRAGMA journal_mode=DELETE")


def _data_files(data_dir: Path, keys: Path) -> Iterator[Path]:
    for path in sorted(data_dir.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        if path.name in _NOT_DATA or path.name.endswith(_SIDE_SUFFIXES):
            continue
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            continue  # an atomic replace under way elsewhere
        if keys in path.parents:
            continue
        yield path


def _log_point(bus_copy: Path, audit_topic: str) -> tuple[dict[str, dict[str, int]], str | None]:
    """The copied bus's end offsets, topic by partition, and its audit chain's head."""
    with closing(sqlite3.connect(bus_copy)) as conn:
        point: dict[str, dict[str, int]] = {}
        for topic, partitions in conn.execute("SELECT name, partitions FROM topics ORDER BY name"):
            for partition in range(partitions):
                (last,) = conn.execute(
                    "SELECT MAX(offset) FROM records WHERE topic = ? AND partition = ?",
                    (topic, partition),
                ).fetchone()
                point.setdefault(topic, {})[str(partition)] = 0 if last is None else last + 1
        row = conn.execute(
            "SELECT value FROM records WHERE topic = ? ORDER BY partition, offset DESC LIMIT 1",
            (audit_topic,),
        ).fetchone()
    head = None
    if row is not None:
        try:
            last_record = orjson.loads(row[0])
            head = f"{last_record['seq']}:{last_record['hash']}"
        except (orjson.JSONDecodeError, KeyError, TypeError):
            head = None
    return point, head


class _Writer:
    """Files written into the backup folder, each hashed and fsynced."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: list[BackupFile] = []

    def _target(self, name: str) -> Path:
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return target

    def _done(self, name: str, target: Path) -> None:
        _fsync(target)
        self.files.append(BackupFile(name, target.stat().st_size, _sha256(target)))

    def sqlite(self, name: str, src: Path) -> Path:
        target = self._target(name)
        copy_sqlite(src, target)
        self._done(name, target)
        return target

    def file(self, name: str, src: Path) -> None:
        target = self._target(name)
        shutil.copyfile(src, target)
        os.chmod(target, 0o600)
        self._done(name, target)


def backup(where: Locations, dest: Path, *, audit_topic: str, embedded: bool = True) -> Manifest:
    """Copy the hub's data dir and keys into `dest` (new or empty), consistent at one point
    of the log; the manifest is written last, so a backup without one is incomplete."""
    data_dir = where.data_dir
    if not data_dir.is_dir():
        raise BackupError(f"data dir {data_dir} does not exist")
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty: a backup goes into a new or empty folder")
    if data_dir.resolve() in (dest.resolve(), *dest.resolve().parents):
        raise BackupError(f"{dest} is inside the data dir {data_dir}")
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    data_format = read_format(data_dir)
    writer = _Writer(dest)
    files = list(_data_files(data_dir, where.keys.resolve()))
    bus = data_dir / EMBEDDED_FILE
    views = [p for p in files if p.suffix == ".sqlite3" and p != bus]
    for path in views:  # 1. views, before the bus (see the module's docstring)
        # On Kafka a view is rebuilt from the topics; subscriptions and their outbox
        # (notify-*.sqlite3) are nowhere else.
        if embedded or not path.name.startswith("view-"):
            writer.sqlite(f"data/{path.relative_to(data_dir).as_posix()}", path)
    for path in files:  # 2. the node's other files
        if path.suffix != ".sqlite3":
            writer.file(f"data/{path.relative_to(data_dir).as_posix()}", path)
    point: dict[str, dict[str, int]] = {}
    head = None
    if embedded and bus.exists():  # 3. the bus: the backup's point
        point, head = _log_point(writer.sqlite(f"data/{EMBEDDED_FILE}", bus), audit_topic)
    keys = where.keys
    if keys.is_dir():  # 4. the keys, under the lock their writers take
        with keys_dir_lock(keys):
            for path in sorted(keys.iterdir()):
                if path.is_file() and not path.name.startswith("."):
                    writer.file(f"keys/{path.name}", path)
    outside = where.outside_pseudonym_key
    if outside is not None and outside.exists():
        writer.file("pseudonym.key", outside)
    manifest = Manifest(
        created=_now(),
        hub_version=hub_version(),
        data_format=data_format.format if data_format else 0,
        bus="embedded" if embedded else "kafka",
        log_point=point,
        audit_head=head,
        files=tuple(writer.files),
    )
    (dest / MANIFEST).write_bytes(manifest.to_json())
    _fsync(dest / MANIFEST)
    return manifest


def read_manifest(src: Path) -> Manifest:
    try:
        return Manifest.from_json((src / MANIFEST).read_bytes())
    except FileNotFoundError as exc:
        raise BackupError(
            f"{src} holds no {MANIFEST}: not a backup, or one that did not finish"
        ) from exc
    except orjson.JSONDecodeError as exc:
        raise BackupError(f"{src / MANIFEST}: not JSON ({exc})") from exc


def verify(src: Path) -> Manifest:
    """The backup's manifest, once every file it lists is there with its size and SHA-256."""
    manifest = read_manifest(src)
    for entry in manifest.files:
        name = PurePosixPath(entry.path)
        if name.is_absolute() or ".." in name.parts or name.parts[0] not in _AREAS:
            raise BackupError(f"{MANIFEST}: {entry.path!r} is not a place a backup writes")
        path = src / name
        if not path.is_file():
            raise BackupError(f"{entry.path}: missing from the backup")
        if path.stat().st_size != entry.size or _sha256(path) != entry.sha256:
            raise BackupError(f"{entry.path}: damaged (its SHA-256 is not the manifest's)")
    return manifest


def _empty_or_new(path: Path, what: str) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        held = ", ".join(sorted(p.name for p in path.iterdir())[:5]) if path.is_dir() else ""
        raise BackupError(
            f"{what} {path} is not empty ({held}): a restore goes into an empty one, so "
            "nothing of another hub is mixed in"
        )


def restore(src: Path, where: Locations) -> Manifest:
    """Check every file of the backup at `src`, then put them in place (owner-only)."""
    manifest = verify(src)
    _empty_or_new(where.data_dir, "data dir")
    if where.keys_dir is not None:
        _empty_or_new(where.keys_dir, "keys dir")
    outside = where.outside_pseudonym_key
    if outside is not None and outside.exists():
        raise BackupError(f"pseudonym key {outside} exists: a restore does not replace it")
    for entry in manifest.files:
        area, _, rest = entry.path.partition("/")
        if area == "data":
            target = where.data_dir / rest
        elif area == "keys":
            target = where.keys / rest
        else:
            target = outside or where.data_dir / "pseudonym.key"
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copyfile(src / entry.path, target)
        os.chmod(target, 0o600)
        _fsync(target)
    for folder in {where.data_dir, where.keys}:
        if folder.is_dir():
            os.chmod(folder, 0o700)
    return manifest
