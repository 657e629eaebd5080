"""What made an output PNG, stored inside it: a `tEXt` chunk with key `segviewer` holding JSON

    {"model": name, "version": int | null, "signature": str, "source": backend description,
     "fingerprint": str | null}

This format is a contract: `segviewer-predict --resume` uses it to skip only outputs of the same
model, and prediction folders are read back (review, viewer) by it. Pillow shows the chunk as
`Image.open(path).text["segviewer"]`. `read` parses the chunks before the image data, without
decoding any pixels.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

KEY = "segviewer"
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IHDR_END = len(_SIGNATURE) + 8 + 13 + 4  # signature, IHDR length+type, its 13 bytes, CRC


@dataclass(frozen=True)
class Provenance:
    model: str
    version: int | None
    signature: str
    source: str  # the backend's description, e.g. "gRPC localhost:8500"
    fingerprint: str | None = None  # the SavedModel's fingerprint, when the backend knows it

    def same_model(self, other: Provenance | None) -> bool:
        """Made by the same model, version and signature (the source may differ: replicas)."""
        return other is not None and (self.model, self.version, self.signature) == (
            other.model, other.version, other.signature)


def write(png: bytes, provenance: Provenance) -> bytes:
    """`png` with the provenance chunk inserted after its header."""
    return insert_text(png, KEY, json.dumps(asdict(provenance)))


def insert_text(png: bytes, key: str, text: str) -> bytes:
    """`png` with a `tEXt` chunk `key` holding `text` (Latin-1) inserted after its header."""
    if not png.startswith(_SIGNATURE) or png[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    data = key.encode("latin-1") + b"\x00" + text.encode("latin-1")
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data + struct.pack(
        ">I", zlib.crc32(b"tEXt" + data))
    return png[:_IHDR_END] + chunk + png[_IHDR_END:]


def read(path: str | Path) -> Provenance | None:
    """The provenance stored in the PNG at `path`; None when it has none, is not a PNG, cannot be
    read or holds something else under our key."""
    try:
        with open(path, "rb") as f:
            if f.read(8) != _SIGNATURE:
                return None
            while True:
                head = f.read(8)
                if len(head) < 8:
                    return None
                length, kind = struct.unpack(">I4s", head)
                if kind in (b"IDAT", b"IEND") or length > 1 << 20:
                    return None
                body = f.read(length + 4)
                if kind == b"tEXt" and body.startswith(KEY.encode() + b"\x00"):
                    return _parse(body[len(KEY) + 1:length])
    except OSError:
        return None


def _parse(text: bytes) -> Provenance | None:
    try:
        data = json.loads(text)
        version = data["version"]
        fingerprint = data.get("fingerprint")
        if (not isinstance(data["model"], str) or not isinstance(data["signature"], str)
                or not isinstance(data["source"], str)
                or not (version is None or (isinstance(version, int)
                                            and not isinstance(version, bool)))
                or not (fingerprint is None or isinstance(fingerprint, str))):
            return None
        return Provenance(data["model"], version, data["signature"], data["source"], fingerprint)
    except (ValueError, KeyError, TypeError):
        return None
