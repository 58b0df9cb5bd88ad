"""Command-line argument types and listen-port checks shared by the ``parkwatch`` commands.

Standard library only: the edge-only install imports the command modules that use it.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path


def port_arg(text: str) -> int:
    """An argparse type: a TCP port 1-65535, or 0 for any free port."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a port number: use 1-65535, or 0 for any free port"
        ) from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port: use 1-65535, or 0 for any free port")
    return port


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number above 0."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be above 0")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number of at least 0."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be 1 or more")
    return value


class PortBusyError(Exception):
    """A port that was asked for explicitly is taken (the message is one line for the user)."""


@dataclass(frozen=True, slots=True)
class PortChoice:
    """The port to listen on and, when it is not the one asked for, why."""

    port: int
    note: str = ""


def bind_error(host: str, port: int) -> OSError | None:
    """Why ``host:port`` cannot be listened on right now, or None when it can."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc
    return None


def free_port(host: str) -> int:
    """A port that was free on ``host`` a moment ago."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def choose_port(host: str, requested: int | None, *, default: int, what: str, option: str) -> PortChoice:
    """The port for ``what``: ``requested`` (None: ``default``), checked before anything starts.

    0 means any free port. A busy default is replaced by a free port, with a note saying so; a
    port asked for explicitly that is busy raises :class:`PortBusyError`, since the user meant it.
    """
    if requested == 0:
        return PortChoice(free_port(host))
    port = default if requested is None else requested
    why = bind_error(host, port)
    if why is None:
        return PortChoice(port)
    busy = why.errno == errno.EADDRINUSE
    if requested is not None or not busy:
        reason = "is already in use" if busy else f"cannot be used ({why.strerror or why})"
        raise PortBusyError(f"{what} port {host}:{port} {reason}; pass another {option} (0 = any free port)")
    chosen = free_port(host)
    return PortChoice(chosen, f"{what} port {port} is in use, using {chosen} instead (choose with {option})")


def listen_socket(host: str, port: int, *, what: str, option: str) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0: any free port) for a server to serve on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        busy = exc.errno == errno.EADDRINUSE
        reason = "is already in use" if busy else f"cannot be used ({exc.strerror or exc})"
        raise PortBusyError(
            f"{what} port {host}:{port} {reason}; pass another {option} (0 = any free port)"
        ) from None
    return sock


def write_port_file(path: Path, port: int) -> None:
    """Write ``port`` and a newline to ``path``, atomically: a reader never sees half a number.

    For a process that listens on any free port (port 0): whoever starts it reads the port here.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{port}\n")
    os.replace(tmp, path)
