#!/usr/bin/python3
"""The lab's slow link: a TCP proxy that holds every chunk for DELAY ms (+/- JITTER ms,
uniformly) in each direction, keeping each direction's order (a chunk is never delivered
before the one read before it). Used by `tests/lab/lab fault HOST slow`: an iptables DNAT
rule sends new connections to HOST:22 here, and this proxy connects on to the host's sshd
with SO_MARK set, which the DNAT rule lets through. Standard library only.

    delay-proxy.py LISTEN_ADDR LISTEN_PORT TARGET_ADDR TARGET_PORT DELAY_MS JITTER_MS MARK NAME

NAME only tags the command line (the lab finds and stops its proxies by it).
"""

import asyncio
import random
import signal
import socket
import sys
import time


def delay_s(delay_ms: float, jitter_ms: float) -> float:
    return max(0.0, delay_ms + random.uniform(-jitter_ms, jitter_ms)) / 1000.0


async def pipe(reader, writer, delay_ms, jitter_ms):
    """Read chunks as they come; deliver each one DELAY later, in order. EOF travels with
    the same delay (a half-close stays a half-close)."""
    queue: asyncio.Queue = asyncio.Queue()

    async def deliver():
        while True:
            due, chunk = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if chunk is None:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(chunk)
            await writer.drain()

    sender = asyncio.ensure_future(deliver())
    last = 0.0
    try:
        while not sender.done():
            chunk = await reader.read(65536)
            due = max(last, time.monotonic() + delay_s(delay_ms, jitter_ms))
            last = due
            queue.put_nowait((due, chunk or None))
            if not chunk:
                break
        await sender  # raises what ended the delivery, if anything did
    finally:
        sender.cancel()


async def handle(client_r, client_w, target, delay_ms, jitter_ms, mark):
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, target)
        up_r, up_w = await asyncio.open_connection(sock=sock)
    except OSError:
        sock.close()
        client_w.close()
        return
    tasks = [
        asyncio.ensure_future(pipe(client_r, up_w, delay_ms, jitter_ms)),
        asyncio.ensure_future(pipe(up_r, client_w, delay_ms, jitter_ms)),
    ]
    try:
        # both directions to their end; an error on either side (a reset, a write to a
        # closed peer) ends the whole connection
        pending = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if any(t.exception() is not None for t in done):
                break
        for t in pending:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for w in (client_w, up_w):
            w.close()


async def main():
    listen_addr, listen_port, target_addr, target_port, delay_ms, jitter_ms, mark = sys.argv[1:8]  # argv[8]: NAME
    target = (target_addr, int(target_port))
    delay_ms, jitter_ms, mark = float(delay_ms), float(jitter_ms), int(mark, 0)
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, target, delay_ms, jitter_ms, mark),
        listen_addr,
        int(listen_port),
        reuse_address=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    if len(sys.argv) != 9:
        sys.exit(__doc__)
    asyncio.run(main())
