"""Logo images as the server keeps them: PNG or JPEG in, a PNG without metadata out.

An upload is checked before it is decoded: at most `MAX_LOGO_BYTES`, a PNG or JPEG signature,
and a size read from the header of at most `MAX_SIDE` pixels a side, so a small file that would
decode into a huge bitmap (a decompression bomb) is refused before any pixel is drawn. Whatever
Pillow cannot decode in full (a truncated file, garbage after a PNG signature) is refused too.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from tenantry.errors import InvalidInput, PayloadTooLarge

MAX_LOGO_BYTES = 1024 * 1024
MAX_SIDE = 4000
# Logos are shown at most this tall; taller ones are scaled down (their width with them).
MAX_HEIGHT = 256
MAX_WIDTH = 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"

# Pillow's own bomb guard, at the largest image a logo may be: anything larger fails loudly even
# if a header lied about its size.
Image.MAX_IMAGE_PIXELS = MAX_SIDE * MAX_SIDE


@dataclass(frozen=True)
class Logo:
    data: bytes
    sha256: str
    width: int
    height: int


def _refused(why: str) -> InvalidInput:
    return InvalidInput(f"logo: {why}", field="logo")


def reencode(upload: bytes) -> Logo:
    """The upload as a PNG logo, or a refusal naming why (413 over 1 MB, else 422)."""
    if len(upload) > MAX_LOGO_BYTES:
        raise PayloadTooLarge(f"A logo may be at most {MAX_LOGO_BYTES:,} bytes; this one is {len(upload):,}.")
    if not upload:
        raise _refused("the image is empty; send a PNG or JPEG file.")
    if upload.startswith(PNG_SIGNATURE):
        kind = "PNG"
    elif upload.startswith(JPEG_SIGNATURE):
        kind = "JPEG"
    else:
        raise _refused("only PNG and JPEG images are accepted.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(upload), formats=[kind])
            width, height = opened.size  # read from the header: nothing is decoded yet
            if width < 1 or height < 1 or width > MAX_SIDE or height > MAX_SIDE:
                raise _refused(
                    f"the image is {width}×{height} pixels; at most {MAX_SIDE}×{MAX_SIDE} are accepted."
                )
            if kind == "JPEG":
                # Decode JPEGs at a reduced scale when they will be scaled down anyway (far less work).
                opened.draft("RGB", (MAX_WIDTH, MAX_HEIGHT))
            opened.load()
            image: Image.Image = ImageOps.exif_transpose(opened)
            if image.mode not in ("RGB", "RGBA", "L", "LA"):
                image = image.convert("RGBA" if "A" in image.mode or "transparency" in image.info else "RGB")
            if image.height > MAX_HEIGHT or image.width > MAX_WIDTH:
                image.thumbnail((MAX_WIDTH, MAX_HEIGHT), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            # A new PNG with only pixels: no EXIF, text chunks, ICC profile or comments carried over.
            image.save(out, format="PNG", optimize=False)
    except InvalidInput:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        MemoryError,
    ):
        raise _refused(f"the file is not a complete {kind} image.") from None
    data = out.getvalue()
    return Logo(data, hashlib.sha256(data).hexdigest(), image.width, image.height)
