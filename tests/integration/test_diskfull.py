"""A full disk: the spool and the mail store on a small tmpfs.

Promise under test: when the disk is full, Rampart answers 452 4.3.1 (RFC 3463
§3.4, "Mail system full"; RFC 5321 §4.2.2's 452 "insufficient system storage"),
stays up, keeps nothing partial, and loses nothing it accepted with 250: once
space is freed, every accepted message is delivered intact and exactly once.

The tmpfs is mounted by the test (we run as root; without the right to mount the
tests are skipped). Only spool_dir and mail_dir live on it; the directory
database stays on the ordinary disk so that recipient lookups keep working.
"""
import errno
import os
import random
import re
import smtplib
import socket
import subprocess
import time

import pytest

USER = "alice@example.test"
SENDER = "filler@remote.test"


@pytest.fixture
def tmpfs(tmp_path):
    """mount(name, **options) -> the path of a fresh tmpfs; unmounted at teardown.

    Request this fixture before make_server, so that it is torn down after the
    servers have been stopped."""
    mounted = []

    def mount(name="small", **options):
        d = tmp_path / name
        d.mkdir()
        opts = ",".join(f"{k}={v}" for k, v in options.items()) or "size=3m"
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(d)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs ({opts}): {r.stderr.strip() or r.returncode}")
        mounted.append(d)
        return d
    yield mount
    for d in reversed(mounted):
        if subprocess.run(["umount", str(d)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(d)], capture_output=True)


def server_on(make_server, fs):
    """A rampartd whose spool and mail store are on fs."""
    spool, mail = fs / "spool", fs / "mail"
    r = make_server(settings={"spool_dir": f'"{spool}"', "mail_dir": f'"{mail}"'}, start=False)
    r.spool, r.mail = spool, mail     # where the harness looks
    return r.start()


def body_lines(token, kib):
    rng = random.Random(token)
    n = kib * 1024 // 100
    return [f"{token} {i:05d} " + "".join(rng.choice("abcdefghij") for _ in range(70)) +
            "." * (100 - 2 - len(token) - 7 - 70) for i in range(n)]


def message(token, kib):
    head = [f"From: <{SENDER}>", f"To: <{USER}>", f"Subject: diskfull {token}",
            f"Message-ID: <{token}@diskfull.test>"]
    return "\r\n".join(head + [""] + body_lines(token, kib)) + "\r\n"


def send(port, token, kib):
    """(stage, code, text) of one message on its own connection; stage is where it
    ended: 'done' for a reply to the end of DATA, else the command refused."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.ehlo("diskfull.test")
        code, text = s.mail(SENDER)
        if code != 250:
            return "MAIL", code, text.decode()
        code, text = s.rcpt(USER)
        if code != 250:
            return "RCPT", code, text.decode()
        try:
            code, text = s.data(message(token, kib))
        except smtplib.SMTPDataError as e:
            return "DATA", e.smtp_code, e.smtp_error.decode()
        return "done", code, text.decode()


def send_bdat(port, token, kib, chunks=3):
    """One message in BDAT chunks (RFC 3030) on its own connection; the reply
    lines to each BDAT."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        f = s.makefile("rb")

        def reply():
            while True:
                line = f.readline()
                if line[3:4] != b"-":
                    return line.decode().strip()
        reply()
        for cmd in (b"EHLO diskfull.test", f"MAIL FROM:<{SENDER}>".encode(),
                    f"RCPT TO:<{USER}>".encode()):
            s.sendall(cmd + b"\r\n")
            assert reply().startswith("250"), cmd
        data = message(token, kib).encode()
        step = len(data) // chunks + 1
        replies = []
        for i in range(0, len(data), step):
            part, last = data[i:i + step], i + step >= len(data)
            s.sendall(b"BDAT %d%s\r\n" % (len(part), b" LAST" if last else b"") + part)
            replies.append(reply())
        s.sendall(b"QUIT\r\n")
        return replies


def delivered(server, kib):
    """{token: count} in alice's Maildir; AssertionError on a damaged copy."""
    counts = {}
    for sub in ("new", "cur"):
        d = server.maildir("alice") / sub
        for f in (d.iterdir() if d.exists() else []):
            data = f.read_bytes()
            m = re.search(rb"^Subject: diskfull (\S+)$", data, re.M)
            assert m, f"{f.name}: not one of ours"
            token = m.group(1).decode()
            body = data.split(b"\n\n", 1)[1]
            assert body == ("\n".join(body_lines(token, kib)) + "\n").encode(), \
                f"{token}: delivered body differs from what was sent ({len(body)} octets)"
            counts[token] = counts.get(token, 0) + 1
    return counts


def spool_files(server, sub):
    d = server.spool / sub
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def wait_until(pred, timeout, what, server):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout}s\n" + server.log_text()[-4000:])


def assert_still_serving(server):
    assert server.proc.poll() is None, "rampartd died:\n" + server.log_text()[-4000:]
    with smtplib.SMTP("127.0.0.1", server.ports["mx"], timeout=10) as s:
        assert s.noop()[0] == 250


def test_full_disk_gives_452_and_loses_nothing(tmpfs, make_server):
    """3 MiB tmpfs with a 1 MiB filler file; 200 KiB messages until the server
    refuses one. Messages that got 250 but could not be delivered for lack of space
    wait in the queue; after the filler is removed they are all delivered."""
    kib = 200
    fs = tmpfs(size="3m")
    filler = fs / "filler"
    filler.write_bytes(os.urandom(1 << 20))
    server = server_on(make_server, fs)
    port = server.ports["mx"]

    accepted, refusal = [], None
    for i in range(60):
        token = f"m{i:03d}"
        stage, code, text = send(port, token, kib)
        if stage == "done" and code == 250:
            accepted.append(token)
            continue
        refusal = (token, stage, code, text)
        break
    assert refusal is not None, "a 3 MiB file system took 60 messages of 200 KiB"
    token, stage, code, text = refusal
    assert (code, text.split()[0]) == (452, "4.3.1"), f"{token} refused at {stage}: {code} {text}"
    # Enough went through to fill the Maildir and leave at least one in the queue.
    assert len(accepted) >= 5, accepted
    print(f"\n{len(accepted)} accepted, then {token} refused at {stage}: {code} {text}")

    assert_still_serving(server)
    # A second attempt while still full is refused the same way, not with a 5xx.
    stage, code, text = send(port, "again", kib)
    assert (code, text.split()[0]) == (452, "4.3.1"), f"second try: {stage} {code} {text}"
    # Nothing partial is kept: the refused spool files are gone.
    wait_until(lambda: not spool_files(server, "incoming"), 5,
               "spool/incoming still holds a refused message", server)

    # Free space: every accepted message gets delivered, once, intact.
    filler.unlink()
    wait_until(lambda: len(delivered(server, kib)) >= len(accepted), 30,
               f"{len(accepted)} accepted messages not all delivered", server)
    wait_until(lambda: not spool_files(server, "queue"), 15, "spool/queue not empty", server)
    counts = delivered(server, kib)
    assert counts == {t: 1 for t in accepted}, counts
    assert not spool_files(server, "incoming")
    assert not list((server.maildir("alice") / "tmp").iterdir()), "partial files in Maildir/tmp"

    # And mail flows again.
    assert send(port, "after", kib)[1] == 250
    server.wait_messages("alice", len(accepted) + 1)
    assert delivered(server, kib)["after"] == 1


def test_no_inodes_left_gives_452_at_data(tmpfs, make_server):
    """With the inodes exhausted the queue cannot create a spool file: the
    refusal comes at DATA, before 354, and is 452 4.3.1 as well."""
    kib = 4
    fs = tmpfs(size="16m", nr_inodes="64")
    server = server_on(make_server, fs)
    port = server.ports["mx"]
    assert send(port, "first", kib)[1] == 250      # creates the Maildir
    server.wait_messages("alice", 1)
    wait_until(lambda: not spool_files(server, "queue"), 10, "spool/queue not empty", server)

    fillers = []
    while True:
        f = fs / f"filler{len(fillers)}"
        try:
            f.touch()
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
            break
        fillers.append(f)
        assert len(fillers) < 100, "nr_inodes is not enforced"

    stage, code, text = send(port, "refused", kib)
    assert (stage, code, text.split()[0]) == ("DATA", 452, "4.3.1"), (stage, code, text)
    assert_still_serving(server)

    for f in fillers[:8]:
        f.unlink()
    assert send(port, "second", kib)[1] == 250
    server.wait_messages("alice", 2)
    assert delivered(server, kib) == {"first": 1, "second": 1}
    wait_until(lambda: not spool_files(server, "queue"), 10, "spool/queue not empty", server)
    assert not spool_files(server, "incoming")


def test_full_disk_bdat_gives_452(tmpfs, make_server):
    """The same with BDAT: the refusal comes with the LAST chunk (earlier chunks
    may be acknowledged, RFC 3030 §2), and what got 250 is delivered."""
    kib = 200
    fs = tmpfs(size="3m")
    filler = fs / "filler"
    filler.write_bytes(os.urandom(1 << 20))
    server = server_on(make_server, fs)
    accepted, last = [], None
    for i in range(60):
        token = f"b{i:03d}"
        last = send_bdat(server.ports["mx"], token, kib)
        if not last[-1].startswith("250"):
            break
        accepted.append(token)
    assert last[-1].startswith("452 4.3.1"), last
    assert len(accepted) >= 5, accepted
    assert_still_serving(server)
    wait_until(lambda: not spool_files(server, "incoming"), 5,
               "spool/incoming still holds a refused message", server)
    filler.unlink()
    wait_until(lambda: len(delivered(server, kib)) >= len(accepted), 30,
               f"{len(accepted)} accepted messages not all delivered", server)
    wait_until(lambda: not spool_files(server, "queue"), 15, "spool/queue not empty", server)
    assert delivered(server, kib) == {t: 1 for t in accepted}
