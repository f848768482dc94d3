"""ESMTP extensions with real clients: PIPELINING (RFC 2920), SIZE (RFC 1870),
8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), DSN parameters (RFC 3461),
ENHANCEDSTATUSCODES (RFC 2034/3463)."""
import re
import smtplib

import pytest

from test_smtp_support import (SMTPRaw, body_of, dot_stuff, message, parse_message, queued_id,
                               settle)


def stored(server, user, n=1):
    msgs = server.wait_messages(user, n)
    assert len(msgs) == n, f"{user}: {len(msgs)} messages, expected {n}"
    return [p.read_bytes() for p in msgs]


# ---- PIPELINING (RFC 2920) ----

def test_pipelining_one_write_replies_in_order(server):
    """RFC 2920 §3.1-3.2: MAIL, RCPT, RCPT, RCPT, DATA in one write; the replies come
    back in order, one per command, the failing RCPT in its place."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<sender@client.example.net>\r\n"
               b"RCPT TO:<alice@example.test>\r\n"
               b"RCPT TO:<nobody@example.test>\r\n"
               b"RCPT TO:<bob@example.test>\r\n"
               b"DATA\r\n")
        rs = c.replies(5)
        assert [r.code for r in rs] == [250, 250, 550, 250, 354], rs
        assert rs[2].enhanced == "5.1.1"
        c.send(dot_stuff(message("pipelined").encode()))
        qid = queued_id(c.reply())
        c.quit()
    for user in ("alice", "bob"):
        raw, = stored(server, user)
        m = parse_message(raw)
        assert m["Subject"] == "pipelined"
        assert f"id {qid}" in " ".join(m["Received"].split())


def test_pipelining_across_transactions(server):
    """RFC 2920 §3.1: the end of one message, RSET/NOOP and the next whole envelope in
    one write (what Postfix's smtp client does); two messages, each delivered once."""
    m1 = dot_stuff(message("pipe-one").encode())
    m2 = dot_stuff(message("pipe-two", to="bob@example.test").encode())
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<sender@client.example.net>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        assert [r.code for r in c.replies(3)] == [250, 250, 354]
        c.send(m1 + b"RSET\r\nNOOP\r\nMAIL FROM:<sender@client.example.net>\r\n"
               b"RCPT TO:<bob@example.test>\r\nDATA\r\n")
        rs = c.replies(6)
        assert [r.code for r in rs] == [250, 250, 250, 250, 250, 354], rs
        c.send(m2 + b"QUIT\r\n")
        rs = c.replies(2)
        assert [r.code for r in rs] == [250, 221], rs
    a, = stored(server, "alice")
    b, = stored(server, "bob")
    assert parse_message(a)["Subject"] == "pipe-one"
    assert parse_message(b)["Subject"] == "pipe-two"
    settle(server)
    assert len(server.messages("alice")) == 1 and len(server.messages("bob")) == 1


def test_pipelining_smtplib_send_message(server):
    """smtplib pipelines nothing but must interoperate: several recipients, one copy each."""
    with smtplib.SMTP("127.0.0.1", server.ports["mx"], timeout=10) as s:
        refused = s.sendmail("sender@client.example.net",
                             ["alice@example.test", "bob@example.test"],
                             message("smtplib-two", to="alice@example.test"))
        assert refused == {}
    stored(server, "alice")
    stored(server, "bob")


# ---- SIZE (RFC 1870) ----

def test_size_declared(server):
    """RFC 1870 §6.1-6.2: SIZE at or under the limit is accepted; above it 552 5.3.4 at
    MAIL; a bad value 501; the message sent after a good SIZE is delivered."""
    limit = 35 * 1024 * 1024
    with SMTPRaw(server.ports["mx"]) as c:
        r = c.ehlo()
        assert f"SIZE {limit}" in r.lines
        r = c.cmd(f"MAIL FROM:<sender@client.example.net> SIZE={limit + 1}")
        assert (r.code, r.enhanced) == (552, "5.3.4"), r
        r = c.cmd("MAIL FROM:<sender@client.example.net> SIZE=99999999999999999999999")
        assert r.code in (501, 552), r
        assert c.cmd("MAIL FROM:<sender@client.example.net> SIZE=12x").code == 501
        assert c.cmd("MAIL FROM:<sender@client.example.net> SIZE").code == 501
        msg = message("size-ok").encode()
        assert c.cmd(f"MAIL FROM:<sender@client.example.net> SIZE={limit}").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(msg))
        assert c.reply().code == 250
        c.quit()
    raw, = stored(server, "alice")
    assert parse_message(raw)["Subject"] == "size-ok"


def test_size_smtplib_too_big(make_server):
    """RFC 1870 §6.2 through smtplib, which sends SIZE= itself: the refusal is
    SMTPSenderRefused 552 and nothing is stored."""
    srv = make_server(settings={"message_size_limit": "2K"})
    body = "x" * 70 + "\r\n"
    with smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=10) as s:
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            s.sendmail("sender@client.example.net", ["alice@example.test"],
                       message("too-big", body=body * 60))
        assert e.value.smtp_code == 552
    settle(srv)
    assert srv.messages("alice") == []


# ---- 8BITMIME (RFC 6152) ----

EIGHT_BIT_BODY = ("Gr\u00fc\u00dfe aus K\u00f6ln, \u65e5\u672c\u8a9e, \u0417\u0434\u0440\u0430\u0432\u0441\u0442\u0432\u0443\u0439\r\n".encode("utf-8")
                  + b"latin-1: caf\xe9 na\xefve\r\n"
                  + bytes(range(0x80, 0x100)) + b"\r\n"
                  + b"\xff\xfe\xfd end\r\n")


def test_8bitmime_body_delivered_intact(server):
    """RFC 6152 §3: with BODY=8BITMIME, octets above 127 pass unchanged (every value
    0x80-0xff, invalid UTF-8 included)."""
    hdr = (b"From: <sender@client.example.net>\r\nTo: <alice@example.test>\r\nSubject: 8bit\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
           b"Content-Transfer-Encoding: 8bit\r\n\r\n")
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net> BODY=8BITMIME").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(hdr + EIGHT_BIT_BODY))
        assert c.reply().code == 250
        c.quit()
    raw, = stored(server, "alice")
    assert body_of(raw).replace(b"\r\n", b"\n") == EIGHT_BIT_BODY.replace(b"\r\n", b"\n")


def test_8bitmime_with_bdat(server):
    """RFC 3030 + RFC 6152: the same 8-bit body in a BDAT chunk is delivered intact."""
    data = (b"From: <sender@client.example.net>\r\nSubject: 8bit-bdat\r\n\r\n" + EIGHT_BIT_BODY)
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net> BODY=8BITMIME").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        c.send(b"BDAT %d LAST\r\n" % len(data) + data)
        assert c.reply().code == 250
        c.quit()
    raw, = stored(server, "bob")
    assert body_of(raw).replace(b"\r\n", b"\n") == EIGHT_BIT_BODY.replace(b"\r\n", b"\n")


def test_body_parameter_values(server):
    """RFC 6152 §2 BODY=7BIT|8BITMIME; RFC 3030 §3 BINARYMIME is not offered here
    (no BINARYMIME in EHLO) so it is refused; anything else is 501."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net> BODY=BINARYMIME").code in (501, 504, 555)
        assert c.cmd("MAIL FROM:<sender@client.example.net> BODY=9BIT").code == 501
        assert c.cmd("MAIL FROM:<sender@client.example.net> BODY=7BIT").code == 250
        assert c.cmd("RSET").code == 250
        assert c.cmd("MAIL FROM:<sender@client.example.net> body=8bitmime").code == 250
        c.quit()


# ---- SMTPUTF8 (RFC 6531) ----

def test_smtputf8_rcpt_needs_the_parameter(server):
    """RFC 6531 §3.4-3.5: a UTF-8 address in RCPT without SMTPUTF8 in MAIL is refused
    (553 5.6.7); with SMTPUTF8 it is looked up like any address (550 5.1.1 here: there
    is no such user, and it is not a relay)."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        r = c.cmd("RCPT TO:<j\u00f6rg@example.test>")
        assert r.code == 553 and r.enhanced == "5.6.7", r
        assert c.cmd("RSET").code == 250
        assert c.cmd("MAIL FROM:<sender@client.example.net> SMTPUTF8").code == 250
        r = c.cmd("RCPT TO:<j\u00f6rg@example.test>")
        assert r.code in (250, 550), r
        assert r.code == 550 and r.enhanced == "5.1.1", r
        # A UTF-8 (U-label) non-local domain is still a relay attempt.
        r = c.cmd("RCPT TO:<user@b\u00fccher.example>")
        assert r.code == 554 and r.enhanced == "5.7.1", r
        c.quit()


def test_smtputf8_sender_delivered(server):
    """RFC 6531 §3.4: a UTF-8 MAIL FROM needs SMTPUTF8 (else 553 5.6.7); with it the
    message is accepted, stored with UTF-8 headers intact, and Received: says
    "with UTF8SMTP" (RFC 6531 §3.7.3)."""
    sender = "j\u00f6rg@b\u00fccher.example"
    data = (f"From: J\u00f6rg <{sender}>\r\nTo: <alice@example.test>\r\n"
            f"Subject: Gr\u00fc\u00dfe \u2603\r\n\r\nUnicode body \u00e9\u00e8\r\n").encode("utf-8")
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        r = c.cmd(f"MAIL FROM:<{sender}>".encode("utf-8"))
        assert r.code == 553 and r.enhanced == "5.6.7", r
        assert c.cmd("MAIL FROM:<x@y.example> SMTPUTF8=yes").code == 501
        assert c.cmd(f"MAIL FROM:<{sender}> SMTPUTF8 BODY=8BITMIME".encode("utf-8")).code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(data))
        qid = queued_id(c.reply())
        c.quit()
    raw, = stored(server, "alice")
    assert "Subject: Gr\u00fc\u00dfe \u2603".encode("utf-8") in raw
    assert f"Return-Path: <{sender}>".encode("utf-8") in raw
    m = parse_message(raw)
    rec = " ".join(m["Received"].split())
    assert re.search(r"\bwith UTF8SMTP id %s\b" % re.escape(qid), rec), rec


def test_smtputf8_invalid_utf8_refused(server):
    """RFC 6531 §3.3 / RFC 3629: an address that is not valid UTF-8 is a syntax error
    (501/553), even with SMTPUTF8."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        r = c.cmd(b"MAIL FROM:<bad\xff\xfe@client.example.net> SMTPUTF8")
        assert r.code in (501, 553), r
        r = c.cmd(b"MAIL FROM:<overlong\xc0\xaf@client.example.net> SMTPUTF8")
        assert r.code in (501, 553), r
        assert c.cmd("MAIL FROM:<sender@client.example.net> SMTPUTF8").code == 250
        r = c.cmd(b"RCPT TO:<\xed\xa0\x80@example.test>")   # a UTF-16 surrogate
        assert r.code in (501, 553), r
        assert c.cmd("NOOP").code == 250
        c.quit()


def test_smtputf8_alias_if_directory_allows(server):
    """RFC 6531 §3.3: a UTF-8 local part that the directory knows (an alias) is
    delivered. Skipped when the CLI refuses UTF-8 alias names."""
    r = server.cli("alias", "add", "j\u00f6rg@example.test", "alice@example.test", check=False)
    if r.returncode != 0:
        pytest.skip("the directory does not accept UTF-8 alias names: " + r.stderr.strip())
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net> SMTPUTF8").code == 250
        r = c.cmd("RCPT TO:<j\u00f6rg@example.test>")
        assert r.code == 250, r
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(message("utf8-alias").encode()))
        assert c.reply().code == 250
        c.quit()
    raw, = stored(server, "alice")
    assert parse_message(raw)["Subject"] == "utf8-alias"


# ---- DSN (RFC 3461) ----

def test_dsn_parameters_accepted(server):
    """RFC 3461 §4.1-4.4: NOTIFY, ORCPT on RCPT and RET, ENVID on MAIL are accepted and
    the message is delivered normally."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net> RET=HDRS ENVID=QQ314159+2Bx").code == 250
        r = c.cmd("RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@example.test")
        assert r.code == 250, r
        r = c.cmd("RCPT TO:<bob@example.test> NOTIFY=NEVER ORCPT=rfc822;Bob+2BOld@example.test")
        assert r.code == 250, r
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(message("dsn").encode()))
        assert c.reply().code == 250
        assert c.cmd("MAIL FROM:<sender@client.example.net> RET=FULL").code == 250
        assert c.cmd("RCPT TO:<alice@example.test> notify=delay").code == 250
        c.quit()
    stored(server, "alice")
    stored(server, "bob")


@pytest.mark.parametrize("line", [
    "RCPT TO:<alice@example.test> NOTIFY=NEVER,SUCCESS",          # §4.1: NEVER alone
    "RCPT TO:<alice@example.test> NOTIFY=BOGUS",
    "RCPT TO:<alice@example.test> NOTIFY=",
    "RCPT TO:<alice@example.test> NOTIFY=SUCCESS,SUCCESS",
    "RCPT TO:<alice@example.test> NOTIFY=SUCCESS NOTIFY=FAILURE",  # duplicate
    "RCPT TO:<alice@example.test> ORCPT=alice@example.test",      # §4.2: needs addr-type;
    "RCPT TO:<alice@example.test> ORCPT=rfc822;bad+zzxtext",      # xtext hex is upper-case
])
def test_dsn_bad_rcpt_parameters_501(server, line):
    """RFC 3461 §4.1-4.2: malformed NOTIFY / ORCPT are 501 (5.5.4); nothing delivered."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        r = c.cmd(line)
        assert r.code == 501, (line, r)
        assert r.enhanced is not None and r.enhanced.startswith("5.5.")
        assert c.cmd("DATA").code in (503, 554)
        c.quit()


def test_dsn_bad_mail_parameters_501(server):
    """RFC 3461 §4.3-4.4: RET must be FULL or HDRS; ENVID must be xtext of printable
    characters, at most 100 octets; duplicates are refused."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        for line in ("MAIL FROM:<s@client.example.net> RET=ALL",
                     "MAIL FROM:<s@client.example.net> RET",
                     "MAIL FROM:<s@client.example.net> ENVID=" + "a" * 101,
                     "MAIL FROM:<s@client.example.net> ENVID=+00",
                     "MAIL FROM:<s@client.example.net> RET=FULL RET=HDRS"):
            r = c.cmd(line)
            assert r.code == 501, (line, r)
        assert c.cmd("MAIL FROM:<s@client.example.net> ENVID=" + "a" * 100).code == 250
        c.quit()


def test_dsn_parameters_need_ehlo(server):
    """RFC 5321 §4.1.1.11 / RFC 1869: after HELO no extension was offered, so DSN,
    SIZE and SMTPUTF8 parameters are unknown (555)."""
    with SMTPRaw(server.ports["mx"]) as c:
        assert c.cmd("HELO client.example.net").code == 250
        assert c.cmd("MAIL FROM:<s@client.example.net> RET=HDRS").code == 555
        assert c.cmd("MAIL FROM:<s@client.example.net> SMTPUTF8").code == 555
        assert c.cmd("MAIL FROM:<s@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test> NOTIFY=NEVER").code == 555
        c.quit()
