"""Re-export of :mod:`settings.ports`, where the shared argument types and port checks live."""

from settings.ports import (
    PortBusyError,
    PortChoice,
    bind_error,
    choose_port,
    free_port,
    listen_socket,
    non_negative_float,
    port_arg,
    positive_float,
    positive_int,
)

__all__ = [
    "PortBusyError",
    "PortChoice",
    "bind_error",
    "choose_port",
    "free_port",
    "listen_socket",
    "non_negative_float",
    "port_arg",
    "positive_float",
    "positive_int",
]
