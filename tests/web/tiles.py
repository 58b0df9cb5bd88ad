"""A local XYZ tile server for tests and screenshots: every tile is a generated 256x256 PNG (a
pale ground colour, a street grid and the tile's z/x/y in its colour), so a page's base map can be
exercised without reaching a real tile provider."""

from __future__ import annotations

import re
import struct
import sys
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

TILE_PATH: Final = re.compile(r"/(\d{1,2})/(\d{1,7})/(\d{1,7})\.png")


def png_tile(z: int, x: int, y: int, size: int = 256) -> bytes:
    """A PNG tile: light ground, darker 'streets' every 64 px, tinted by its coordinates."""
    tint = (x * 37 + y * 11 + z * 5) % 24
    ground = bytes((236 - tint // 2, 233, 224 - tint // 3))
    street = bytes((255, 255, 255))
    edge = bytes((200, 196, 186))
    rows = []
    for j in range(size):
        row = bytearray(b"\x00")
        for i in range(size):
            if i % 64 in (30, 31, 32, 33) or j % 64 in (30, 31, 32, 33):
                row += street
            elif i % 64 in (29, 34) or j % 64 in (29, 34):
                row += edge
            else:
                row += ground
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


class _Tiles(BaseHTTPRequestHandler):
    served = 0

    def do_GET(self) -> None:
        found = TILE_PATH.fullmatch(self.path)
        if found is None:
            self.send_error(404)
            return
        body = png_tile(*(int(v) for v in found.groups()))
        type(self).served += 1
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        return


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # A browser that no longer needs a tile closes the connection mid-answer: not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@contextmanager
def tile_server() -> Iterator[str]:
    """Serve tiles on a free loopback port; yields the XYZ URL template."""
    server = _Server(("127.0.0.1", 0), _Tiles)
    thread = threading.Thread(target=server.serve_forever, name="tiles")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{{z}}/{{x}}/{{y}}.png"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
