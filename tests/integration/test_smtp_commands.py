"""SMTP commands, one by one, against the real rampartd (RFC 5321 §4.1, RFC 3030).

Every test talks to the mx listener of a fresh server with a real client
(smtplib, a raw socket or swaks) and checks both the reply codes and what did,
or did not, land in the Maildirs.
"""
import re
import shutil
import smtplib
import subprocess
import time

import pytest

from test_smtp_support import (SMTPRaw, body_of, dot_stuff, message, parse_message, queued_id,
                               settle, spool_files)


def stored(server, user, n=1):
    msgs = server.wait_messages(user, n)
    assert len(msgs) == n, f"{user}: {len(msgs)} messages, expected {n}"
    return [p.read_bytes() for p in msgs]


# ---- EHLO / HELO (RFC 5321 §4.1.1.1) ----

def test_greeting_and_ehlo_lists_extensions(server):
    """RFC 5321 §4.2 greeting; §4.1.1.1 EHLO; the extensions of RFC 2920, 1870, 6152,
    2034, 6531, 3030, 3207 and 3461 are advertised."""
    with SMTPRaw(server.ports["mx"]) as c:
        assert c.greeting.code == 220
        assert c.greeting.lines[0].startswith("mx.example.test ")
        assert "ESMTP" in c.greeting.text
        r = c.ehlo()
        assert r.lines[0].split()[0] == "mx.example.test"
        kw = {ln.split()[0].upper(): ln for ln in r.lines[1:]}
        for ext in ("PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8",
                    "CHUNKING", "STARTTLS", "DSN"):
            assert ext in kw, f"{ext} not advertised: {r.lines}"
        # RFC 1870 §4: SIZE carries the fixed maximum (35M by default).
        assert kw["SIZE"].split()[1] == str(35 * 1024 * 1024)
        # No AUTH on the mx listener, and never before TLS (RFC 4954 §4 / DESIGN.md).
        assert "AUTH" not in kw
        c.quit()


def test_ehlo_and_helo_need_a_domain(server):
    """RFC 5321 §4.1.1.1: EHLO/HELO take a domain; without one 501."""
    with SMTPRaw(server.ports["mx"]) as c:
        assert c.cmd("EHLO").code == 501
        assert c.cmd("HELO").code == 501
        assert c.cmd("EHLO bad\x01name").code == 501
        # Nothing was accepted: MAIL still needs a greeting (§4.1.4).
        assert c.cmd("MAIL FROM:<a@client.example.net>").code == 503
        c.ehlo()
        c.quit()


def test_helo_session_delivers_with_smtp_keyword(server):
    """RFC 5321 §4.1.1.1 HELO, no extensions: ESMTP parameters are refused (§4.1.1.11,
    555), plain MAIL works, Received: says "with SMTP" (RFC 3848)."""
    with SMTPRaw(server.ports["mx"]) as c:
        r = c.cmd("HELO client.example.net")
        assert r.code == 250 and r.lines[0].startswith("mx.example.test")
        assert len(r.lines) == 1, "HELO must not list extensions"
        r = c.cmd("MAIL FROM:<sender@client.example.net> SIZE=100")
        assert r.code == 555, r
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(message("helo-test").encode()))
        qid = queued_id(c.reply())
        c.quit()
    raw, = stored(server, "alice")
    rec = parse_message(raw)["Received"]
    assert re.search(r"\bwith SMTP id " + re.escape(qid) + r"\b", rec), rec
    assert "from client.example.net" in rec and "[127.0.0.1]" in rec


def test_re_ehlo_resets_transaction(server):
    """RFC 5321 §4.1.4: EHLO in a transaction resets it, like RSET."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        c.ehlo("again.example.net")
        # The transaction is gone: RCPT and DATA are out of sequence now.
        assert c.cmd("RCPT TO:<bob@example.test>").code == 503
        assert c.cmd("DATA").code == 503
        # And a new MAIL is not "nested".
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(message("re-ehlo", to="bob@example.test").encode()))
        assert c.reply().code == 250
        c.quit()
    stored(server, "bob")
    settle(server)
    assert server.messages("alice") == []


# ---- MAIL / RCPT / DATA (RFC 5321 §4.1.1.2-4) ----

def test_smtplib_delivery_and_received_header(server):
    """RFC 5321 §4.1.1.2-4 with Python's smtplib; §4.4 Received: with "with ESMTP"
    and the spool id of the 250 reply; the message lands once, intact."""
    msg = message("smtplib-plain", body="Line one.\r\nLine two.\r\n")
    with smtplib.SMTP("127.0.0.1", server.ports["mx"], timeout=10) as s:
        s.ehlo("client.example.net")
        s.mail("sender@client.example.net")
        code, _ = s.rcpt("alice@example.test")
        assert code == 250
        code, text = s.data(msg)
        assert code == 250
        qid = re.search(rb"queued as (\S+)", text).group(1).decode()
    raw, = stored(server, "alice")
    m = parse_message(raw)
    assert m["Subject"] == "smtplib-plain"
    assert m["Message-ID"] == "<smtplib-plain@client.example.net>"
    rec = m.get_all("Received")
    assert len(rec) == 1
    assert re.search(r"\bwith ESMTP id " + re.escape(qid) + r"\b", rec[0]), rec[0]
    assert "by mx.example.test" in rec[0]
    assert "using TLS" not in rec[0] and "cipher" not in rec[0]
    # "for" names the single recipient (RFC 5321 §4.4 FOR clause).
    assert "for <alice@example.test>" in rec[0]
    # The envelope sender is recorded by the delivery agent (RFC 5321 §4.4).
    assert m["Return-Path"] == "<sender@client.example.net>"
    assert body_of(raw).replace(b"\r\n", b"\n") == b"Line one.\nLine two.\n"


def test_swaks_delivery(server):
    """A second independent client: swaks, plain ESMTP on the mx listener."""
    if shutil.which("swaks") is None:
        pytest.skip("swaks not installed")
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(server.ports["mx"]),
                        "--from", "sender@client.example.net", "--to", "bob@example.test",
                        "--helo", "client.example.net", "--header", "Subject: via-swaks",
                        "--body", "swaks body line", "--timeout", "10"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"<[-~]\s+250 2\.0\.0 Ok: queued as", r.stdout), r.stdout
    raw, = stored(server, "bob")
    assert parse_message(raw)["Subject"] == "via-swaks"
    assert b"swaks body line" in body_of(raw)


def test_helo_name_cannot_inject_into_received(server):
    """RFC 5321 §4.4: the Received: header is ours; a HELO argument with comment
    characters cannot close our comment or add fields."""
    with SMTPRaw(server.ports["mx"]) as c:
        assert c.cmd("EHLO evil)(by\\trusted.example").code == 250
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(message("helo-inject").encode()))
        assert c.reply().code == 250
        c.quit()
    raw, = stored(server, "alice")
    rec = parse_message(raw)["Received"]
    assert "evil)" not in rec and "(by" not in rec and "\\" not in rec, rec
    assert rec.count("(") == rec.count(")"), rec


def test_mail_syntax_and_nested_mail(server):
    """RFC 5321 §4.1.1.2: MAIL syntax errors 501; a second MAIL in a transaction 503
    (§4.1.4); the null reverse-path <> is accepted (§4.5.5)."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL sender@client.example.net").code == 501
        assert c.cmd("MAIL FROM:sender@client.example.net").code == 501
        assert c.cmd("MAIL FROM:<no-at-sign>").code == 501
        r = c.cmd("MAIL FROM:<sender@client.example.net> FOO=BAR")
        assert r.code == 555, r   # RFC 5321 §4.1.1.11 unknown parameter
        assert c.cmd("MAIL FROM:<>").code == 250
        r = c.cmd("MAIL FROM:<sender@client.example.net>")
        assert r.code == 503 and r.enhanced == "5.5.1", r
        c.quit()


def test_rcpt_unknown_user_and_relay(server):
    """RFC 5321 §4.1.1.3 on the mx listener: RCPT only for local users (550 5.1.1); a
    non-local domain is a relay attempt (554 5.7.1); domains compare without case
    (§2.4); the transaction goes on with the recipients that were accepted."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        r = c.cmd("RCPT TO:<nobody@example.test>")
        assert (r.code, r.enhanced) == (550, "5.1.1"), r
        r = c.cmd("RCPT TO:<someone@elsewhere.example>")
        assert (r.code, r.enhanced) == (554, "5.7.1"), r
        r = c.cmd("RCPT TO:<alice@EXAMPLE.TEST>")
        assert r.code == 250, r   # domains are case-insensitive (RFC 5321 §2.4)
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(message("rcpt-mix").encode()))
        assert c.reply().code == 250
        c.quit()
    raw, = stored(server, "alice")
    assert parse_message(raw)["Subject"] == "rcpt-mix"
    settle(server)
    # One copy for alice whatever the spelling, in her one Maildir; nothing elsewhere.
    assert len(server.messages("alice")) == 1
    assert [p.name for p in server.mail.iterdir()] == ["example.test"]
    assert [p.name for p in (server.mail / "example.test").iterdir()] == ["alice"]


def test_quoted_local_part_and_source_route(server):
    """RFC 5321 §4.1.2: a quoted local part whose content is a plain dot-string is the
    same mailbox ("alice" = alice); a source route is accepted and ignored (§4.1.2,
    Appendix C) — the mailbox after it decides. Both reach alice, once."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<@relay.client.example.net:sender@client.example.net>").code == 250
        r = c.cmd('RCPT TO:<"alice"@example.test>')
        assert r.code == 250, r
        r = c.cmd("RCPT TO:<@mx.example.test,@other.example.test:alice@example.test>")
        assert r.code == 250, r
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(message("quoted-route").encode()))
        assert c.reply().code == 250
        c.quit()
    raw, = stored(server, "alice")
    m = parse_message(raw)
    assert m["Subject"] == "quoted-route"
    assert m["Return-Path"] == "<sender@client.example.net>"
    settle(server)
    assert len(server.messages("alice")) == 1


def test_postmaster_always_accepted(server):
    """RFC 5321 §4.5.1: "postmaster" is a reserved, case-insensitive local name; RCPT for
    postmaster at a served domain and the special "RCPT TO:<Postmaster>" (no domain)
    MUST be accepted. With postmaster@example.test aliased to alice, all three forms
    reach alice (one copy)."""
    server.cli("alias", "add", "postmaster@example.test", "alice@example.test")
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        results = {a: c.cmd(f"RCPT TO:<{a}>") for a in
                   ("postmaster@example.test", "POSTMASTER@example.test", "Postmaster")}
        c.cmd("RSET")
        c.quit()
    bad = {a: r for a, r in results.items() if r.code != 250}
    assert not bad, f"postmaster forms refused (RFC 5321 §4.5.1 MUST accept): {bad}"


def test_data_without_valid_recipient(server):
    """RFC 5321 §3.3: DATA with no accepted recipient gets 554 (or 503); nothing stored."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<nobody@example.test>").code == 550
        r = c.cmd("DATA")
        assert r.code in (503, 554), r
        # Not in DATA mode: the next line is a command.
        assert c.cmd("NOOP").code == 250
        c.quit()
    settle(server)
    assert server.messages("alice") == []


def test_commands_out_of_order(server):
    """RFC 5321 §4.1.4 / §4.3.2: bad sequence of commands gives 503 (5.5.1)."""
    with SMTPRaw(server.ports["mx"]) as c:
        for line in ("MAIL FROM:<sender@client.example.net>", "RCPT TO:<alice@example.test>",
                     "DATA"):
            r = c.cmd(line)
            assert r.code == 503 and r.enhanced == "5.5.1", (line, r)
        c.ehlo()
        for line in ("RCPT TO:<alice@example.test>", "DATA"):
            r = c.cmd(line)
            assert r.code == 503 and r.enhanced == "5.5.1", (line, r)
        c.quit()


def test_command_verbs_case_insensitive(server):
    """RFC 5321 §2.4: verbs and the FROM:/TO: keywords are case-insensitive."""
    with SMTPRaw(server.ports["mx"]) as c:
        assert c.cmd("ehlo client.example.net").code == 250
        assert c.cmd("mail from:<sender@client.example.net>").code == 250
        assert c.cmd("rCpT To:<alice@example.test>").code == 250
        assert c.cmd("data").code == 354
        c.send(dot_stuff(message("lowercase").encode()))
        assert c.reply().code == 250
        c.cmd("quit")
    raw, = stored(server, "alice")
    assert parse_message(raw)["Subject"] == "lowercase"


# ---- RSET / NOOP / QUIT / HELP / VRFY / EXPN (RFC 5321 §4.1.1.5-10) ----

def test_rset_discards_transaction(server):
    """RFC 5321 §4.1.1.5: RSET aborts the transaction; only the next one is delivered."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        r = c.cmd("RSET")
        assert r.code == 250 and r.enhanced == "2.0.0"
        assert c.cmd("RCPT TO:<alice@example.test>").code == 503
        assert c.cmd("RSET extra").code == 501   # RSET takes no argument
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(message("after-rset", to="bob@example.test").encode()))
        assert c.reply().code == 250
        c.quit()
    raw, = stored(server, "bob")
    assert parse_message(raw)["Subject"] == "after-rset"
    settle(server)
    assert server.messages("alice") == []


def test_noop_help_quit(server):
    """RFC 5321 §4.1.1.9 NOOP (250, argument ignored), §4.1.1.8 HELP (214/211),
    §4.1.1.10 QUIT (221 then close). NOOP and HELP work before EHLO (§4.1.4)."""
    with SMTPRaw(server.ports["mx"]) as c:
        r = c.cmd("NOOP")
        assert r.code == 250 and r.enhanced == "2.0.0"
        assert c.cmd("NOOP some string").code == 250
        r = c.cmd("HELP")
        assert r.code in (211, 214), r
        assert "MAIL" in r.text and "RCPT" in r.text
        assert c.cmd("HELP MAIL").code in (211, 214, 504)
        r = c.cmd("QUIT")
        assert r.code == 221 and r.enhanced == "2.0.0"
        assert c.closed(5), "server did not close after QUIT"


def test_quit_in_transaction_delivers_nothing(server):
    """RFC 5321 §4.1.1.10: QUIT mid-transaction aborts it."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("QUIT").code == 221
        assert c.closed(5)
    settle(server)
    assert server.messages("alice") == []


def test_vrfy_never_confirms_a_user(server):
    """RFC 5321 §3.5.3 / §7.3: VRFY answers 252 for everybody: the reply for an existing
    user is identical to the reply for a non-existing one (no address harvesting)."""
    with SMTPRaw(server.ports["mx"]) as c:
        before = c.cmd("VRFY alice")        # allowed before EHLO
        c.ehlo()
        replies = [c.cmd(f"VRFY {a}") for a in ("alice", "alice@example.test", "<bob@example.test>",
                                                 "nobody", "nobody@example.test",
                                                 "x@elsewhere.example")]
        for r in [before] + replies:
            assert r.code == 252, r
            assert "alice" not in r.text and "nobody" not in r.text
        assert len({r.text for r in [before] + replies}) == 1, replies
        c.quit()


def test_expn_never_discloses_a_list(server):
    """RFC 5321 §3.5.2 / §7.3: EXPN may be disabled (502) or 252; it never lists the
    members of an alias."""
    server.cli("alias", "add", "team@example.test", "alice@example.test")
    server.cli("alias", "add", "team@example.test", "bob@example.test")
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        for arg in ("team", "team@example.test", "nobody@example.test"):
            r = c.cmd(f"EXPN {arg}")
            assert r.code in (252, 502, 550), r
            assert "alice" not in r.text and "bob" not in r.text, r
        assert c.cmd("NOOP").code == 250
        c.quit()


def test_unknown_command_and_auth(server):
    """RFC 5321 §4.2.4: an unrecognised command is 500 (5.5.2) and the session goes on;
    AUTH is not offered on the mx listener (only on submission, see test_smtp_auth.py):
    503 5.5.1, it is not listed in EHLO, and the session goes on."""
    with SMTPRaw(server.ports["mx"]) as c:
        r = c.ehlo()
        assert not any(ln.upper().startswith("AUTH") for ln in r.lines), r
        r = c.cmd("FOOBAR baz")
        assert r.code == 500 and r.enhanced in ("5.5.1", "5.5.2"), r   # RFC 3463 §3.6
        assert c.cmd("MAILX FROM:<a@b.example>").code == 500   # whole-word verbs only
        r = c.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA==")
        assert (r.code, r.enhanced) == (503, "5.5.1"), r
        assert c.cmd("NOOP").code == 250
        c.quit()


def test_enhanced_status_codes_everywhere(server):
    """RFC 2034 §3: once ENHANCEDSTATUSCODES is advertised, every reply after EHLO
    (except the greeting and the EHLO reply itself) starts with an enhanced status code
    whose class matches the reply code (RFC 3463 §2)."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        lines = ["MAIL FROM:<sender@client.example.net>", "RCPT TO:<nobody@example.test>",
                 "RCPT TO:<x@elsewhere.example>", "RCPT TO:<alice@example.test>", "NOOP",
                 "FROB", "VRFY alice", "RSET", "DATA", "QUIT"]
        for line in lines:
            r = c.cmd(line)
            assert r.enhanced is not None, (line, r)
            assert r.enhanced[0] == str(r.code)[0], (line, r)


# ---- BDAT (RFC 3030 CHUNKING) ----

def test_bdat_several_chunks(server):
    """RFC 3030 §2-3: a message in several chunks, cut mid-line; each non-last chunk gets
    250, the LAST one the queue reply. No dot-stuffing in BDAT: a line "." and a line
    ".." are data as they are. A missing final CRLF is supplied."""
    msg = (message("bdat-chunks", body="first line\r\n.\r\n..two dots\r\nlast line").encode())
    chunks = [msg[:20], msg[20:77], msg[77:]]
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        for i, ch in enumerate(chunks):
            last = i == len(chunks) - 1
            c.send(b"BDAT %d%s\r\n" % (len(ch), b" LAST" if last else b"") + ch)
            r = c.reply()
            assert r.code == 250, (i, r)
        qid = queued_id(r)
        c.quit()
    raw, = stored(server, "alice")
    m = parse_message(raw)
    assert m["Subject"] == "bdat-chunks"
    assert re.search(r"with ESMTP id " + re.escape(qid), m["Received"])
    assert body_of(raw).replace(b"\r\n", b"\n") == b"first line\n.\n..two dots\nlast line\n"


def test_bdat_zero_last_and_pipelined(server):
    """RFC 3030 §3: "BDAT 0 LAST" ends a message; chunks may be pipelined (§4.2)."""
    msg = message("bdat-zero-last").encode()
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<sender@client.example.net>\r\nRCPT TO:<bob@example.test>\r\n"
               b"BDAT %d\r\n" % len(msg) + msg + b"BDAT 0 LAST\r\n")
        rs = c.replies(4)
        assert [r.code for r in rs] == [250, 250, 250, 250], rs
        queued_id(rs[3])
        c.quit()
    raw, = stored(server, "bob")
    assert parse_message(raw)["Subject"] == "bdat-zero-last"


def test_bdat_without_mail_is_consumed_then_503(server):
    """RFC 3030 §3: a BDAT chunk is always read, even when refused; without MAIL the
    reply is 503 and the chunk's bytes are not taken as commands."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        payload = b"NOOP\r\nMAIL FROM:<x@y.example>\r\n"
        c.send(b"BDAT %d LAST\r\n" % len(payload) + payload)
        r = c.reply()
        assert r.code == 503, r
        # Had the chunk been parsed as commands we would see 250 replies here.
        assert c.silent(0.3)
        assert c.cmd("NOOP").code == 250
        # With MAIL but no recipient: refused (554 or 503), chunk consumed too.
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        c.send(b"BDAT 6 LAST\r\nNOOP\r\n")
        assert c.reply().code in (503, 554)
        assert c.silent(0.3)
        assert c.cmd("NOOP").code == 250
        c.quit()
    settle(server)
    assert server.messages("alice") == [] and server.messages("bob") == []


def test_data_after_bdat_is_503(server):
    """RFC 3030 §3: DATA and BDAT must not be mixed in one transaction."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        part = message("mixed").encode()
        c.send(b"BDAT %d\r\n" % len(part) + part)
        assert c.reply().code == 250
        r = c.cmd("DATA")
        assert r.code == 503, r
        # The transaction can still be finished with BDAT.
        c.send(b"BDAT 0 LAST\r\n")
        assert c.reply().code == 250
        c.quit()
    raw, = stored(server, "alice")
    assert parse_message(raw)["Subject"] == "mixed"


def test_bdat_chunk_bigger_than_size_limit(make_server):
    """RFC 3030 §3 + RFC 1870 §6: a chunk that takes the message past the size limit is
    read in full and refused 552 5.3.4; the session continues; nothing is stored."""
    srv = make_server(settings={"message_size_limit": "4K"})
    big = (b"X" * 70 + b"\r\n") * 100   # 7200 octets
    with SMTPRaw(srv.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        c.send(b"BDAT %d LAST\r\n" % len(big) + big)
        r = c.reply()
        assert (r.code, r.enhanced) == (552, "5.3.4"), r
        # Not desynchronised by the chunk: the next line is a command.
        assert c.cmd("NOOP").code == 250
        # A chunk that fits is fine afterwards.
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        ok = message("small-after-big").encode()
        c.send(b"BDAT %d LAST\r\n" % len(ok) + ok)
        assert c.reply().code == 250
        c.quit()
    raw, = srv.wait_messages("alice", 1)[:1]
    assert parse_message(raw.read_bytes())["Subject"] == "small-after-big"
    settle(srv)
    assert len(srv.messages("alice")) == 1


def test_bdat_failed_chunk_then_pipelined_chunks(server):
    """RFC 3030 §4: when a chunk fails (here: a bare LF), the transaction fails; chunks
    already pipelined behind it are still read (never taken as commands) and refused;
    nothing is stored and the spool's incoming/ is cleaned."""
    bad = b"Subject: bad-chunk\r\n\r\nbare\nLF\r\n"
    more = b"NOOP\r\nNOOP\r\n"
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<sender@client.example.net>\r\nRCPT TO:<alice@example.test>\r\n"
               + b"BDAT %d\r\n" % len(bad) + bad
               + b"BDAT %d\r\n" % len(more) + more
               + b"BDAT %d LAST\r\n" % len(more) + more)
        rs = c.replies(5)
        codes = [r.code for r in rs]
        assert codes[:2] == [250, 250], rs
        assert all(500 <= x < 600 for x in codes[2:]), rs
        assert c.silent(0.3), f"chunk content answered as commands: {c.buf!r}"
        assert c.cmd("NOOP").code == 250
        c.quit()
    settle(server)
    assert server.messages("alice") == []
    assert not spool_files(server, "incoming")


@pytest.mark.parametrize("abort", ["RSET", "EHLO again.example.net", "QUIT"])
def test_bdat_transaction_aborted_cleans_spool(server, abort):
    """RFC 5321 §4.1.1.5 / §4.1.4 / §4.1.1.10: RSET, EHLO or QUIT after some BDAT chunks
    abort the transaction: nothing is delivered and the partly written spool file is
    removed from incoming/."""
    part = message("aborted-bdat").encode()
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        c.send(b"BDAT %d\r\n" % len(part) + part)
        assert c.reply().code == 250
        r = c.cmd(abort)
        assert r.code in (221, 250), r
        if abort != "QUIT":
            assert c.cmd("BDAT 0 LAST").code == 503   # the transaction is gone
            c.quit()
    deadline = time.time() + 5
    while spool_files(server, "incoming") and time.time() < deadline:
        time.sleep(0.05)
    assert not spool_files(server, "incoming"), spool_files(server, "incoming")
    settle(server)
    assert server.messages("alice") == []


def test_bdat_bad_syntax_closes(server):
    """RFC 3030 §3: a BDAT whose size cannot be read cannot be followed: 501 (and the
    server may close, since it cannot find the next command)."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        r = c.cmd("BDAT lots")
        assert r.code == 501, r
