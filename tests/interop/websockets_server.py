"""A peer for Tether's interop tests: Python's `websockets` server on 127.0.0.1.

    python websockets_server.py PORT MODE   (PORT 0: a free port; the chosen port is stdout's first line)

MODE is the same as for ws_server.js:
    echo              echoes every message, text as text, binary as binary
    ping:N            also pings every N ms and times the pongs
    close:CODE:K      closes the first connection with CODE after K messages; later ones echo
In every mode the text message "stats?" is answered with
    "stats conns=C pings=P pongs=Q max_pong_ms=M"  (counts over the server's life).
"""

import asyncio
import sys
import time

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: websockets_server.py PORT echo|ping:N|close:CODE:K")
    port = int(sys.argv[1])
    mode = (sys.argv[2] if len(sys.argv) > 2 else "echo").split(":")
    kind = mode[0]
    if kind not in ("echo", "ping", "close"):
        sys.exit("unknown mode %r" % sys.argv[2])
    stats = {"conns": 0, "pings": 0, "pongs": 0, "max_pong_ms": 0}

    async def pinger(ws, every):
        try:
            while True:
                await asyncio.sleep(every)
                stats["pings"] += 1
                sent = time.monotonic()
                waiter = await ws.ping(b"p%d" % stats["pings"])
                await waiter
                stats["pongs"] += 1
                ms = int((time.monotonic() - sent) * 1000)
                stats["max_pong_ms"] = max(stats["max_pong_ms"], ms)
        except (ConnectionClosed, asyncio.CancelledError):
            pass

    async def handler(ws):
        stats["conns"] += 1
        conn = stats["conns"]
        received = 0
        task = asyncio.create_task(pinger(ws, int(mode[1]) / 1000)) if kind == "ping" else None
        try:
            async for message in ws:
                received += 1
                if message == "stats?":
                    await ws.send(
                        "stats conns={conns} pings={pings} pongs={pongs} max_pong_ms={max_pong_ms}".format(**stats)
                    )
                    continue
                await ws.send(message)
                if kind == "close" and conn == 1 and received >= int(mode[2]):
                    await ws.close(int(mode[1]), "interop close")
                    break
        except ConnectionClosed:
            pass
        finally:
            if task:
                task.cancel()

    async def run():
        # No keepalive of its own (ping_interval=None): the ping mode does it, timed.
        async with serve(handler, "127.0.0.1", port, ping_interval=None, max_size=64 << 20) as server:
            print(server.sockets[0].getsockname()[1], flush=True)
            await asyncio.Future()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
