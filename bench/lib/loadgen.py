#!/usr/bin/python3
"""A small SMTP load generator that mimics Postfix's smtp-source.

Used by bench/smtp-throughput when smtp-source is not installed. Like
`smtp-source -s SESSIONS -m MESSAGES -l LENGTH -f FROM -t TO HOST:PORT`: SESSIONS
concurrent sessions, each message on its own connection (EHLO, MAIL, RCPT, DATA,
QUIT) unless reuse is asked for (smtp-source -d), no pipelining, a body of LENGTH
octets. The sessions are spread over a few processes running asyncio, so the
generator is not limited by one Python interpreter.

For submission (bench/relay): --starttls upgrades each connection after EHLO (full
handshake, no resumption, certificate not checked) and says EHLO again; --auth
USER:PASS then logs in with AUTH PLAIN once per connection; -M N closes the
connection after N messages (with -d).

Standalone: loadgen.py [-s 20] [-m 1000] [-l 2048] [-d [-M N]] [--starttls]
            [--auth USER:PASS] [-f FROM] [-t TO] HOST:PORT
"""
import argparse
import asyncio
import base64
import multiprocessing
import os
import ssl
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


def _client_tls():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def _session(host, port, take, sender, rcpt, size, reuse, stats, opts):
    payload = message_bytes(size, sender, rcpt, 0)
    mail = f"MAIL FROM:<{sender}>\r\n".encode()
    rcpt_cmd = f"RCPT TO:<{rcpt}>\r\n".encode()
    tls = _client_tls() if opts.get("starttls") else None
    auth = opts.get("auth")
    per_conn = opts.get("per_conn") or 0
    while take():
        writer = None
        try:
            reader, writer = await asyncio.open_connection(host, port)
            if await _reply(reader) != 220:
                raise RuntimeError("greeting")
            await _cmd(reader, writer, b"EHLO loadgen.localdomain\r\n", 250)
            if tls is not None:
                await _cmd(reader, writer, b"STARTTLS\r\n", 220)
                await writer.start_tls(tls)
                await _cmd(reader, writer, b"EHLO loadgen.localdomain\r\n", 250)
            if auth is not None:
                user, password = auth
                token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
                await _cmd(reader, writer, b"AUTH PLAIN " + token + b"\r\n", 235)
            sent = 0
            while True:
                await _cmd(reader, writer, mail, 250)
                await _cmd(reader, writer, rcpt_cmd, 250)
                await _cmd(reader, writer, b"DATA\r\n", 354)
                await _cmd(reader, writer, payload, 250)
                stats[0] += 1
                sent += 1
                if not reuse or (per_conn and sent >= per_conn) or not take():
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


def _worker(host, port, sessions, counter, total, sender, rcpt, size, reuse, result, opts):
    def take():
        with counter.get_lock():
            if counter.value >= total:
                return False
            counter.value += 1
            return True

    stats = [0, 0]

    async def main():
        await asyncio.gather(*(_session(host, port, take, sender, rcpt, size, reuse, stats,
                                        opts)
                               for _ in range(sessions)))
    asyncio.run(main())
    result.put(tuple(stats))


def run(host, port, sessions=20, messages=1000, size=2048, sender="bench@loadgen.test",
        rcpt="alice@example.test", reuse=False, procs=None, starttls=False, auth=None,
        per_conn=0):
    """Sends messages; returns (accepted, failed, seconds). auth is (user, password)."""
    opts = {"starttls": starttls, "auth": auth, "per_conn": per_conn}
    procs = max(1, min(procs or os.cpu_count() or 1, sessions))
    counter = multiprocessing.Value("q", 0)
    result = multiprocessing.Queue()
    per = [sessions // procs + (1 if i < sessions % procs else 0) for i in range(procs)]
    t0 = time.monotonic()
    ps = [multiprocessing.Process(target=_worker, args=(host, port, n, counter, messages, sender,
                                                         rcpt, size, reuse, result, opts))
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
    ap.add_argument("-M", type=int, default=0, help="with -d: messages per connection")
    ap.add_argument("--starttls", action="store_true", help="STARTTLS after EHLO")
    ap.add_argument("--auth", help="USER:PASS for AUTH PLAIN (after STARTTLS)")
    ap.add_argument("-f", default="bench@loadgen.test")
    ap.add_argument("-t", default="alice@example.test")
    ap.add_argument("target", help="HOST:PORT")
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    auth = tuple(a.auth.split(":", 1)) if a.auth else None
    ok, failed, secs = run(host, int(port), a.s, a.m, a.l, a.f, a.t, a.d, starttls=a.starttls,
                           auth=auth, per_conn=a.M)
    print(f"{ok} accepted, {failed} failed sessions, {secs:.2f} s, {ok / secs:.1f} msg/s")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
