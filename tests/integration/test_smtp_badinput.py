"""Hostile and broken input: NUL bytes, binary junk, half-sent and stalled messages,
and SMTP smuggling with bare CR / bare LF (RFC 5321 §2.3.8, §4.1.1.4). Each gets its
reply code, nothing unintended is stored, and the server keeps serving."""
import random
import time

import pytest

from test_smtp_support import (SMTPRaw, dot_stuff, message, parse_message, settle, spool_files,
                               all_messages)


def stored(server, user, n=1):
    msgs = server.wait_messages(user, n)
    assert len(msgs) == n, f"{user}: {len(msgs)} messages, expected {n}"
    return [p.read_bytes() for p in msgs]


def deliver_sentinel(server, subject="sentinel", user="bob"):
    """Proves the server still serves: a fresh connection delivers a message."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd(f"RCPT TO:<{user}@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(message(subject, to=f"{user}@example.test").encode()))
        assert c.reply().code == 250
        c.quit()


def wait_incoming_empty(server, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not spool_files(server, "incoming"):
            return True
        time.sleep(0.05)
    return False


# ---- NUL bytes ----

def test_nul_in_commands(server):
    """RFC 5321 §2.3.8 / §4.1: NUL is not allowed in commands; such a line is refused
    (500) and the session goes on, in sync."""
    with SMTPRaw(server.ports["mx"]) as c:
        r = c.cmd(b"EHLO client\x00.example.net")
        assert 500 <= r.code < 600, r
        c.ehlo()
        for line in (b"NOOP\x00", b"\x00", b"MAIL FROM:<sender@client.example.net>\x00",
                     b"MAIL FROM:<sen\x00der@client.example.net>"):
            r = c.cmd(line)
            assert 500 <= r.code < 600, (line, r)
        # No transaction was started by the NUL-laden MAIL commands.
        assert c.cmd("RCPT TO:<alice@example.test>").code == 503
        assert c.cmd("NOOP").code == 250
        c.quit()


def test_nul_in_data_refused(server):
    """A NUL in message data is refused (5xx) as a whole; nothing stored; the session
    goes on (RFC 5321 §4.5.2 text lines; RFC 6152 8BITMIME still excludes NUL)."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net> BODY=8BITMIME").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: nul\r\n\r\nbefore\x00after\r\n.\r\n")
        r = c.reply()
        assert 500 <= r.code < 600, r
        assert c.silent(0.3)
        # The same through BDAT.
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        chunk = b"Subject: nul-bdat\r\n\r\nx\x00y\r\n"
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        r = c.reply()
        assert 500 <= r.code < 600, r
        assert c.cmd("NOOP").code == 250
        c.quit()
    deliver_sentinel(server, user="alice")
    raw, = stored(server, "alice")
    assert parse_message(raw)["Subject"] == "sentinel"
    settle(server)
    assert len(server.messages("alice")) == 1


# ---- binary junk ----

def junk_lines(n, seed=5321):
    rnd = random.Random(seed)
    lines = []
    for i in range(n):
        ln = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300)))
        ln = ln.replace(b"\r", b"").replace(b"\n", b"")
        lines.append(b"\xff" + ln)     # never a valid verb
    return lines


def test_binary_junk_then_421_after_max_errors(server):
    """RFC 5321 §4.2.4 (500 for junk) and §3.8 / §4.2.2 (421 before closing): random
    bytes, 0xff included, get a 5xx per line; after max_errors (10) the server says 421
    and closes. A new connection is served normally."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        c.send(b"\r\n".join(junk_lines(30)) + b"\r\n")
        codes = []
        while True:
            try:
                r = c.reply()
            except EOFError:
                break
            codes.append(r.code)
            if r.code == 421:
                assert r.enhanced is not None and r.enhanced.startswith("4."), r
                break
        assert codes and codes[-1] == 421, codes
        assert all(500 <= x < 600 for x in codes[:-1]), codes
        assert len(codes) - 1 == 10, f"{len(codes) - 1} errors before 421 (max_errors = 10)"
        assert c.closed(5), "server did not close after 421"
    deliver_sentinel(server)
    stored(server, "bob")


def test_binary_junk_without_newline(server):
    """A megabyte of junk with no line end: one 500 (line too long, RFC 5321 §4.5.3.1.4),
    the rest is discarded up to the next line end, then the session is usable."""
    rnd = random.Random(1)
    blob = bytes(rnd.randrange(256) for _ in range(1 << 20)).replace(b"\n", b"").replace(b"\r", b"")
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        c.send(blob)
        c.send(b"\r\nNOOP\r\n")
        r = c.reply(timeout=15)
        assert r.code == 500, r
        r = c.reply()
        assert r.code == 250, r
        c.quit()


def test_junk_before_ehlo_and_in_tls_port(server):
    """Junk in place of a TLS ClientHello on the implicit-TLS port: the connection is
    dropped, the server keeps serving TLS."""
    with SMTPRaw(server.ports["submissions"], greet=False) as c:
        c.send(bytes(range(256)) * 4)
        assert c.closed(5)
    with SMTPRaw(server.ports["submissions"], tls=True) as c:
        c.ehlo()
        c.quit()


# ---- interrupted and stalled messages ----

def test_half_data_then_disconnect(server):
    """A client that sends half a DATA and disconnects: nothing is delivered and the
    spool's incoming/ is empty afterwards (no 250, so nothing is kept: RFC 5321 §6.1)."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: half\r\n\r\n" + b"line of text\r\n" * 5000)   # 70 KB, no terminator
        time.sleep(0.2)
    assert wait_incoming_empty(server), f"left in incoming/: {spool_files(server, 'incoming')}"
    deliver_sentinel(server, user="alice")
    raw, = stored(server, "alice")
    assert parse_message(raw)["Subject"] == "sentinel"
    settle(server)
    assert len(server.messages("alice")) == 1
    assert not spool_files(server, "incoming")


def test_half_bdat_then_disconnect(server):
    """The same with a BDAT chunk cut short."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        c.send(b"BDAT 100000 LAST\r\nSubject: half-bdat\r\n\r\n" + b"y" * 5000)
        time.sleep(0.2)
    assert wait_incoming_empty(server), f"left in incoming/: {spool_files(server, 'incoming')}"
    settle(server)
    assert server.messages("alice") == []


def test_stalled_data_times_out(make_server):
    """RFC 5321 §4.5.3.2.5-6: a client that stops mid-DATA is cut off after the data
    timeout with 421 4.4.2; nothing stored, incoming/ emptied; a slow client that keeps
    sending within the timeout is not cut off (the timeout is per block, not total)."""
    srv = make_server(settings={"smtp_data_timeout": "1s", "smtp_command_timeout": "3s"})
    # A slow but steady client (3 s total, one block every 0.4 s) still delivers.
    with SMTPRaw(srv.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: slow\r\n\r\n")
        for i in range(7):
            time.sleep(0.4)
            c.send(b"slow line %d\r\n" % i)
        c.send(b".\r\n")
        assert c.reply().code == 250
        c.quit()
    with SMTPRaw(srv.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: stalled\r\n\r\nsome text, then silence\r\n")
        t0 = time.time()
        r = c.reply(timeout=6)
        waited = time.time() - t0
        assert (r.code, r.enhanced) == (421, "4.4.2"), r
        assert 0.5 <= waited < 4, waited
        assert c.closed(3)
    assert wait_incoming_empty(srv)
    stored(srv, "bob")
    settle(srv)
    assert srv.messages("alice") == []


def test_stalled_bdat_times_out(make_server):
    """RFC 5321 §4.5.3.2 applied to a BDAT chunk that never completes: 421 4.4.2."""
    srv = make_server(settings={"smtp_data_timeout": "1s", "smtp_command_timeout": "3s"})
    with SMTPRaw(srv.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        c.send(b"BDAT 1000 LAST\r\nSubject: stalled-bdat\r\n\r\n")
        r = c.reply(timeout=6)
        assert (r.code, r.enhanced) == (421, "4.4.2"), r
        assert c.closed(3)
    assert wait_incoming_empty(srv)
    settle(srv)
    assert srv.messages("alice") == []


def test_idle_command_timeout(make_server):
    """RFC 5321 §4.5.3.2.7: an idle session is closed after the command timeout with 421
    4.4.2 (§3.8), before and after EHLO and inside a transaction."""
    srv = make_server(settings={"smtp_command_timeout": "1s"})
    with SMTPRaw(srv.ports["mx"]) as c1, SMTPRaw(srv.ports["mx"]) as c2:
        c2.ehlo()
        assert c2.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        t0 = time.time()
        for c in (c1, c2):
            r = c.reply(timeout=6)
            assert (r.code, r.enhanced) == (421, "4.4.2"), r
            assert c.closed(3)
        assert time.time() - t0 < 4
    # Activity resets the timer: NOOP every 0.5 s for 2 s keeps the session.
    with SMTPRaw(srv.ports["mx"]) as c:
        for _ in range(4):
            time.sleep(0.5)
            assert c.cmd("NOOP").code == 250
        c.quit()


# ---- SMTP smuggling (bare CR / bare LF) ----

SMUGGLED = (b"MAIL FROM:<attacker@evil.example>\r\n"
            b"RCPT TO:<bob@example.test>\r\n"
            b"DATA\r\n"
            b"From: <ceo@example.test>\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n"
            b".\r\n")


@pytest.mark.parametrize("ending", [b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r", b"\r.\r\n",
                                    b"\r\n.\r", b"\n..\n", b"\r\n.\x00\r\n"],
                         ids=["LF.LF", "CRLF.LF", "LF.CRLF", "CR.CR", "CR.CRLF", "CRLF.CR",
                              "LF..LF", "CRLF.NUL"])
def test_smuggling_refused_as_a_whole(server, ending):
    """RFC 5321 §2.3.8 / §4.1.1.4 (SMTP smuggling, CVE-2023-51764 family): only
    <CRLF>.<CRLF> ends DATA. A message carrying a fake end followed by a second
    transaction is ONE message, refused with 5xx because of the bare CR/LF; the
    smuggled commands are never executed and NO message is delivered."""
    outer = b"From: <sender@client.example.net>\r\nTo: <alice@example.test>\r\nSubject: outer\r\n\r\nouter body"
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(outer + ending + SMUGGLED)
        r = c.reply()
        assert 500 <= r.code < 600, f"message with {ending!r} not refused: {r}"
        # Exactly one reply: the smuggled MAIL/RCPT/DATA were data, not commands.
        assert c.silent(0.3), f"extra replies after {ending!r}: {c.buf!r}"
        assert c.cmd("RCPT TO:<bob@example.test>").code == 503   # no transaction open
        c.quit()
    deliver_sentinel(server, subject="sentinel", user="bob")
    stored(server, "bob")
    settle(server)
    assert server.messages("alice") == []
    bob = server.messages("bob")
    assert len(bob) == 1 and b"smuggled" not in bob[0].read_bytes()


def test_smuggling_pipelined_transaction_after_refusal(server):
    """After a smuggling attempt is refused, a properly pipelined next transaction in
    the same write is handled normally (the session is in sync)."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: x\r\n\r\nbad\n.\nstill data\r\n.\r\n"
               b"MAIL FROM:<sender@client.example.net>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
        rs = c.replies(4)
        assert [r.code // 100 for r in rs] == [5, 2, 2, 3], rs
        c.send(dot_stuff(message("good-after-bad", to="bob@example.test").encode()))
        assert c.reply().code == 250
        c.quit()
    raw, = stored(server, "bob")
    assert parse_message(raw)["Subject"] == "good-after-bad"
    settle(server)
    assert server.messages("alice") == []
    assert len(all_messages(server)) == 1
