"""A minimal PNG writer (8-bit RGB, no interlace) with zlib and struct, plus a 3x5 bitmap font."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

_FONT: Final[dict[str, str]] = {
    "A": "010101111101101", "B": "110101110101110", "C": "011100100100011", "D": "110101101101110",
    "E": "111100110100111", "F": "111100110100100", "G": "011100101101011", "H": "101101111101101",
    "I": "111010010010111", "J": "001001001101010", "K": "101101110101101", "L": "100100100100111",
    "M": "101111111101101", "N": "110101101101101", "O": "010101101101010", "P": "110101110100100",
    "Q": "010101101111011", "R": "110101110101101", "S": "011100010001110", "T": "111010010010010",
    "U": "101101101101111", "V": "101101101101010", "W": "101101111111101", "X": "101101010101101",
    "Y": "101101010010010", "Z": "111001010100111", "0": "111101101101111", "1": "010110010010111",
    "2": "110001010100111", "3": "110001010001110", "4": "101101111001001", "5": "111100110001110",
    "6": "011100111101111", "7": "111001010010010", "8": "111101111101111", "9": "111101111001110",
    "-": "000000111000000", " ": "000000000000000", "/": "001001010100100", ".": "000000000000010",
    "(": "010100100100010", ")": "010001001001010", ":": "000010000010000",
}  # fmt: skip


def write_png(path: str | Path, rgb: npt.NDArray[np.uint8]) -> None:
    """Write an (height, width, 3) uint8 array as a PNG file."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )
    Path(path).write_bytes(png)


def draw_text(
    img: npt.NDArray[np.uint8], x: int, y: int, text: str, color: tuple[int, int, int], scale: int = 2
) -> None:
    """Draw upper-cased ``text`` with its top-left corner at (x, y); unknown characters are blanks."""
    for i, ch in enumerate(text.upper()):
        bits = _FONT.get(ch, _FONT[" "])
        for k, bit in enumerate(bits):
            if bit == "1":
                cy = y + (k // 3) * scale
                cx = x + i * 4 * scale + (k % 3) * scale
                img[max(0, cy) : cy + scale, max(0, cx) : cx + scale] = color


def text_width(text: str, scale: int = 2) -> int:
    """Width in pixels of ``text`` drawn with :func:`draw_text`."""
    return len(text) * 4 * scale - scale
