"""A peer for Tether's interop tests: Python's `websockets` server on 127.0.0.1.

    python websockets_server.py PORT MODE [COMPRESSION]
        (PORT 0: a free port; the chosen port is stdout's first line)

MODE is the same as for ws_server.js:
    echo              echoes every message, text as text, binary as binary
    ping:N            also pings every N ms and times the pongs
    close:CODE:K      closes the first connection with CODE after K messages; later ones echo
    jsonrpc           a JSON-RPC 2.0 server (see jsonrpc_answer): methods echo, add, slow (answers
                      after params[0] ms, other requests meanwhile); says {"method":"hello"} first
COMPRESSION (permessage-deflate, when the client offers it):
    default           websockets' default (on, with its window settings)
    plain             off: the offer is declined
    nct               on, without context takeover in either direction (imposed on the client)
In every mode the text message "stats?" is answered with
    "stats conns=C pings=P pongs=Q max_pong_ms=M deflate=D wire_in=I wire_out=O"
(counts over the server's life; D is 1 when this connection negotiated permessage-deflate; I and O
are the bytes this connection read and wrote on the wire so far).
"""

import asyncio
import json
import sys
import time

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory


async def jsonrpc_answer(ws, message):
    """Answers one JSON-RPC 2.0 request (notifications, without an id, get no answer)."""
    try:
        req = json.loads(message)
    except ValueError:
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}))
        return
    if "id" not in req:
        return
    method, params = req.get("method"), req.get("params", [])
    if method == "echo":
        answer = {"result": params}
    elif method == "add":
        answer = {"result": sum(params)}
    elif method == "slow":
        await asyncio.sleep(params[0] / 1000)
        answer = {"result": "done"}
    else:
        answer = {"error": {"code": -32601, "message": "Method not found"}}
    answer.update({"jsonrpc": "2.0", "id": req["id"]})
    try:
        await ws.send(json.dumps(answer))
    except ConnectionClosed:
        pass


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: websockets_server.py PORT echo|ping:N|close:CODE:K|jsonrpc")
    port = int(sys.argv[1])
    mode = (sys.argv[2] if len(sys.argv) > 2 else "echo").split(":")
    kind = mode[0]
    if kind not in ("echo", "ping", "close", "jsonrpc"):
        sys.exit("unknown mode %r" % sys.argv[2])
    compression = sys.argv[3] if len(sys.argv) > 3 else "default"
    if compression == "default":
        options = {}
    elif compression == "plain":
        options = {"compression": None}
    elif compression == "nct":
        factory = ServerPerMessageDeflateFactory(server_no_context_takeover=True, client_no_context_takeover=True)
        options = {"compression": None, "extensions": [factory]}
    else:
        sys.exit("unknown compression %r" % compression)
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

    def count_wire(ws):
        """Counts the bytes of this connection on the wire, at its sans-IO protocol's edges."""
        wire = {"in": 0, "out": 0}
        receive, to_send = ws.protocol.receive_data, ws.protocol.data_to_send

        def receive_data(data):
            wire["in"] += len(data)
            return receive(data)

        def data_to_send():
            out = to_send()
            wire["out"] += sum(len(d) for d in out)
            return out

        ws.protocol.receive_data, ws.protocol.data_to_send = receive_data, data_to_send
        return wire

    async def jsonrpc(ws):
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "hello", "params": {"conn": stats["conns"]}}))
        async for message in ws:
            if message == "stats?":
                await ws.send("stats conns={conns} pings={pings} pongs={pongs} max_pong_ms={max_pong_ms}".format(**stats))
                continue
            asyncio.create_task(jsonrpc_answer(ws, message))

    async def handler(ws):
        wire = count_wire(ws)
        if kind == "jsonrpc":
            stats["conns"] += 1
            try:
                await jsonrpc(ws)
            except ConnectionClosed:
                pass
            return
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
                        + " deflate=%d wire_in=%d wire_out=%d"
                        % (1 if ws.protocol.extensions else 0, wire["in"], wire["out"])
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
        async with serve(handler, "127.0.0.1", port, ping_interval=None, max_size=64 << 20, **options) as server:
            print(server.sockets[0].getsockname()[1], flush=True)
            await asyncio.Future()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
