"""Pictures for the branding tests, made with Pillow (and a few made by hand to be hostile)."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def png(
    width: int = 120, height: int = 40, colour: tuple[int, int, int] = (200, 30, 30), **save: object
) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG", **save)
    return out.getvalue()


def jpeg(width: int = 120, height: int = 40, **save: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (20, 120, 200)).save(out, format="JPEG", **save)
    return out.getvalue()


def gif() -> bytes:
    out = io.BytesIO()
    Image.new("P", (10, 10)).save(out, format="GIF")
    return out.getvalue()


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>'


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def bomb(side: int = 20_000) -> bytes:
    """A small PNG whose header says side×side pixels (a decompression bomb: zeros compress ~1000:1)."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit greyscale
    row = b"\x00" + b"\x00" * side
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(200)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def png_header_with_garbage() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"this is not a png at all" * 10


def big_noise_png(target: int = 1_100_000) -> bytes:
    """A valid PNG larger than 1 MB (random pixels do not compress)."""
    import os

    side = int((target / 3) ** 0.5) + 10
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=0)
    return out.getvalue()
