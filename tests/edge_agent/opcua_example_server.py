# mypy: ignore-errors
# (asyncua's example as written, untyped calls and all)
"""The address space of asyncua's ``examples/server-minimal.py``, reproduced for interop tests.

Namespace ``http://examples.freeopcua.github.io``; ``Objects/MyObject/MyVariable`` (Double, 6.7 at
start, writable) counting up by 0.1 each tick; ``Objects/ServerMethod`` (doubles an Int64). Only
the port, the bind address and the tick are ours. Usage: ``opcua_example_server.py PORT TICK_S``.
"""

from __future__ import annotations

import asyncio
import sys

from asyncua import Server, ua
from asyncua.common.methods import uamethod


@uamethod
def func(parent: object, value: int) -> int:
    return value * 2


async def main(port: int, tick_s: float) -> None:
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/freeopcua/server/")
    uri = "http://examples.freeopcua.github.io"
    idx = await server.register_namespace(uri)
    objects = server.get_objects_node()
    myobj = await objects.add_object(idx, "MyObject")
    myvar = await myobj.add_variable(idx, "MyVariable", 6.7)
    await myvar.set_writable()
    await objects.add_method(
        ua.NodeId("ServerMethod", 2),
        ua.QualifiedName("ServerMethod", 2),
        func,
        [ua.VariantType.Int64],
        [ua.VariantType.Int64],
    )
    async with server:
        print("ready", flush=True)
        count = 0.0
        while True:
            await asyncio.sleep(tick_s)
            count += 0.1
            await myvar.write_value(count)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
