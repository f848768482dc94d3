"""Limits where peer input enters (RFC 5321 §4.5.3): command line length, text line
length, message size, recipients per message (with 10,000 pipelined RCPTs and the
front processes' memory), errors per session, connections per IP."""
import socket
import threading
import time

from conftest import SANITIZED
from test_smtp_support import SMTPRaw, dot_stuff, message, parse_message, settle, spool_files


def stored(server, user, n=1):
    msgs = server.wait_messages(user, n)
    assert len(msgs) == n, f"{user}: {len(msgs)} messages, expected {n}"
    return [p.read_bytes() for p in msgs]


# Under ASan freed memory sits in a quarantine, so RSS says nothing about leaks or
# buffering there: the functional part of the memory tests runs, the bound does not.
RSS_BOUND_KIB = None if SANITIZED else 20 * 1024


def assert_rss_bounded(growth):
    if RSS_BOUND_KIB is not None:
        assert all(g < RSS_BOUND_KIB for g in growth.values()), f"front RSS grew by {growth} KiB"


def vmrss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


# ---- command line length (RFC 5321 §4.5.3.1.4, RFC 3461 §5) ----

def test_command_line_512_octets(server):
    """RFC 5321 §4.5.3.1.4: a command line of 512 octets with CRLF is accepted, one octet
    more is 500 (5.5.2) and the session continues in sync."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        exact = b"NOOP " + b"x" * (510 - 5)
        assert len(exact) + 2 == 512
        assert c.cmd(exact).code == 250
        r = c.cmd(exact + b"x")
        assert (r.code, r.enhanced) == (500, "5.5.2"), r
        # Much longer than any buffer: still one 500, then in sync.
        r = c.cmd(b"NOOP " + b"y" * 100000)
        assert (r.code, r.enhanced) == (500, "5.5.2"), r
        assert c.cmd("NOOP").code == 250
        r = c.cmd(b"EHLO " + b"h" * 600)
        assert r.code == 500 or r.code == 501, r
        c.ehlo()
        c.quit()


def test_mail_and_rcpt_longer_for_dsn(server):
    """RFC 3461 §5: with DSN, MAIL may be 100 and RCPT 500 octets longer than 512. A
    RCPT of 623 octets with real parameters is accepted; MAIL over 612 and RCPT over 1012
    octets are 500 5.5.2; the message goes through."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        mail = b"MAIL FROM:<sender@client.example.net> RET=HDRS ENVID=" + b"E" * 100
        mail_pad = mail + b" " * (610 - len(mail) - 8) + b"SIZE=100"
        assert len(mail_pad) == 610
        assert c.cmd(mail_pad).code == 250, "a 612-octet MAIL (RFC 3461 §5) was refused"
        assert c.cmd("RSET").code == 250
        r = c.cmd(mail + b" " * (611 - len(mail) - 8) + b"SIZE=100")
        assert (r.code, r.enhanced) == (500, "5.5.2"), r
        assert c.cmd(mail).code == 250
        orcpt = b"rfc822;" + b"o" * 480 + b"@example.test"          # 500 octets, the most
        rcpt = (b"RCPT TO:<alice+" + b"t" * 58 + b"@example.test> NOTIFY=SUCCESS,FAILURE,DELAY"
                b" ORCPT=" + orcpt)
        assert 620 < len(rcpt) <= 1010
        r = c.cmd(rcpt)
        assert r.code == 250, r
        r = c.cmd(b"RCPT TO:<bob@example.test>" + b" " * 1000 + b"NOTIFY=NEVER")
        assert (r.code, r.enhanced) == (500, "5.5.2"), r
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(message("long-dsn").encode()))
        assert c.reply().code == 250
        c.quit()
    raw, = stored(server, "alice")
    assert parse_message(raw)["Subject"] == "long-dsn"
    settle(server)
    assert server.messages("bob") == []


def test_address_length_limits(server):
    """RFC 5321 §4.5.3.1.1-3: local part 64, domain 255, path 256 octets; longer is
    refused (501/553), never truncated into another address."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<" + "l" * 65 + "@client.example.net>")
        assert 500 <= r.code < 600, r
        long_dom = ".".join(["d" * 63] * 4) + ".example"   # 263 octets
        r = c.cmd(f"MAIL FROM:<s@{long_dom}>")
        assert 500 <= r.code < 600, r
        assert c.cmd("MAIL FROM:<" + "l" * 64 + "@client.example.net>").code == 250
        r = c.cmd("RCPT TO:<" + "a" * 65 + "@example.test>")
        assert 500 <= r.code < 600, r
        c.quit()


# ---- text line length in DATA (RFC 5321 §4.5.3.1.6) ----

def test_text_line_length(server):
    """RFC 5321 §4.5.3.1.6: a text line of 1000 octets with CRLF is accepted, 1001 is
    refused (5xx) after the terminator; nothing stored for it; the session continues."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        for n, ok in ((998, True), (999, False)):
            assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
            assert c.cmd("RCPT TO:<alice@example.test>").code == 250
            assert c.cmd("DATA").code == 354
            body = b"A" * n + b"\r\n"
            c.send(dot_stuff(b"Subject: line-%d\r\n\r\n" % n + body))
            r = c.reply()
            if ok:
                assert r.code == 250, (n, r)
            else:
                assert 500 <= r.code < 600, (n, r)
                assert c.silent(0.2)
        assert c.cmd("NOOP").code == 250
        c.quit()
    raw, = stored(server, "alice")
    assert parse_message(raw)["Subject"] == "line-998"
    assert b"A" * 998 + b"\n" in raw
    settle(server)
    assert len(server.messages("alice")) == 1


def test_huge_data_line_memory_bounded(make_server):
    """RFC 5321 §4.5.3.1.6 against a hostile client: one 8 MB "line" without CRLF in
    DATA is refused (5xx) after the terminator, nothing is stored, and the front
    process does not buffer it (RSS grows by less than 20 MiB)."""
    srv = make_server(workers=1)
    fronts = srv.pids("front")
    assert fronts
    before = {p: vmrss_kib(p) for p in fronts}
    with SMTPRaw(srv.ports["mx"], timeout=30) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: huge-line\r\n\r\n")
        chunk = b"L" * (1 << 20)
        for _ in range(8):
            c.send(chunk)
        peak = {p: vmrss_kib(p) for p in fronts}
        c.send(b"\r\n.\r\n")
        r = c.reply(timeout=30)
        assert 500 <= r.code < 600, r
        assert c.cmd("NOOP").code == 250
        c.quit()
    growth = {p: max(peak[p], vmrss_kib(p)) - before[p] for p in fronts}
    assert_rss_bounded(growth)
    settle(srv)
    assert srv.messages("alice") == []
    assert not spool_files(srv, "incoming")


# ---- message size (RFC 1870 §6.3, 552 5.3.4) ----

def test_message_size_limit(make_server):
    """RFC 1870 §4 / §6.3: SIZE advertises the limit; declared above it 552 5.3.4 at
    MAIL; undeclared but bigger data is read to the end and refused 552 5.3.4; one
    under the limit is delivered."""
    srv = make_server(settings={"message_size_limit": "4K"})
    with SMTPRaw(srv.ports["mx"]) as c:
        r = c.ehlo()
        assert "SIZE 4096" in r.lines
        # RFC 1870 §3 counts every octet of the message with its CRLFs: exactly 4096
        # octets is accepted.
        head = b"Subject: exact\r\n\r\n" + (b"e" * 98 + b"\r\n") * 40
        exact = head + b"e" * (4096 - len(head) - 2) + b"\r\n"
        assert len(exact) == 4096
        for data, want in ((exact, 250), (exact[:-2] + b"e\r\n", 552)):
            assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
            assert c.cmd("RCPT TO:<bob@example.test>").code == 250
            assert c.cmd("DATA").code == 354
            c.send(dot_stuff(data))
            r = c.reply()
            assert r.code == want, (len(data), r)
        r = c.cmd("MAIL FROM:<sender@client.example.net> SIZE=4097")
        assert (r.code, r.enhanced) == (552, "5.3.4"), r
        assert c.cmd("MAIL FROM:<sender@client.example.net> SIZE=4096").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        big = b"Subject: too-big\r\n\r\n" + (b"z" * 78 + b"\r\n") * 200   # ~16 KB
        c.send(dot_stuff(big))
        r = c.reply()
        assert (r.code, r.enhanced) == (552, "5.3.4"), r
        assert c.silent(0.2)
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(b"Subject: fits\r\n\r\n" + (b"z" * 78 + b"\r\n") * 40))   # ~3.2 KB
        assert c.reply().code == 250
        c.quit()
    raw, = stored(srv, "alice")
    assert parse_message(raw)["Subject"] == "fits"
    raw, = stored(srv, "bob")
    assert parse_message(raw)["Subject"] == "exact"
    settle(srv)
    assert len(srv.messages("alice")) == 1 and len(srv.messages("bob")) == 1
    assert not spool_files(srv, "incoming")


# ---- recipients per message (RFC 5321 §4.5.3.1.8 / .10) ----

def test_10000_pipelined_rcpts(make_server):
    """RFC 5321 §4.5.3.1.8 and §4.5.3.1.10: 10,000 RCPTs pipelined in one stream. The
    first max_recipients (100) are accepted, every later one gets 452 4.5.3, all 10,000
    replies arrive in order, the message is delivered once, and the front processes'
    memory stays bounded (RSS grows by less than 20 MiB)."""
    srv = make_server(settings={"max_recipients": 100}, workers=1)
    fronts = srv.pids("front")
    assert fronts, "no front pid in the log:\n" + srv.log_text()[-2000:]
    before = {p: vmrss_kib(p) for p in fronts}
    n = 10000
    with SMTPRaw(srv.ports["mx"], timeout=30) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        # All subaddresses of alice: distinct RCPTs, one mailbox.
        blob = b"".join(b"RCPT TO:<alice+%d@example.test>\r\n" % i for i in range(n))
        sender = threading.Thread(target=lambda: (c.sock.sendall(blob)), daemon=True)
        sender.start()
        codes = []
        peak = dict(before)
        for i in range(n):
            r = c.reply(timeout=30)
            codes.append((r.code, r.enhanced))
            if i % 2000 == 0:
                for p in fronts:
                    peak[p] = max(peak[p], vmrss_kib(p))
        sender.join(30)
        assert codes[:100] == [(250, "2.1.5")] * 100, codes[:100]
        assert set(codes[100:]) == {(452, "4.5.3")}, set(codes[100:])
        assert c.silent(0.2)
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(message("many-rcpts").encode()))
        assert c.reply().code == 250
        c.quit()
    for p in fronts:
        peak[p] = max(peak[p], vmrss_kib(p))
    growth = {p: peak[p] - before[p] for p in fronts}
    assert_rss_bounded(growth)
    raw, = stored(srv, "alice")
    m = parse_message(raw)
    assert m["Subject"] == "many-rcpts"
    settle(srv)
    assert len(srv.messages("alice")) == 1
    # "for <...>" only with a single recipient (privacy of the others).
    assert "for <" not in " ".join(m["Received"].split())


def test_pipelining_client_that_does_not_read(make_server):
    """RFC 2920 §3.2 and the server's back-pressure: a client pipelines 50,000 NOOPs and
    reads nothing for a second. The front process stops reading instead of queueing
    replies (RSS grows by less than 20 MiB); once the client reads, every command gets
    its 250, in order, and the session is still usable."""
    srv = make_server(workers=1)
    fronts = srv.pids("front")
    assert fronts
    before = {p: vmrss_kib(p) for p in fronts}
    n = 50000
    with SMTPRaw(srv.ports["mx"], timeout=30) as c:
        c.ehlo()
        sender = threading.Thread(target=lambda: c.sock.sendall(b"NOOP\r\n" * n), daemon=True)
        sender.start()
        time.sleep(1.0)
        peak = {p: vmrss_kib(p) for p in fronts}
        for i in range(n):
            r = c.reply(timeout=30)
            assert r.code == 250, (i, r)
        sender.join(30)
        assert not sender.is_alive()
        assert c.silent(0.2)
        c.quit()
    growth = {p: peak[p] - before[p] for p in fronts}
    assert_rss_bounded(growth)


def test_recipient_limit_resets_per_transaction(make_server):
    """RFC 5321 §4.5.3.1.8: the limit is per message: after RSET, or in the next
    transaction, 100 more are accepted."""
    srv = make_server(settings={"max_recipients": 100})
    with SMTPRaw(srv.ports["mx"]) as c:
        c.ehlo()
        for _ in range(2):
            c.send(b"MAIL FROM:<sender@client.example.net>\r\n" +
                   b"".join(b"RCPT TO:<bob+%d@example.test>\r\n" % i for i in range(101)))
            rs = c.replies(102)
            assert [r.code for r in rs] == [250] + [250] * 100 + [452]
            assert c.cmd("RSET").code == 250
        c.quit()


# ---- errors per session ----

def test_max_errors_421_then_close(make_server):
    """RFC 5321 §4.2.2 / §3.8: after max_errors bad commands the server sends 421 and
    closes; other sessions are unaffected and a new one works."""
    srv = make_server(settings={"max_errors": 3})
    with SMTPRaw(srv.ports["mx"]) as other, SMTPRaw(srv.ports["mx"]) as c:
        c.ehlo()
        codes = []
        for cmd in ("BOGUS", "MAIL FROM:bad", "RCPT TO:<alice@example.test>"):
            c.send(cmd + "\r\n")
        while True:
            try:
                r = c.reply()
            except EOFError:
                break
            codes.append(r.code)
            if r.code == 421:
                break
        assert codes == [500, 501, 503, 421], codes
        assert c.closed(3)
        # The other session still works.
        other.ehlo()
        other.quit()
    with SMTPRaw(srv.ports["mx"]) as c:
        c.ehlo()
        c.quit()


def test_good_commands_do_not_count_as_errors(make_server):
    """Only refused commands count toward max_errors: many NOOPs and successful
    transactions between errors do not close the session early."""
    srv = make_server(settings={"max_errors": 3})
    with SMTPRaw(srv.ports["mx"]) as c:
        c.ehlo()
        for _ in range(2):
            assert c.cmd("BOGUS").code == 500
            for _ in range(20):
                assert c.cmd("NOOP").code == 250
        assert c.cmd("NOOP").code == 250
        c.quit()


# ---- connections per IP ----

def test_max_connections_per_ip(make_server):
    """Connections per client address (per front process; workers=1 here): with
    max_connections_per_ip = 3 the 4th gets 421 4.7.0 and is closed; when one closes, a
    new one is accepted again."""
    srv = make_server(settings={"max_connections_per_ip": 3}, workers=1)
    # The start-up probe's connections may not be released yet: retry briefly.
    deadline = time.time() + 5
    while True:
        conns = [SMTPRaw(srv.ports["mx"], greet=False) for _ in range(3)]
        greetings = [c.reply() for c in conns]
        if all(g.code == 220 for g in greetings) or time.time() > deadline:
            break
        for c in conns:
            c.close()
        time.sleep(0.1)
    try:
        assert [g.code for g in greetings] == [220] * 3, greetings
        extra = SMTPRaw(srv.ports["mx"], greet=False)
        r = extra.reply()
        assert (r.code, r.enhanced) == (421, "4.7.0"), r
        assert extra.closed(3)
        extra.close()
        # Other listeners count the same client address too (same front process).
        extra = SMTPRaw(srv.ports["submission"], greet=False)
        assert extra.reply().code == 421
        extra.close()
        conns[0].quit()
        deadline = time.time() + 5
        while True:
            c = SMTPRaw(srv.ports["mx"], greet=False)
            r = c.reply()
            if r.code == 220 or time.time() > deadline:
                break
            c.close()
            time.sleep(0.05)
        assert r.code == 220, r
        conns[0] = c
        c.ehlo()
        for c in conns[1:]:
            c.ehlo()
    finally:
        for c in conns:
            c.close()


def test_many_connections_then_all_closed(server):
    """Open and abandon 50 connections at once (no QUIT): the server stays up, and the
    per-IP counter is released so new sessions are accepted (default limit 20)."""
    socks = []
    for _ in range(50):
        try:
            socks.append(socket.create_connection(("127.0.0.1", server.ports["mx"]), timeout=5))
        except OSError:
            pass
    for s in socks:
        s.close()
    deadline = time.time() + 5
    while True:
        with SMTPRaw(server.ports["mx"], greet=False) as c:
            r = c.reply()
            if r.code == 220:
                c.ehlo()
                c.quit()
                break
        assert time.time() < deadline, "connections were never released"
        time.sleep(0.1)
