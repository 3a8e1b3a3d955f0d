"""AWS event-stream framing (application/vnd.amazon.eventstream), the encoder side.

`invoke_endpoint_with_response_stream` answers with a sequence of binary messages that botocore's
`EventStreamBuffer` parses and checks (botocore/eventstream.py). Each message is

    prelude:  total length (uint32) | headers length (uint32) | CRC32 of those 8 bytes
    headers:  name length (uint8) | name | value type (uint8, 7 = string)
              | value length (uint16) | value
    payload
    CRC32 of everything above

all big-endian. A successful part is an `event` of type `PayloadPart`; a handler failure after the
first part is an `exception` of type `ModelStreamError`, which botocore raises as EventStreamError.
"""

from __future__ import annotations

import json
import struct
from binascii import crc32

CONTENT_TYPE = "application/vnd.amazon.eventstream"
_STRING = 7


def _headers(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        encoded_name = name.encode("utf-8")
        encoded_value = value.encode("utf-8")
        out += struct.pack(">B", len(encoded_name)) + encoded_name
        out += struct.pack(">BH", _STRING, len(encoded_value)) + encoded_value
    return bytes(out)


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One framed message with both checksums."""
    header_bytes = _headers(headers)
    total = 12 + len(header_bytes) + len(payload) + 4
    prelude = struct.pack(">II", total, len(header_bytes))
    prelude += struct.pack(">I", crc32(prelude) & 0xFFFFFFFF)
    body = prelude + header_bytes + payload
    return body + struct.pack(">I", crc32(body) & 0xFFFFFFFF)


def payload_part(data: bytes) -> bytes:
    """A `PayloadPart` event carrying one piece of the model's response."""
    return encode_message(
        {
            ":event-type": "PayloadPart",
            ":content-type": "application/octet-stream",
            ":message-type": "event",
        },
        data,
    )


def model_stream_error(message: str, error_code: str = "ModelStreamError") -> bytes:
    """The in-stream error SageMaker sends when the model fails after it started answering."""
    return encode_message(
        {
            ":exception-type": "ModelStreamError",
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        json.dumps({"Message": message, "ErrorCode": error_code}).encode("utf-8"),
    )


def internal_stream_failure(message: str) -> bytes:
    """The in-stream error for a failure of the runtime itself rather than the model."""
    return encode_message(
        {
            ":exception-type": "InternalStreamFailure",
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        json.dumps({"Message": message}).encode("utf-8"),
    )
