#!/usr/bin/python3
"""A receiving SMTP sink with STARTTLS, for relay benchmarks.

It plays the remote MX or smarthost: EHLO advertises PIPELINING, SIZE, 8BITMIME
and STARTTLS (no CHUNKING, no DSN: what a plain receiver offers), every command is
accepted, every message is counted and thrown away. It runs in several processes sharing one port
(SO_REUSEPORT), so the sink is not the bottleneck of what it measures.

Shared counters (multiprocessing.Value): messages received, messages that carried
a DKIM-Signature header field, messages that arrived over TLS. The first message
is also written to SAVE (a file) so the caller can check its signature.

Standalone: tlssink.py --cert C --key K [--procs 2] PORT   (prints counts on ^C)
"""
import argparse
import asyncio
import multiprocessing
import os
import signal
import socket
import ssl
import sys
import time

MAX_LINE = 4096


class Counters:
    def __init__(self):
        self.messages = multiprocessing.Value("q", 0)
        self.signed = multiprocessing.Value("q", 0)
        self.tls = multiprocessing.Value("q", 0)
        self.sessions = multiprocessing.Value("q", 0)

    def reset(self):
        for v in (self.messages, self.signed, self.tls, self.sessions):
            with v.get_lock():
                v.value = 0


class _Session:
    def __init__(self, reader, writer, ctx, counters, save):
        self.r, self.w, self.ctx = reader, writer, ctx
        self.c, self.save = counters, save
        self.tls = False

    async def _data(self):
        """Reads a DATA body up to the lone dot; (has DKIM-Signature, bytes)."""
        lines, in_header, signed = [], True, False
        while True:
            line = await self.r.readline()
            if not line:
                raise ConnectionError("closed in DATA")
            if line == b".\r\n":
                break
            if in_header:
                if line in (b"\r\n", b"\n"):
                    in_header = False
                elif line[:15].lower() == b"dkim-signature:":
                    signed = True
            if self.save is not None:
                lines.append(line[1:] if line.startswith(b"..") else line)
        return signed, b"".join(lines)

    def _ehlo(self):
        ext = ["PIPELINING", "SIZE 104857600", "8BITMIME", "ENHANCEDSTATUSCODES"]
        if not self.tls:
            ext.append("STARTTLS")
        out = ["250-sink.localdomain"] + ["250-" + e for e in ext[:-1]] + ["250 " + ext[-1]]
        return ("\r\n".join(out) + "\r\n").encode()

    async def run(self):
        w = self.w
        w.write(b"220 sink.localdomain ESMTP\r\n")
        with self.c.sessions.get_lock():
            self.c.sessions.value += 1
        while True:
            line = await self.r.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                w.write(self._ehlo())
            elif verb == b"STAR" and not self.tls:
                w.write(b"220 2.0.0 go ahead\r\n")
                await w.drain()
                await w.start_tls(self.ctx)
                self.tls = True
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                w.write(b"250 2.0.0 ok\r\n")
            elif verb == b"DATA":
                w.write(b"354 go ahead\r\n")
                await w.drain()
                signed, data = await self._data()
                with self.c.messages.get_lock():
                    self.c.messages.value += 1
                    first = self.c.messages.value == 1
                if signed:
                    with self.c.signed.get_lock():
                        self.c.signed.value += 1
                if self.tls:
                    with self.c.tls.get_lock():
                        self.c.tls.value += 1
                if first and self.save is not None:
                    with open(self.save, "wb") as f:
                        f.write(data)
                w.write(b"250 2.0.0 queued\r\n")
            elif verb == b"QUIT":
                w.write(b"221 2.0.0 bye\r\n")
                await w.drain()
                return
            else:
                w.write(b"502 5.5.2 not here\r\n")
            await w.drain()


def _serve(sock, cert, key, counters, save):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    async def handle(reader, writer):
        # asyncio sets TCP_NODELAY only on sockets it made with IPPROTO_TCP, not
        # on these: without it, the reply to the second of several pipelined
        # commands would wait for the client's delayed ACK (40 ms).
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await _Session(reader, writer, ctx, counters, save).run()
        except (OSError, ConnectionError, ssl.SSLError, asyncio.IncompleteReadError,
                ValueError):
            pass
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, sock=sock, limit=MAX_LINE * 16)
        async with server:
            await server.serve_forever()

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    asyncio.run(main())


class TlsSink:
    """procs processes serving host:port; stop() ends them."""

    def __init__(self, host, port, cert, key, procs=2, save=None):
        self.host, self.port, self.save = host, port, save
        self.counters = Counters()
        self.procs = []
        for _ in range(procs):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            s.bind((host, port))
            s.listen(1024)
            p = multiprocessing.Process(target=_serve, args=(s, cert, key, self.counters, save),
                                        daemon=True)
            p.start()
            s.close()
            self.procs.append(p)

    @property
    def messages(self):
        return self.counters.messages.value

    @property
    def signed(self):
        return self.counters.signed.value

    @property
    def over_tls(self):
        return self.counters.tls.value

    def pids(self):
        return [p.pid for p in self.procs]

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.join(5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("port", type=int)
    a = ap.parse_args()
    sink = TlsSink(a.host, a.port, a.cert, a.key, a.procs)
    try:
        while True:
            time.sleep(5)
            print(f"{sink.messages} messages, {sink.signed} signed, {sink.over_tls} over TLS",
                  flush=True)
    except KeyboardInterrupt:
        sink.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
