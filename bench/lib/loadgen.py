#!/usr/bin/python3
"""A small SMTP load generator that mimics Postfix's smtp-source.

Used by bench/smtp-throughput when smtp-source is not installed. Like
`smtp-source -s SESSIONS -m MESSAGES -l LENGTH -f FROM -t TO HOST:PORT`: SESSIONS
concurrent sessions, each message on its own connection (EHLO, MAIL, RCPT, DATA,
QUIT) unless reuse is asked for (smtp-source -d), no pipelining, a body of LENGTH
octets. The sessions are spread over a few processes running asyncio, so the
generator is not limited by one Python interpreter.

Standalone: loadgen.py [-s 20] [-m 1000] [-l 2048] [-d] [-f FROM] [-t TO] HOST:PORT
"""
import argparse
import asyncio
import multiprocessing
import os
import sys
import time


def message_bytes(size, sender, rcpt, n):
    head = (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: loadgen {n}\r\n"
            f"Message-Id: <{n}.{os.getpid()}.{time.time_ns()}@loadgen>\r\n\r\n").encode()
    line = b"La La La La La La La La La La La La La La La La La La La La La La La La\r\n"
    body = (line * (size // len(line) + 1))[:max(0, size - 2)] + b"\r\n"
    return head + body + b".\r\n"


async def _reply(reader):
    """Code of one (possibly multi-line) reply."""
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("connection closed")
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3])


async def _cmd(reader, writer, data, want):
    writer.write(data)
    code = await _reply(reader)
    if code != want:
        raise RuntimeError(f"{data[:10]!r} -> {code}")


async def _session(host, port, take, sender, rcpt, size, reuse, stats):
    payload = message_bytes(size, sender, rcpt, 0)
    mail = f"MAIL FROM:<{sender}>\r\n".encode()
    rcpt_cmd = f"RCPT TO:<{rcpt}>\r\n".encode()
    while take():
        writer = None
        try:
            reader, writer = await asyncio.open_connection(host, port)
            if await _reply(reader) != 220:
                raise RuntimeError("greeting")
            await _cmd(reader, writer, b"EHLO loadgen.localdomain\r\n", 250)
            while True:
                await _cmd(reader, writer, mail, 250)
                await _cmd(reader, writer, rcpt_cmd, 250)
                await _cmd(reader, writer, b"DATA\r\n", 354)
                await _cmd(reader, writer, payload, 250)
                stats[0] += 1
                if not reuse or not take():
                    break
            writer.write(b"QUIT\r\n")
            await _reply(reader)
        except (OSError, RuntimeError, ConnectionError, ValueError):
            stats[1] += 1
        finally:
            if writer is not None:
                writer.close()
                try:
                    await writer.wait_closed()
                except OSError:
                    pass


def _worker(host, port, sessions, counter, total, sender, rcpt, size, reuse, result):
    def take():
        with counter.get_lock():
            if counter.value >= total:
                return False
            counter.value += 1
            return True

    stats = [0, 0]

    async def main():
        await asyncio.gather(*(_session(host, port, take, sender, rcpt, size, reuse, stats)
                               for _ in range(sessions)))
    asyncio.run(main())
    result.put(tuple(stats))


def run(host, port, sessions=20, messages=1000, size=2048, sender="bench@loadgen.test",
        rcpt="alice@example.test", reuse=False, procs=None):
    """Sends messages; returns (accepted, failed, seconds)."""
    procs = max(1, min(procs or os.cpu_count() or 1, sessions))
    counter = multiprocessing.Value("q", 0)
    result = multiprocessing.Queue()
    per = [sessions // procs + (1 if i < sessions % procs else 0) for i in range(procs)]
    t0 = time.monotonic()
    ps = [multiprocessing.Process(target=_worker, args=(host, port, n, counter, messages, sender,
                                                         rcpt, size, reuse, result))
          for n in per]
    for p in ps:
        p.start()
    ok = failed = 0
    for _ in ps:
        a, b = result.get()
        ok, failed = ok + a, failed + b
    for p in ps:
        p.join()
    return ok, failed, time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-s", type=int, default=20, help="concurrent sessions")
    ap.add_argument("-m", type=int, default=1000, help="messages")
    ap.add_argument("-l", type=int, default=2048, help="body length")
    ap.add_argument("-d", action="store_true", help="reuse connections")
    ap.add_argument("-f", default="bench@loadgen.test")
    ap.add_argument("-t", default="alice@example.test")
    ap.add_argument("target", help="HOST:PORT")
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    ok, failed, secs = run(host, int(port), a.s, a.m, a.l, a.f, a.t, a.d)
    print(f"{ok} accepted, {failed} failed sessions, {secs:.2f} s, {ok / secs:.1f} msg/s")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
