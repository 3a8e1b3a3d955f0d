"""The messages between the local AWS and its worker processes, on an inherited socket.

Both worker harnesses (sagemaker_worker.py, the model container; lambda_worker.py, a Lambda
sandbox) and the side that supervises them (qa_console/localaws/workers.py) speak this, so there is
one protocol, and neither side unpickles what the other sends: a handler is user code, and the
supervisor must not run what it says.

One frame is a header of two big-endian uint32 (the length of a JSON object, the length of a
body), the JSON object (the message: always a "type"), then the body: raw bytes that JSON would
have to base64 (a request or response payload of up to 6 MB), empty for most messages.

Standard library only, and never imported by a harness as a module of qa_console: a harness loads
this file by its path (as sagemaker_worker.py loads handler_contract.py), so a handler's own
imports never see qa_console or this folder on sys.path.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any, NoReturn

HEADER = struct.Struct(">II")
JOIN_BELOW_BYTES = 1 << 20  # smaller bodies go out in one sendall with their header
Message = dict[str, Any]


class Channel:
    """One end of the socket: whole frames in, whole frames out, sends from any thread."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._send_lock = threading.Lock()

    def send(self, message: Message, body: bytes = b"") -> None:
        """Send one frame; OSError when the other side is gone."""
        data = json.dumps(message, separators=(",", ":")).encode("utf-8")
        header = HEADER.pack(len(data), len(body))
        with self._send_lock:
            if len(body) < JOIN_BELOW_BYTES:
                self.sock.sendall(header + data + body)
            else:  # no copy of a big payload just to prepend 8 bytes
                self.sock.sendall(header + data)
                self.sock.sendall(body)

    def recv(self) -> tuple[Message, bytes] | None:
        """The next frame, or None once the other side has closed its end."""
        header = self._exactly(HEADER.size)
        if header is None:
            return None
        data_size, body_size = HEADER.unpack(header)
        data = self._exactly(data_size)
        body = self._exactly(body_size) if body_size else b""
        if data is None or body is None:
            return None
        message = json.loads(data)
        if not isinstance(message, dict) or "type" not in message:
            raise ValueError(f"not a worker message: {message!r}"[:200])
        return message, body

    def close(self) -> None:
        self.sock.close()

    def _exactly(self, size: int) -> bytes | None:
        buffer = bytearray(size)
        view = memoryview(buffer)
        received = 0
        while received < size:
            count = self.sock.recv_into(view[received:])
            if not count:
                return None
            received += count
        return bytes(buffer)


def serve_until_closed(channel: Channel, handle: Callable[[Message, bytes], None]) -> NoReturn:
    """Hand each message to `handle`; end the process the moment the supervisor's end closes.

    Run on a thread of its own: even while a handler hangs on another thread, a supervisor that
    died or killed its end takes the worker with it (no orphans)."""
    while True:
        try:
            frame = channel.recv()
        except (OSError, ValueError):
            frame = None
        if frame is None:
            os._exit(0)
        handle(*frame)
