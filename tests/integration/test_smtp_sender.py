"""Sender accountability of authenticated submission (RFC 6409 §6.1, RFC 5321 §4.2.2).

A user who logged in may send only as an address they own: their own, with a
+tag (recipient_delimiter), an alias that delivers to them, or a send-as grant
(`rampart sendas add USER ADDRESS|@DOMAIN`). That holds for MAIL FROM (553 5.7.1 at
MAIL) and for every mailbox of the From: header (553 5.7.1 at the end of DATA/BDAT,
RFC 5322 §3.6.2), and the message must have exactly one From: (550 5.6.0, RFC 5322
§3.6). A refused message is neither delivered nor queued, and the session goes on.
"""
import re
import time

import pytest

from conftest import Rampart, audit_events, auth_plain_b64, wait_audit
from test_smtp_support import SMTPRaw, dot_stuff, parse_message, spool_files

ALICE = "alice@example.test"
BOB = "bob@example.test"
FAST = {"auth_failure_delay": "50ms"}


@pytest.fixture
def srv(make_checked_server):
    """A server whose failed logins are answered after 50 ms instead of 2 s."""
    return make_checked_server(settings=FAST)


def authed(srv, user=ALICE, listener="submission"):
    """An SMTPRaw session inside TLS, authenticated as user."""
    if listener == "submissions":
        c = SMTPRaw(srv.ports[listener], tls=True)
    else:
        c = SMTPRaw(srv.ports[listener])
        c.ehlo()
        c.starttls()
    c.ehlo()
    r = c.cmd("AUTH PLAIN " + auth_plain_b64(user, Rampart.PASSWORDS[user]))
    assert r.code == 235, r
    return c


def msg(headers, subject, body="Hello.\r\n"):
    """A message with the given header lines (From: etc.) plus To/Subject/Message-ID."""
    hdr = "".join(h + "\r\n" for h in headers)
    return (f"{hdr}To: <bob@example.test>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}@client.example.net>\r\n\r\n{body}")


def send(c, mail_from, headers, subject, rcpts=(BOB,)):
    """One transaction; returns the final reply (of MAIL when it is refused)."""
    r = c.cmd(f"MAIL FROM:<{mail_from}>")
    if r.code != 250:
        return r
    for rcpt in rcpts:
        rr = c.cmd(f"RCPT TO:<{rcpt}>")
        assert rr.code == 250, (rcpt, rr)
    assert c.cmd("DATA").code == 354
    c.send(dot_stuff(msg(headers, subject).encode()))
    return c.reply()


def delivered_subjects(srv, user="bob"):
    time.sleep(0.05)
    return sorted(parse_message(p.read_bytes())["Subject"] for p in srv.messages(user))


def assert_nothing_left(srv):
    """Nothing of a refused message stays in the spool."""
    deadline = time.time() + 10
    while (spool_files(srv, "queue") or spool_files(srv, "incoming")) and time.time() < deadline:
        time.sleep(0.05)
    assert not spool_files(srv, "queue") and not spool_files(srv, "incoming")


# ---- MAIL FROM ----

@pytest.mark.parametrize("sender", [BOB, "carol@remote.test", "alice@example.test.evil.test",
                                    "alicex@example.test", "postmaster@example.test"])
def test_forged_mail_from_is_553(srv, sender):
    """RFC 5321 §4.2.2 / RFC 3463 5.7.1: an envelope sender alice does not own is 553
    5.7.1 at MAIL; no transaction starts (RCPT is 503); the session goes on and alice's
    own address works."""
    c = authed(srv)
    r = c.cmd(f"MAIL FROM:<{sender}>")
    assert (r.code, r.enhanced) == (553, "5.7.1"), r
    assert c.cmd(f"RCPT TO:<{BOB}>").code == 503
    r = send(c, ALICE, [f"From: <{ALICE}>"], "after-forged-mail")
    assert r.code == 250, r
    c.quit()
    srv.wait_messages("bob", 1)
    assert delivered_subjects(srv) == ["after-forged-mail"]
    assert f"alice@example.test may not send as <{sender}>" in srv.log_text()


def test_mail_from_case_insensitive_domain(srv):
    """RFC 5321 §2.4: domain names are case-insensitive; ALICE@EXAMPLE.TEST is alice's."""
    c = authed(srv)
    r = send(c, "alice@EXAMPLE.TEST", ["From: Alice <alice@Example.Test>"], "case")
    assert r.code == 250, r
    c.quit()
    srv.wait_messages("bob", 1)


# ---- From: header ----

def test_forged_from_header_is_553_and_nothing_delivered(srv):
    """The From: header is what the recipient sees: a mailbox alice does not own there is
    553 5.7.1 after the final dot even though MAIL FROM was hers; nothing is delivered
    to the local recipient nor queued for the external one."""
    c = authed(srv)
    r = send(c, ALICE, ["From: Bob <bob@example.test>"], "forged-header",
             rcpts=(BOB, "carol@remote.test"))
    assert (r.code, r.enhanced) == (553, "5.7.1"), r
    # The session continues with a clean state.
    assert c.cmd(f"RCPT TO:<{BOB}>").code == 503
    r = send(c, ALICE, ["From: Alice <alice@example.test>"], "clean")
    assert r.code == 250, r
    c.quit()
    srv.wait_messages("bob", 1)
    assert delivered_subjects(srv) == ["clean"]
    assert_nothing_left(srv)
    assert "forged-header" not in srv.cli("queue", "list").stdout


@pytest.mark.parametrize("header", [
    'From: "Alice Liddell" <alice@example.test>',
    "From: Alice Liddell <alice@example.test>",
    "From: alice@example.test",
    "From: alice@example.test (Alice in a comment)",
    'From: "Bob <bob@example.test>" <alice@example.test>',   # the display name is not the address
    "From: =?utf-8?q?Alice_=C3=A9?= <alice@example.test>",
    "From: Alice\r\n <alice@example.test>",                      # folded
    "FROM: <alice@example.test>",                                 # field names are case-insensitive
])
def test_own_from_passes(srv, header):
    """RFC 5322 §3.4 / §3.6.2: display names, comments, encoded words, folding and the
    field name's case do not matter; the mailbox is alice's, so the message goes."""
    c = authed(srv)
    r = send(c, ALICE, [header], "own-from")
    assert r.code == 250, (header, r)
    c.quit()
    srv.wait_messages("bob", 1)


@pytest.mark.parametrize("header", [
    "From: Alice <bob@example.test>",
    'From: "alice@example.test" <bob@example.test>',            # looks like alice, is bob
    "From: bob@example.test (alice@example.test)",
    "From: Alice <alice@example.test.evil.test>",
    "From: Alice <alice@remote.test>",
])
def test_forged_from_variants_are_553(srv, header):
    """The address that counts is the addr-spec, not what a display name or comment says."""
    c = authed(srv)
    r = send(c, ALICE, [header], "forged-variant")
    assert (r.code, r.enhanced) == (553, "5.7.1"), (header, r)
    c.quit()
    assert_nothing_left(srv)
    assert srv.messages("bob") == []


def test_plus_tag_passes(srv):
    """A subaddress of alice's own (recipient_delimiter "+") is hers, in MAIL FROM and
    From:."""
    c = authed(srv)
    r = send(c, "alice+lists@example.test", ["From: Alice <alice+news@example.test>"], "tagged")
    assert r.code == 250, r
    c.quit()
    srv.wait_messages("bob", 1)


def test_alias_that_delivers_to_alice_passes(srv):
    """An alias delivering to alice is an address she may send as; bob may not use it."""
    srv.cli("alias", "add", "sales@example.test", ALICE)
    c = authed(srv)
    r = send(c, "sales@example.test", ["From: Sales <sales@example.test>"], "alias-alice")
    assert r.code == 250, r
    c.quit()
    c = authed(srv, BOB)
    r = c.cmd("MAIL FROM:<sales@example.test>")
    assert (r.code, r.enhanced) == (553, "5.7.1"), r
    r = send(c, BOB, ["From: Sales <sales@example.test>"], "alias-bob")
    assert (r.code, r.enhanced) == (553, "5.7.1"), r
    c.quit()
    srv.wait_messages("bob", 1)
    assert delivered_subjects(srv) == ["alias-alice"]


def test_sendas_grant_passes_and_revocation(srv):
    """`rampart sendas add alice bob` lets alice send as bob (MAIL FROM and From:), from
    the next transaction on; `sendas del` takes it back. Bob gains nothing from it."""
    c = authed(srv)
    assert c.cmd(f"MAIL FROM:<{BOB}>").code == 553
    srv.cli("sendas", "add", ALICE, BOB)
    assert srv.cli("sendas", "list", ALICE).stdout == f"{ALICE} {BOB}\n"
    r = send(c, BOB, ["From: Bob <bob@example.test>"], "granted")
    assert r.code == 250, r
    srv.cli("sendas", "del", ALICE, BOB)
    assert srv.cli("sendas", "list").stdout == ""
    r = c.cmd(f"MAIL FROM:<{BOB}>")
    assert (r.code, r.enhanced) == (553, "5.7.1"), r
    r = send(c, ALICE, ["From: Bob <bob@example.test>"], "revoked")
    assert (r.code, r.enhanced) == (553, "5.7.1"), r
    c.quit()
    b = authed(srv, BOB)
    assert b.cmd(f"MAIL FROM:<{ALICE}>").code == 553
    b.quit()
    srv.wait_messages("bob", 1)
    assert delivered_subjects(srv) == ["granted"]


def test_sendas_domain_grant(srv):
    """A grant of @partner.test covers every address of that domain (any local part,
    case-insensitive domain) and nothing else: not a subdomain, not a look-alike."""
    srv.cli("sendas", "add", ALICE, "@partner.test")
    c = authed(srv)
    for i, addr in enumerate(["info@partner.test", "ceo@PARTNER.test"]):
        r = send(c, addr, [f"From: Partner <{addr}>"], f"partner-{i}")
        assert r.code == 250, (addr, r)
    for addr in ["info@sub.partner.test", "info@partner.test.evil.test", "info@xpartner.test"]:
        r = c.cmd(f"MAIL FROM:<{addr}>")
        assert (r.code, r.enhanced) == (553, "5.7.1"), (addr, r)
        r = send(c, ALICE, [f"From: <{addr}>"], "bad-partner")
        assert (r.code, r.enhanced) == (553, "5.7.1"), (addr, r)
    c.quit()
    srv.wait_messages("bob", 2)
    assert delivered_subjects(srv) == ["partner-0", "partner-1"]


def test_two_from_headers_is_550(srv):
    """RFC 5322 §3.6: exactly one From: field. Two — even both alice's — is 550 5.6.0."""
    c = authed(srv)
    r = send(c, ALICE, ["From: <alice@example.test>", "From: <alice@example.test>"], "two-from")
    assert (r.code, r.enhanced) == (550, "5.6.0"), r
    r = send(c, ALICE, ["From: <alice@example.test>", "From: <bob@example.test>"], "two-from-2")
    assert r.code in (550, 553), r
    c.quit()
    assert_nothing_left(srv)
    assert srv.messages("bob") == []


def test_no_from_header_is_550(srv):
    """RFC 5322 §3.6: From: is required; a message without one is 550 5.6.0."""
    c = authed(srv)
    r = send(c, ALICE, ["Sender: <alice@example.test>"], "no-from")
    assert (r.code, r.enhanced) == (550, "5.6.0"), r
    c.quit()
    assert_nothing_left(srv)
    assert srv.messages("bob") == []


def test_from_in_body_is_not_a_header(srv):
    """A "From:" line after the empty line is body text, not a second field."""
    c = authed(srv)
    assert c.cmd(f"MAIL FROM:<{ALICE}>").code == 250
    assert c.cmd(f"RCPT TO:<{BOB}>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(dot_stuff(b"From: <alice@example.test>\r\nSubject: body-from\r\n\r\n"
                     b"From: <bob@example.test>\r\n"))
    assert c.reply().code == 250
    c.quit()
    srv.wait_messages("bob", 1)


@pytest.mark.parametrize("header,code", [
    ("From: <alice@example.test>, <alice+b@example.test>", 250),
    ("From: Alice <alice@example.test>, Bob <bob@example.test>", 553),
    ("From: <bob@example.test>, <alice@example.test>", 553),
    ("From: Team: alice@example.test, carol@remote.test;", 553),
])
def test_from_address_list(srv, header, code):
    """RFC 5322 §3.6.2: From: may be a mailbox-list; every mailbox in it must be alice's
    (and when there are several, Sender: would be required — not enforced here)."""
    c = authed(srv)
    r = send(c, ALICE, [header, f"Sender: <{ALICE}>"], "list")
    assert r.code == code, (header, r)
    if code == 553:
        assert r.enhanced == "5.7.1", r
    c.quit()
    if code == 250:
        srv.wait_messages("bob", 1)
    else:
        assert_nothing_left(srv)
        assert srv.messages("bob") == []


# ---- BDAT (RFC 3030) ----

def bdat(c, chunks):
    """Sends the chunks with BDAT (the last one LAST); returns the last reply."""
    r = None
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        c.send(f"BDAT {len(chunk)}{' LAST' if last else ''}\r\n".encode() + chunk)
        r = c.reply()
        if not last:
            assert r.code == 250, (i, r)
    return r


def test_bdat_forged_from_split_across_chunks(srv):
    """RFC 3030 with a forged From: whose field name, address and line end fall in
    different chunks: 553 5.7.1 at BDAT LAST, nothing delivered; then a clean BDAT
    message split the same way is delivered."""
    c = authed(srv)
    forged = (b"Subject: bdat-forged\r\nFr", b"om: Bob <bob@exa", b"mple.test>", b"\r\n\r\nbody\r\n")
    assert c.cmd(f"MAIL FROM:<{ALICE}>").code == 250
    assert c.cmd(f"RCPT TO:<{BOB}>").code == 250
    r = bdat(c, forged)
    assert (r.code, r.enhanced) == (553, "5.7.1"), r
    clean = (b"Subject: bdat-clean\r\nFr", b"om: Alice <alice@exa", b"mple.test>", b"\r\n\r\nbody\r\n")
    assert c.cmd(f"MAIL FROM:<{ALICE}>").code == 250
    assert c.cmd(f"RCPT TO:<{BOB}>").code == 250
    r = bdat(c, clean)
    assert r.code == 250, r
    c.quit()
    srv.wait_messages("bob", 1)
    assert delivered_subjects(srv) == ["bdat-clean"]
    assert_nothing_left(srv)


def test_bdat_second_from_in_later_chunk(srv):
    """A second From: arriving in a later chunk is still a second From: (550 5.6.0)."""
    c = authed(srv)
    assert c.cmd(f"MAIL FROM:<{ALICE}>").code == 250
    assert c.cmd(f"RCPT TO:<{BOB}>").code == 250
    r = bdat(c, (b"From: <alice@example.test>\r\nSubject: x\r\n", b"From: <alice@example.test>\r\n",
                 b"\r\nbody\r\n"))
    assert (r.code, r.enhanced) == (550, "5.6.0"), r
    c.quit()
    assert_nothing_left(srv)
    assert srv.messages("bob") == []


# ---- null sender ----

def test_null_sender_with_own_from_passes(srv):
    """MAIL FROM:<> (RFC 5321 §4.5.5) is allowed to an authenticated user, but the From:
    header is still checked: hers passes, bob's is 553 5.7.1."""
    c = authed(srv)
    r = send(c, "", ["From: Alice <alice@example.test>"], "null-own")
    assert r.code == 250, r
    r = send(c, "", ["From: Bob <bob@example.test>"], "null-forged")
    assert (r.code, r.enhanced) == (553, "5.7.1"), r
    c.quit()
    srv.wait_messages("bob", 1)
    assert delivered_subjects(srv) == ["null-own"]
    raw = srv.messages("bob")[0].read_bytes()
    assert raw.splitlines()[0] == b"Return-Path: <>", raw[:200]


# ---- unauthenticated mx is not affected ----

def test_mx_does_not_check_senders(srv):
    """The sender rules are for authenticated users: on mx, mail from a remote sender
    with any From: for a local recipient is delivered as before."""
    with SMTPRaw(srv.ports["mx"]) as c:
        c.ehlo("relay.remote.test")
        r = send(c, "carol@remote.test", ["From: Bob <bob@example.test>"], "mx-any-from")
        assert r.code == 250, r
        c.quit()
    srv.wait_messages("bob", 1)


def test_denied_sender_audited_nowhere_as_login(srv):
    """A 553 is not a failed login: the audit log keeps exactly one auth line (the ok)."""
    c = authed(srv)
    assert c.cmd(f"MAIL FROM:<{BOB}>").code == 553
    c.quit()
    wait_audit(srv, 1)
    time.sleep(0.2)
    evs = audit_events(srv, "auth")
    assert [e["result"] for e in evs] == ["ok"], evs
