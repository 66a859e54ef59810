#!/usr/bin/env python3
"""A small TCP proxy for network faults between two loopback endpoints.

The kernel of this machine kind has no netem qdisc, so tests put this proxy
between a node and what it talks to (PostgreSQL, another node) to delay,
stall or cut the traffic:

  tcpproxy.py --listen 127.0.0.1:0 --target 127.0.0.1:5432 \
      --port-file P [--delay-ms D] [--max-seconds N]

  SIGUSR1  stall: stop passing bytes in both directions (connections stay
           open and bytes are buffered, like a partition that drops every
           packet while TCP keeps retrying); new connections are accepted
           but pass nothing either
  SIGUSR2  heal: pass everything buffered, in order, and carry on
  SIGHUP   cut: close every open connection (new ones are accepted)

--delay-ms holds every chunk that long before passing it on (in order, per
direction). The proxy listens on loopback only and exits by itself after
--max-seconds (default 600), so a test that dies cannot leave it behind.
Every state change is printed on stdout with a timestamp.
"""
import argparse
import asyncio
import signal
import sys
import time


def log(msg):
    print(f"{time.time():.3f} tcpproxy: {msg}", flush=True)


class Proxy:
    def __init__(self, target, delay_s):
        self.target = target
        self.delay_s = delay_s
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.conns = set()

    async def pump(self, reader, writer):
        """Read from reader, hold each chunk delay_s, pass it while flowing."""
        queue = asyncio.Queue()

        async def read_side():
            try:
                while True:
                    data = await reader.read(65536)
                    await queue.put((time.monotonic() + self.delay_s, data))
                    if not data:
                        return
            except (ConnectionError, asyncio.CancelledError):
                await queue.put((0, b""))

        task = asyncio.ensure_future(read_side())
        try:
            while True:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self.flowing.wait()
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            task.cancel()
            try:
                writer.close()
            except Exception:
                pass

    async def handle(self, c_reader, c_writer):
        host, port = self.target
        try:
            s_reader, s_writer = await asyncio.open_connection(host, port)
        except OSError as e:
            log(f"cannot reach {host}:{port}: {e}")
            c_writer.close()
            return
        pair = (c_writer, s_writer)
        self.conns.add(pair)
        try:
            await asyncio.gather(self.pump(c_reader, s_writer), self.pump(s_reader, c_writer))
        except asyncio.CancelledError:
            pass  # the proxy is stopping
        finally:
            self.conns.discard(pair)

    def stall(self):
        self.flowing.clear()
        log("stalled")

    def heal(self):
        self.flowing.set()
        log("healed")

    def cut(self):
        for a, b in list(self.conns):
            for w in (a, b):
                try:
                    w.transport.abort()
                except Exception:
                    pass
        log(f"cut {len(self.conns)} connection(s)")


def hostport(text):
    host, _, port = text.rpartition(":")
    if not host.startswith("127."):
        raise argparse.ArgumentTypeError("loopback addresses (127.0.0.0/8) only")
    return host, int(port)


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", type=hostport, required=True)
    ap.add_argument("--target", type=hostport, required=True)
    ap.add_argument("--port-file")
    ap.add_argument("--delay-ms", type=float, default=0.0)
    ap.add_argument("--max-seconds", type=float, default=600.0)
    args = ap.parse_args()

    proxy = Proxy(args.target, args.delay_ms / 1000.0)
    server = await asyncio.start_server(proxy.handle, args.listen[0], args.listen[1])
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, proxy.stall)
    loop.add_signal_handler(signal.SIGUSR2, proxy.heal)
    loop.add_signal_handler(signal.SIGHUP, proxy.cut)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        import os

        os.rename(args.port_file + ".tmp", args.port_file)
    log(f"listening on {args.listen[0]}:{port} -> {args.target[0]}:{args.target[1]}, "
        f"delay {args.delay_ms} ms")
    try:
        await asyncio.wait_for(stop.wait(), timeout=args.max_seconds)
    except asyncio.TimeoutError:
        log("max-seconds reached")
    server.close()
    proxy.heal()
    proxy.cut()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
