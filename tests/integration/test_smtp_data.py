"""Message data and delivery: dot-stuffing (RFC 5321 §4.5.2), alias expansion and
one copy per mailbox (RFC 5321 §3.9), subaddresses, and what the stored copy holds."""
import smtplib
import time

from test_smtp_support import SMTPRaw, body_of, dot_stuff, message, parse_message, queued_id, settle


def stored(server, user, n=1):
    msgs = server.wait_messages(user, n)
    assert len(msgs) == n, f"{user}: {len(msgs)} messages, expected {n}"
    return [p.read_bytes() for p in msgs]


def lf(b):
    return b.replace(b"\r\n", b"\n")


# ---- dot-stuffing (RFC 5321 §4.5.2) ----

STUFF_BODY = (b"normal line\r\n"
              b".starts with one dot\r\n"
              b"..starts with two dots\r\n"
              b".\r\n"                        # a line that is just "." (sent as "..")
              b"...\r\n"
              b" . not at start\r\n"
              b"end.\r\n"
              b".\r\n")                       # the last body line is "." too


def test_dot_stuffing_removed_on_delivery(server):
    """RFC 5321 §4.5.2: the client doubles a leading "."; the server removes exactly one
    leading "." of each line. A body line "." travels as ".." and arrives as "."."""
    wire = dot_stuff(b"From: <sender@client.example.net>\r\nSubject: dots\r\n\r\n" + STUFF_BODY)
    assert b"\r\n..\r\n" in wire and b"\r\n...starts" in wire
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(wire)
        assert c.reply().code == 250
        c.quit()
    raw, = stored(server, "alice")
    assert lf(body_of(raw)) == lf(STUFF_BODY)


def test_dot_stuffing_smtplib(server):
    """The same through smtplib, which stuffs by itself (an independent encoder)."""
    with smtplib.SMTP("127.0.0.1", server.ports["mx"], timeout=10) as s:
        s.sendmail("sender@client.example.net", ["bob@example.test"],
                   b"From: <sender@client.example.net>\r\nSubject: dots2\r\n\r\n" + STUFF_BODY)
    raw, = stored(server, "bob")
    assert lf(body_of(raw)) == lf(STUFF_BODY)


def test_dot_in_first_line_and_empty_body(server):
    """RFC 5321 §4.5.2: the CRLF of the DATA command counts, so a "." at the very start of
    the data is stuffing too; a message with headers only and no body is fine."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        # A message whose very first line starts with a dot (sent stuffed).
        c.send(b"..dot first\r\nsecond\r\n.\r\n")
        assert c.reply().code == 250
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: headers-only\r\n.\r\n")
        assert c.reply().code == 250
        c.quit()
    msgs = stored(server, "alice", 2)
    joined = b"\n=====\n".join(lf(m) for m in msgs)
    assert b"\n.dot first\nsecond\n" in joined and b"..dot" not in joined, joined
    assert b"Subject: headers-only\n" in joined


def test_terminator_split_across_writes(server):
    """RFC 5321 §4.5.2: <CRLF>.<CRLF> is found however TCP splits it."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        data = dot_stuff(message("split", body="a\r\n.b\r\n").encode())
        for piece in (data[:-5], data[-5:-4], data[-4:-3], data[-3:-2], data[-2:-1], data[-1:]):
            c.send(piece)
            time.sleep(0.02)
        assert c.reply().code == 250
        c.quit()
    raw, = stored(server, "alice")
    assert lf(body_of(raw)) == b"a\n.b\n"


# ---- aliases and subaddresses ----

def test_alias_reaches_each_member_once(server):
    """An alias with two members delivers one copy to each (RFC 5321 §3.9.1 list
    expansion); the stored copy names the mailbox in Delivered-To."""
    server.cli("alias", "add", "list@example.test", "alice@example.test")
    server.cli("alias", "add", "list@example.test", "bob@example.test")
    r = server.cli("alias", "list")
    assert "list@example.test" in r.stdout
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<list@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(message("to-list", to="list@example.test").encode()))
        qid = queued_id(c.reply())
        c.quit()
    a, = stored(server, "alice")
    b, = stored(server, "bob")
    settle(server)
    assert len(server.messages("alice")) == 1 and len(server.messages("bob")) == 1
    for raw, who in ((a, "alice"), (b, "bob")):
        m = parse_message(raw)
        assert m["Subject"] == "to-list"
        assert qid in " ".join(m["Received"].split())
        assert m.get_all("Received") and len(m.get_all("Received")) == 1
        dt = m["Delivered-To"]
        assert dt is None or who in dt, dt


def test_user_and_alias_of_user_one_copy(server):
    """RCPT to alice and to an alias of alice, and to the list containing her, in one
    transaction: alice gets ONE copy (one copy per mailbox)."""
    server.cli("alias", "add", "ali@example.test", "alice@example.test")
    server.cli("alias", "add", "list@example.test", "alice@example.test")
    server.cli("alias", "add", "list@example.test", "bob@example.test")
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        for rc in ("alice@example.test", "ali@example.test", "list@example.test",
                   "alice@example.test", "ALI@example.test"):
            r = c.cmd(f"RCPT TO:<{rc}>")
            assert r.code in (250, 550), (rc, r)   # ALI: local parts may be case-sensitive
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(message("dedup").encode()))
        assert c.reply().code == 250
        c.quit()
    stored(server, "alice")
    stored(server, "bob")
    settle(server)
    assert len(server.messages("alice")) == 1, server.messages("alice")
    assert len(server.messages("bob")) == 1


def test_nested_alias(server):
    """An alias whose member is another alias is expanded to the final mailboxes."""
    server.cli("alias", "add", "inner@example.test", "bob@example.test")
    server.cli("alias", "add", "outer@example.test", "inner@example.test")
    server.cli("alias", "add", "outer@example.test", "alice@example.test")
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<outer@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(message("nested", to="outer@example.test").encode()))
        assert c.reply().code == 250
        c.quit()
    stored(server, "alice")
    stored(server, "bob")


def test_subaddress_delivers_to_user(server):
    """Subaddressing (RFC 5233 style, delimiter "+"): alice+tag@example.test reaches
    alice; a tag on an unknown user is still unknown (550 5.1.1)."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        r = c.cmd("RCPT TO:<nobody+tag@example.test>")
        assert (r.code, r.enhanced) == (550, "5.1.1"), r
        assert c.cmd("RCPT TO:<alice+newsletters@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(message("subaddress", to="alice+newsletters@example.test").encode()))
        assert c.reply().code == 250
        c.quit()
    raw, = stored(server, "alice")
    m = parse_message(raw)
    assert m["Subject"] == "subaddress"
    # The trace keeps the address the client used (RFC 5321 §4.4 FOR clause).
    assert "alice+newsletters@example.test" in " ".join(m["Received"].split())
    settle(server)
    # No Maildir for the tagged name.
    assert sorted(p.name for p in (server.mail / "example.test").iterdir()) == ["alice"]


def test_null_sender_delivered(server):
    """RFC 5321 §4.5.5 / §6.1: a message with the null reverse-path (a bounce) is
    accepted and delivered, with "Return-Path: <>"."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(message("bounce", frm="MAILER-DAEMON@client.example.net").encode()))
        assert c.reply().code == 250
        c.quit()
    raw, = stored(server, "alice")
    m = parse_message(raw)
    assert m["Subject"] == "bounce"
    assert m["Return-Path"] == "<>"


def test_two_messages_one_session(server):
    """RFC 5321 §3.3: several transactions in one session, each stored once."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        for i in range(3):
            assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
            assert c.cmd("RCPT TO:<bob@example.test>").code == 250
            assert c.cmd("DATA").code == 354
            c.send(dot_stuff(message(f"seq-{i}", to="bob@example.test").encode()))
            assert c.reply().code == 250
        c.quit()
    msgs = stored(server, "bob", 3)
    assert sorted(parse_message(m)["Subject"] for m in msgs) == ["seq-0", "seq-1", "seq-2"]


def test_concurrent_sessions_each_message_once(server):
    """20 sessions at once, 2 messages each, alternating alice and bob: every message is
    stored exactly once (distinct Maildir names, no lost or duplicated file)."""
    import threading
    errors = []

    def worker(i):
        try:
            with smtplib.SMTP("127.0.0.1", server.ports["mx"], timeout=20) as s:
                for j in range(2):
                    to = "alice@example.test" if (i + j) % 2 == 0 else "bob@example.test"
                    s.sendmail("sender@client.example.net", [to], message(f"conc-{i}-{j}", to=to))
        except Exception as e:   # reported below
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    a = stored(server, "alice", 20)
    b = stored(server, "bob", 20)
    settle(server)
    subjects = sorted(parse_message(m)["Subject"] for m in a + b)
    assert subjects == sorted(f"conc-{i}-{j}" for i in range(20) for j in range(2))
