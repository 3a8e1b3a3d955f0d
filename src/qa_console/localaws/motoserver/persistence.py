"""Persist moto's in-memory control plane across `local down` / `local up`.

Why not moto's recorder (MOTO_ENABLE_RECORDING + replay)? Measured on moto 5.2.5 (see
docs/benchmarks.md, benchmarks/localaws.py): it appends every request, reads included, so the
log grows with every status poll the runtime and waiters make; it stores bodies base64-encoded
inside JSON lines (a 100 MB upload costs 133 MB of log and is held in memory on replay); and
replay re-sends the requests while the server generates new ids, so anything that refers to a
server-made id breaks: an S3 multipart upload (UploadPart names the UploadId from os.urandom)
replays as NoSuchUpload, and API Gateway calls naming a rest-api id fail. boto3 uploads every
object over 8 MB as multipart, so model tarballs would not survive.

Instead, the supervisor snapshots the backends themselves: one pickle of every backend that
holds data (ids, timestamps and cross-references exactly as they were), with S3 object bodies
written once each to a content-addressed blob store beside it and read back lazily (an object
restored from a blob is only copied if someone overwrites it). Snapshots are taken after
mutating requests settle (a quiet period, bounded delay) and at shutdown, under a lock that
holds new requests for the few milliseconds of pickling, so a snapshot never sees half a change.

What survives: everything in the moto backends (S3 buckets and objects with metadata and
versions, multipart uploads in progress, IAM, SageMaker models / endpoint configs / endpoints,
CloudWatch Logs, Lambda functions with their code, API Gateway APIs / keys / usage plans, STS,
...), with their ids and timestamps; an endpoint caught Creating/Updating finishes its phase on
its original schedule. What does not: in-flight requests, changes of the last few seconds before
a crash (none at a clean `down`), and any backend that cannot be pickled (logged by name and
skipped, never fatal). docs/local-aws.md says the same for users.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import importlib
import io
import itertools
import logging
import os
import pickle
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("qa_console.localaws.motoserver.persistence")

SNAPSHOT_FORMAT = 1
SNAPSHOT_NAME = "snapshot.pickle"
BLOB_DIR = "blobs"
COPY_CHUNK = 1024 * 1024
# A backend module/attribute that holds no user data and must never be restored.
_NEVER_PERSIST = {"moto_api", "instance_metadata"}


class RWLock:
    """Many requests at once, or one snapshot alone. Writers go first once they wait, but give
    up after `timeout` so a request that calls back into moto can never deadlock a snapshot."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self, timeout: float) -> Iterator[bool]:
        """Yields True when the lock was taken, False when `timeout` passed first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                acquired = not (self._writer or self._readers)
                if acquired:
                    self._writer = True
            finally:
                self._writers_waiting -= 1
                if not acquired:
                    self._cond.notify_all()
        try:
            yield acquired
        finally:
            if acquired:
                with self._cond:
                    self._writer = False
                    self._cond.notify_all()


# Restored S3 bodies that still read straight from their blob: the GC must keep those files.
_live_blobs: weakref.WeakSet[CowBlob] = weakref.WeakSet()
# S3 keys whose body was written since it was last stored, and the lock that makes "the blob I
# stored is this body's" a check-and-set (a request may write the body while it is copied).
_new_bodies: weakref.WeakSet[Any] = weakref.WeakSet()
_body_lock = threading.Lock()


class CowBlob:
    """The value buffer of a restored S3 object: reads its blob file in place (or a window of it:
    the parts of a completed multipart upload are slices of the whole object's blob), and copies
    it to a private spooled temporary file only when the object is written to."""

    def __init__(
        self, path: Path, sha: str, max_size: int, offset: int = 0, length: int | None = None
    ) -> None:
        self.path = path
        self.sha = sha
        self.offset = offset
        self._length = length
        self._max_size = max_size
        self._reader: io.BufferedReader | None = None
        self._copy: Any = None
        self._position = 0
        self.closed = False
        _live_blobs.add(self)

    @property
    def materialized(self) -> bool:
        return self._copy is not None

    @property
    def is_slice(self) -> bool:
        return self.offset != 0 or self._length is not None

    @property
    def length(self) -> int:
        if self._length is None:
            self._length = self.path.stat().st_size - self.offset
        return self._length

    def _file(self) -> Any:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        if self._copy is not None:
            return self._copy
        if self._reader is None:
            self._reader = open(self.path, "rb")  # noqa: SIM115 - kept open across calls
        return self._reader

    def _materialize(self) -> Any:
        if self._copy is None:
            reader = self._file()
            copy = tempfile.SpooledTemporaryFile(max_size=self._max_size)  # noqa: SIM115
            reader.seek(self.offset)
            remaining = self.length
            while remaining > 0:
                chunk = reader.read(min(COPY_CHUNK, remaining))
                if not chunk:
                    break
                copy.write(chunk)
                remaining -= len(chunk)
            copy.seek(self._position)
            reader.close()
            self._reader = None
            self._copy = copy
        return self._copy

    def seek(self, offset: int, whence: int = 0) -> int:
        if self._copy is not None or self.closed:
            return int(self._file().seek(offset, whence))
        base = {0: 0, 1: self._position, 2: self.length}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        if self._copy is not None or self.closed:
            return int(self._file().tell())
        return self._position

    def read(self, size: int | None = -1) -> bytes:
        reader = self._file()
        if self._copy is not None:
            return bytes(reader.read(size))
        remaining = self.length - self._position
        wanted = remaining if size is None or size < 0 else min(size, remaining)
        if wanted <= 0:
            return b""
        reader.seek(self.offset + self._position)
        data = bytes(reader.read(wanted))
        self._position += len(data)
        return data

    def write(self, data: bytes) -> int:
        return int(self._materialize().write(data))

    def truncate(self, size: int | None = None) -> int:
        target = self._materialize()
        return int(target.truncate(size) if size is not None else target.truncate())

    def close(self) -> None:
        for handle in (self._reader, self._copy):
            if handle is not None:
                handle.close()
        self.closed = True


def _restore_fake_key(
    cls: Any,
    state: dict[str, Any],
    blob: str | None,
    blob_dir: str,
    offset: int = 0,
    length: int | None = None,
) -> Any:
    """Rebuild an S3 FakeKey whose body was stored as a blob, or a slice of one (see
    SnapshotPickler)."""
    key = cls.__new__(cls)
    key.__dict__.update(state)
    max_size = state.get("_max_buffer_size") or 16 * 1024 * 1024
    if blob is None:
        key._value_buffer = tempfile.SpooledTemporaryFile(max_size=max_size)  # noqa: SIM115
    else:
        key._value_buffer = CowBlob(
            _blob_path(Path(blob_dir), blob), blob, max_size, offset, length
        )
        if length is None:
            key.__dict__["_qa_blob"] = blob
    key.lock = threading.Lock()
    return key


def _make_weak_value_dict(items: dict[Any, Any]) -> weakref.WeakValueDictionary[Any, Any]:
    return weakref.WeakValueDictionary(items)


def _make_weak_key_dict(items: dict[Any, Any]) -> weakref.WeakKeyDictionary[Any, Any]:
    return weakref.WeakKeyDictionary(items)


def _make_defaultdict(factory: Any, items: dict[Any, Any]) -> collections.defaultdict[Any, Any]:
    return collections.defaultdict(factory, items)


_LOCK_TYPES = {type(threading.Lock()): threading.Lock, type(threading.RLock()): threading.RLock}


class SnapshotPickler(pickle.Pickler):
    """A pickler for moto's object graph: S3 bodies go to the blob store (by sha256, each
    written once), locks come back new, weak dicts and lambda-backed defaultdicts are rebuilt."""

    def __init__(self, file: Any, blob_dir: Path, referenced: set[str]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.blob_dir = blob_dir
        self.referenced = referenced
        self._slices: dict[int, tuple[str, int, int]] = {}  # id(part) -> (blob, offset, length)
        from moto.s3.models import FakeKey

        self._fake_key = FakeKey

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if isinstance(obj, self._fake_key):
            return self._reduce_fake_key(obj)
        if kind in _LOCK_TYPES:
            return (_LOCK_TYPES[kind], ())
        if kind is threading.Condition:
            return (threading.Condition, ())
        if kind is threading.Event:
            return (threading.Event, ())
        if kind is weakref.WeakValueDictionary:
            return (_make_weak_value_dict, (dict(obj.items()),))
        if kind is weakref.WeakKeyDictionary:
            return (_make_weak_key_dict, (dict(obj.items()),))
        if (
            kind is collections.defaultdict
            and getattr(obj.default_factory, "__name__", "") == "<lambda>"
        ):
            return (_make_defaultdict, (_plain_factory(obj.default_factory), dict(obj)))
        return NotImplemented

    def _reduce_fake_key(self, key: Any) -> Any:
        state = {k: v for k, v in key.__dict__.items() if k not in ("_value_buffer", "lock")}
        state.pop("_qa_blob", None)
        window = self._slices.get(id(key))
        buffer = key.__dict__.get("_value_buffer")
        if window is None and _is_live_slice(buffer):
            window = (buffer.sha, buffer.offset, buffer.length)
        if window is not None:
            self.referenced.add(window[0])
            return (
                _restore_fake_key,
                (type(key), state, window[0], str(self.blob_dir), *window[1:]),
            )
        blob = self._store_body(key)
        if blob is not None:
            self.referenced.add(blob)
            self._slice_parts(key, blob)
        return (_restore_fake_key, (type(key), state, blob, str(self.blob_dir)))

    def _slice_parts(self, key: Any, blob: str) -> None:
        """The parts of a completed multipart upload are the object's bytes in part order: store
        them as windows of its blob, not as second copies. Only when the object's ETag (the md5
        of the parts' md5s) proves the parts are exactly those, in that order."""
        parts = getattr(key.__dict__.get("multipart"), "parts", None)
        if not parts:
            return
        ordered = [parts[number] for number in sorted(parts)]
        etags = [part.__dict__.get("_etag") for part in ordered]
        sizes = [part.__dict__.get("contentsize") for part in ordered]
        if None in etags or None in sizes or sum(sizes) != key.__dict__.get("contentsize"):
            return
        try:
            digest = hashlib.md5(
                b"".join(bytes.fromhex(str(e)) for e in etags), usedforsecurity=False
            )
        except ValueError:
            return
        if key.__dict__.get("_etag") != f"{digest.hexdigest()}-{len(ordered)}":
            return
        offset = 0
        for part, size in zip(ordered, sizes, strict=True):
            self._slices[id(part)] = (blob, offset, size)
            offset += size

    def _store_body(self, key: Any) -> str | None:
        buffer = key.__dict__.get("_value_buffer")
        if buffer is None:
            return None
        if isinstance(buffer, CowBlob) and not buffer.materialized and not buffer.closed:
            return buffer.sha
        known = key.__dict__.get("_qa_blob")
        if known and _blob_path(self.blob_dir, known).exists():
            return str(known)
        try:
            with key.lock:
                buffer.seek(0)
                blob = write_blob(self.blob_dir, buffer)
        except ValueError:  # a disposed (deleted) key: its buffer is closed
            return None
        key.__dict__["_qa_blob"] = blob
        _new_bodies.discard(key)
        return blob


def _is_live_slice(buffer: Any) -> bool:
    return (
        isinstance(buffer, CowBlob)
        and buffer.is_slice
        and not (buffer.materialized or buffer.closed)
    )


def _plain_factory(factory: Any) -> Any:
    """A picklable stand-in for a lambda default factory that builds an empty container."""
    sample = factory()
    for candidate in (dict, list, set):
        if type(sample) is candidate and not sample:
            return candidate
    raise pickle.PicklingError(f"cannot persist a defaultdict whose factory makes {sample!r}")


def _blob_path(blob_dir: Path, sha: str) -> Path:
    return blob_dir / sha[:2] / sha


def write_blob(blob_dir: Path, source: Any) -> str:
    """Copy a readable file object into the blob store; its sha256 (the blob's name)."""
    blob_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    handle, temporary = tempfile.mkstemp(dir=blob_dir, prefix=".incoming-")
    try:
        with os.fdopen(handle, "wb") as target:
            while True:
                chunk = source.read(COPY_CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                target.write(chunk)
        sha = digest.hexdigest()
        final = _blob_path(blob_dir, sha)
        if final.exists():
            os.unlink(temporary)
        else:
            final.parent.mkdir(exist_ok=True)
            os.replace(temporary, final)
        return sha
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _backend_dicts() -> dict[int, tuple[str, str, Any]]:
    """Every moto BackendDict in use, keyed by id, with a module attribute that names it."""
    from moto.core.base_backend import BackendDict

    instances: list[Any] = list(vars(BackendDict)["_instances"])
    wanted = {id(bd): bd for bd in instances}
    found: dict[int, tuple[str, str, Any]] = {}
    for module_name, module in sorted(sys.modules.items()):
        if not module_name.startswith("moto.") or module is None:
            continue
        for attribute, value in sorted(vars(module).items()):
            if id(value) in wanted and id(value) not in found:
                found[id(value)] = (module_name, attribute, value)
    return found


class Snapshotter:
    """Restores the control plane at start, and snapshots it after changes and at shutdown."""

    def __init__(self, directory: Path, quiet_seconds: float = 0.5, max_delay: float = 5.0):
        self.directory = directory
        self.blob_dir = directory / BLOB_DIR
        self.lock = RWLock()
        self.quiet_seconds = quiet_seconds
        self.max_delay = max_delay
        # Changes are numbered; a snapshot records the number it covers, so "dirty" means
        # "some change is not in a written snapshot yet", even while one is being written.
        self._changes = itertools.count(1)
        self.generation = 0
        self.saved_generation = 0
        self._first_unsaved: float | None = None
        self._last_change = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._skipped: set[str] = set()
        self.last_snapshot: dict[str, Any] = {}

    @property
    def snapshot_path(self) -> Path:
        return self.directory / SNAPSHOT_NAME

    # -- restore -----------------------------------------------------------------------------

    def restore(self) -> int:
        """Load the last snapshot into moto's backends; how many backends were restored."""
        path = self.snapshot_path
        if not path.exists():
            return 0
        import moto

        started = time.monotonic()
        try:
            with open(path, "rb") as handle:
                meta = pickle.load(handle)
                if meta.get("format") != SNAPSHOT_FORMAT or meta.get("moto") != moto.__version__:
                    raise ValueError(
                        f"snapshot written by format {meta.get('format')} / moto "
                        f"{meta.get('moto')}, this is format {SNAPSHOT_FORMAT} / moto "
                        f"{moto.__version__}"
                    )
                entries = pickle.load(handle)
        except Exception as error:
            aside = path.with_name(f"{SNAPSHOT_NAME}.unreadable-{int(time.time())}")
            os.replace(path, aside)
            log.warning("cannot restore the local AWS state (%s); kept it as %s", error, aside)
            return 0
        for module_name, attribute, account_id, region, backend in entries:
            backend_dict = getattr(importlib.import_module(module_name), attribute)
            backend_dict[account_id][region] = backend
        log.info(
            "restored %d backends from %s in %.2f s",
            len(entries),
            path,
            time.monotonic() - started,
        )
        return len(entries)

    # -- change tracking ---------------------------------------------------------------------

    def mark_dirty(self) -> None:
        """Call while still holding the shared lock of the request that changed something."""
        now = time.monotonic()
        self._last_change = now
        if self._first_unsaved is None:
            self._first_unsaved = now
        self.generation = next(self._changes)
        self._wake.set()

    @property
    def dirty(self) -> bool:
        return self.generation != self.saved_generation

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="snapshotter", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=1.0)
            if self._stop.is_set():
                return
            if not self.dirty:
                self._wake.clear()
                continue
            now = time.monotonic()
            since = self._first_unsaved or now
            if now - self._last_change < self.quiet_seconds and now - since < self.max_delay:
                time.sleep(min(self.quiet_seconds, 0.1))
                continue
            self._wake.clear()
            try:
                self.snapshot()
            except Exception:
                log.exception("snapshot failed; will retry after the next change")
                time.sleep(1.0)

    # -- snapshot ----------------------------------------------------------------------------

    def store_new_bodies(self) -> int:
        """Write the blobs of S3 bodies written since the last snapshot, while requests keep
        being served: the snapshot's exclusive section then only pickles (a 1 GB model would
        otherwise hold every request for seconds). How many blobs were written."""
        written = 0
        for key in list(_new_bodies):
            lock = key.__dict__.get("lock")
            buffer = key.__dict__.get("_value_buffer")
            if lock is None or buffer is None:  # still being constructed: next time
                continue
            version = key.__dict__.get("_qa_body_version", 0)
            known = key.__dict__.get("_qa_blob")
            if known and _blob_path(self.blob_dir, known).exists():
                _new_bodies.discard(key)
                continue
            try:
                with lock:
                    buffer.seek(0)
                    blob = write_blob(self.blob_dir, buffer)
            except ValueError:  # deleted meanwhile: its buffer is closed
                _new_bodies.discard(key)
                continue
            with _body_lock:
                if key.__dict__.get("_qa_body_version", 0) == version:
                    key.__dict__["_qa_blob"] = blob
                    _new_bodies.discard(key)
                    written += 1
        return written

    def snapshot(self, lock_timeout: float = 10.0) -> bool:
        """Write the snapshot if anything changed since the last one. True when written."""
        if self.dirty:
            started = time.monotonic()
            stored = self.store_new_bodies()
            if stored:
                log.info(
                    "stored %d new S3 bodies in %.2f s, requests still served",
                    stored,
                    time.monotonic() - started,
                )
        with self.lock.exclusive(lock_timeout) as acquired:
            if not acquired:
                log.warning("snapshot postponed: requests kept the control plane busy")
                return False
            if not self.dirty:
                return False
            covered = self.generation
            self._first_unsaved = None
            try:
                self._write()
            except BaseException:
                self._first_unsaved = time.monotonic()
                raise
            self.saved_generation = covered
            return True

    def _entries(self) -> list[tuple[str, str, str, str, Any]]:
        entries = []
        for module_name, attribute, backend_dict in _backend_dicts().values():
            service = getattr(backend_dict, "service_name", attribute)
            if service in _NEVER_PERSIST or attribute.split("_backends")[0] in _NEVER_PERSIST:
                continue
            for account_id, account_backends in list(backend_dict.items()):
                for region, backend in list(account_backends.items()):
                    name = f"{service}/{account_id}/{region}"
                    if name not in self._skipped:
                        entries.append((module_name, attribute, account_id, region, backend))
        return entries

    def _write(self) -> None:
        import moto

        started = time.monotonic()
        self.directory.mkdir(parents=True, exist_ok=True)
        entries = self._entries()
        referenced: set[str] = set()
        temporary = self.snapshot_path.with_name(f".{SNAPSHOT_NAME}.tmp")
        meta = {
            "format": SNAPSHOT_FORMAT,
            "moto": moto.__version__,
            "python": list(sys.version_info[:2]),
            "created": time.time(),
            "backends": [entry[:4] for entry in entries],
        }
        try:
            self._dump(temporary, meta, entries, referenced)
        except Exception as error:
            log.warning("snapshot of all backends failed (%s); finding the culprit", error)
            entries = self._picklable(entries)
            meta["backends"] = [entry[:4] for entry in entries]
            referenced.clear()
            self._dump(temporary, meta, entries, referenced)
        os.replace(temporary, self.snapshot_path)
        removed = self._collect_garbage(referenced)
        size = self.snapshot_path.stat().st_size
        self.last_snapshot = {
            "time": time.time(),
            "seconds": round(time.monotonic() - started, 3),
            "bytes": size,
            "backends": len(entries),
            "blobs": len(referenced),
        }
        log.info(
            "snapshot: %d backends, %d blobs (%d removed), %.1f MB in %.2f s",
            len(entries),
            len(referenced),
            removed,
            size / 1e6,
            time.monotonic() - started,
        )

    def _dump(
        self, path: Path, meta: dict[str, Any], entries: list[Any], referenced: set[str]
    ) -> None:
        with open(path, "wb") as handle:
            pickle.dump(meta, handle, protocol=pickle.HIGHEST_PROTOCOL)
            SnapshotPickler(handle, self.blob_dir, referenced).dump(entries)
            handle.flush()
            os.fsync(handle.fileno())

    def _picklable(self, entries: list[Any]) -> list[Any]:
        kept = []
        for entry in entries:
            try:
                SnapshotPickler(_Discard(), self.blob_dir, set()).dump(entry)
                kept.append(entry)
            except Exception as error:
                module_name, attribute, account_id, region, _ = entry
                name = f"{attribute.split('_backends')[0]}/{account_id}/{region}"
                self._skipped.add(name)
                log.warning("not persisting %s (%s.%s): %s", name, module_name, attribute, error)
        return kept

    def _collect_garbage(self, referenced: set[str]) -> int:
        keep = referenced | {blob.sha for blob in list(_live_blobs) if not blob.materialized}
        removed = 0
        if not self.blob_dir.exists():
            return 0
        for path in self.blob_dir.glob("*/*"):
            if path.name not in keep:
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed += 1
        return removed


class _Discard(io.RawIOBase):
    """A sink for trial pickling."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(data)


def _replace(owner: Any, name: str, value: Any) -> None:
    """Patch one attribute of a moto class (a function, so type checkers accept it)."""
    setattr(owner, name, value)


def install() -> None:
    """Track S3 bodies as they are written: forget a key's stored blob (so the next snapshot
    stores the new body) and queue the key, so its blob is written before the snapshot takes
    its lock (see Snapshotter.store_new_bodies)."""
    from moto.s3.models import FakeKey

    value: Any = vars(FakeKey)["value"]
    if getattr(value.fset, "_qa_tracks_blob", False):
        return

    def set_value(self: Any, new_value: bytes) -> None:
        self.__dict__.pop("_qa_blob", None)
        value.fset(self, new_value)
        with _body_lock:
            self.__dict__["_qa_body_version"] = self.__dict__.get("_qa_body_version", 0) + 1
            self.__dict__.pop("_qa_blob", None)
        _new_bodies.add(self)

    set_value._qa_tracks_blob = True  # type: ignore[attr-defined]
    _replace(FakeKey, "value", property(value.fget, set_value))
