"""Checks for chart PNGs: valid images (read back with matplotlib)."""

from __future__ import annotations

import io

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(data: bytes, *, min_size: int = 100) -> tuple[int, int]:
    """`data` is a PNG that decodes; returns its (height, width) in pixels."""
    from matplotlib import image

    assert data.startswith(PNG_MAGIC)
    pixels = image.imread(io.BytesIO(data), format="png")
    height, width = pixels.shape[:2]
    assert height >= min_size and width >= min_size
    return height, width
