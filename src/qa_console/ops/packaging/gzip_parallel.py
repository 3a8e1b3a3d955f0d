"""A deterministic, multi-threaded gzip writer (the pigz technique, in Python).

Why: packaging a model is dominated by compressing its weights, and a single zlib stream runs on
one core (~35 MB/s here). The input is cut into fixed-size chunks; each chunk is deflated on its own
thread (zlib releases the GIL) and ended with a sync flush, which closes on a byte boundary, so the
raw deflate pieces concatenate into ONE valid deflate stream inside one gzip member. Each chunk is
primed with the last 32 KiB of the chunk before it (`zdict`), so matches across chunk borders are
not lost. The chunking depends only on the input, never on the thread count or timing: the same
input always gives the same bytes.

Sections let the caller pick the zlib level and strategy per stretch of input (the packager
uses Huffman-only coding for weights, which compresses float weights as well as LZ77 does at three
times the speed, and normal deflate for JSON and tokenizer files). Starting a section ends the
current chunk, at a position that again depends only on the input.
"""

from __future__ import annotations

import struct
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

CHUNK_SIZE = 4 * 1024 * 1024
WINDOW = 32 * 1024  # deflate's history: a chunk may refer this far back into the previous one


class Sink(Protocol):
    """Where the compressed bytes go: an open binary file, or any object with write()."""

    def write(self, data: bytes, /) -> object: ...


def _deflate(data: bytes, zdict: bytes, level: int, strategy: int, last: bool) -> bytes:
    """Raw deflate of one chunk; ends with a sync flush (byte-aligned) or, for the last, finish."""
    if zdict and strategy != zlib.Z_HUFFMAN_ONLY:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15, 8, strategy, zdict=zdict)
    else:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15, 8, strategy)
    return compressor.compress(data) + compressor.flush(
        zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH
    )


class ParallelGzipWriter:
    """A write-only binary file object producing a single-member gzip stream on `raw`.

    gzip header fields are fixed (mtime 0, no file name, OS "unknown") for reproducible output.
    `threads=1` compresses inline; any thread count gives the same bytes.
    """

    def __init__(
        self,
        raw: Sink,
        *,
        level: int = 6,
        strategy: int = zlib.Z_DEFAULT_STRATEGY,
        threads: int = 1,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self._raw = raw
        self._level = level
        self._strategy = strategy
        self._chunk_size = chunk_size
        self._threads = max(1, threads)
        self._pool = ThreadPoolExecutor(self._threads) if self._threads > 1 else None
        self._pending: deque[Future[bytes]] = deque()
        self._buffer = bytearray()
        self._history = b""
        self._crc = 0
        self._size = 0
        self._closed = False
        self.compressed_bytes = 0
        # xfl: 4 = fastest, 2 = best, 0 = other, as gzip(1) writes it.
        xfl = 4 if level == 1 else 2 if level == 9 else 0
        self._emit(b"\x1f\x8b\x08\x00" + struct.pack("<I", 0) + bytes([xfl, 255]))

    # --- file object protocol (what tarfile needs) ---

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._closed:
            raise ValueError("write to a closed ParallelGzipWriter")
        view = memoryview(data).cast("B")
        self._crc = zlib.crc32(view, self._crc)
        self._size += len(view)
        self._buffer += view
        while len(self._buffer) >= self._chunk_size:
            chunk = bytes(self._buffer[: self._chunk_size])
            del self._buffer[: self._chunk_size]
            self._submit(chunk, last=False)
        return len(view)

    def tell(self) -> int:
        """Uncompressed bytes written so far (tarfile keeps its own offset from this)."""
        return self._size

    def flush(self) -> None:
        """Nothing to do: chunk borders are fixed by the input, never by flush calls."""

    def section(self, *, level: int, strategy: int = zlib.Z_DEFAULT_STRATEGY) -> None:
        """Compress what follows with another level/strategy; ends the current chunk first."""
        if (level, strategy) == (self._level, self._strategy):
            return
        if self._buffer:
            self._submit(bytes(self._buffer), last=False)
            self._buffer.clear()
        self._level, self._strategy = level, strategy

    def close(self) -> None:
        """Finish the deflate stream and write the gzip trailer. Does not close `raw`."""
        if self._closed:
            return
        self._submit(bytes(self._buffer), last=True)
        self._buffer.clear()
        while self._pending:
            self._emit(self._pending.popleft().result())
        self._emit(struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown()

    def abort(self) -> None:
        """Stop the worker threads without writing anything more (after an error)."""
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ParallelGzipWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # --- internals ---

    def _submit(self, chunk: bytes, *, last: bool) -> None:
        zdict = self._history
        self._history = (zdict + chunk)[-WINDOW:] if len(chunk) < WINDOW else chunk[-WINDOW:]
        args = (chunk, zdict, self._level, self._strategy, last)
        if self._pool is None:
            self._emit(_deflate(*args))
            return
        self._pending.append(self._pool.submit(_deflate, *args))
        # Bound memory: at most two chunks per thread in flight, written in input order.
        while len(self._pending) > 2 * self._threads:
            self._emit(self._pending.popleft().result())

    def _emit(self, data: bytes) -> None:
        self._raw.write(data)
        self.compressed_bytes += len(data)
