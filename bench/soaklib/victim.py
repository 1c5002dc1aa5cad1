"""A client that the soak kills with SIGKILL: connected, subscribed, reading, never saying goodbye.

    python -m bench.soaklib.victim URL PATH [PATH ...]

Prints "VICTIM-READY <n>" once its subscription to the given NodeId paths exists, then reads them every second
until killed; the server sees the TCP connection drop without CloseSession (the abrupt disconnection of a
third-party client or a console whose machine died).
"""

from __future__ import annotations

import asyncio
import sys

from asyncua import Client, ua

READY = "VICTIM-READY"


class _Ignore:
    def datachange_notification(self, node: object, val: object, data: object) -> None:
        """Changes are not looked at: the point is the server's side of the connection."""


async def run(url: str, paths: list[str]) -> None:
    from scada.catalog import NAMESPACE_URI

    client = Client(url, timeout=30, watchdog_intervall=30)
    await client.connect()
    ns = await client.get_namespace_index(NAMESPACE_URI)
    nodes = [client.get_node(ua.NodeId(path, ns)) for path in paths]
    subscription = await client.create_subscription(500, _Ignore())
    await subscription.subscribe_data_change(nodes, queuesize=1)
    print(f"{READY} {len(nodes)}", flush=True)
    while True:
        await client.read_values(nodes)
        await asyncio.sleep(1.0)


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1], sys.argv[2:]))
