"""Designs in a URL: the ``design`` query parameter.

The encoding is the design's JSON (``dump_design``), compressed with zlib (level 9), then base64url-encoded
(RFC 4648 section 5, alphabet ``A-Z a-z 0-9 - _``) with the ``=`` padding removed. Decoding accepts the
text with or without padding and checks the design like any design file.
"""

from __future__ import annotations

import base64
import binascii
import zlib

from builder.design import MAX_DESIGN_CHARS, Design, DesignError, dump_design, load_design

# A design link larger than this once inflated is refused, as a design file of that size is: none comes near it.
MAX_JSON_BYTES = MAX_DESIGN_CHARS
# Longer link text is refused before it is decoded: base64 of the largest design, even incompressible, is shorter.
MAX_LINK_CHARS = 2 * MAX_JSON_BYTES


def encode_design(design: Design) -> str:
    """The design as URL-safe text: zlib-compressed JSON, base64url without padding."""
    packed = zlib.compress(dump_design(design).encode("utf-8"), level=9)
    return base64.urlsafe_b64encode(packed).decode("ascii").rstrip("=")


def decode_design(text: str) -> Design:
    """Read a design from :func:`encode_design` text; raise DesignError saying what is wrong with the link."""
    if not isinstance(text, str):
        raise DesignError(f"design link: the 'design' parameter must be text, not {type(text).__name__}")
    if len(text) > MAX_LINK_CHARS:
        raise DesignError(f"design link: the link is {len(text):,} characters long; at most {MAX_LINK_CHARS:,}")
    text = text.strip()
    if not text:
        raise DesignError("design link: the 'design' parameter is empty")
    try:
        packed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise DesignError("design link: the 'design' parameter is not base64url text; copy the whole link") from None
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(packed, MAX_JSON_BYTES)
    except zlib.error:
        raise DesignError("design link: the 'design' parameter is cut or corrupted; copy the whole link") from None
    if inflater.unconsumed_tail:
        raise DesignError(f"design link: the design is larger than {MAX_JSON_BYTES} bytes")
    if not inflater.eof:
        raise DesignError("design link: the 'design' parameter is cut short; copy the whole link")
    try:
        json_text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DesignError("design link: the 'design' parameter does not hold design JSON") from None
    try:
        return load_design(json_text)
    except DesignError as error:
        raise DesignError(f"design link: {error}") from None
