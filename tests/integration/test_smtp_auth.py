"""SMTP AUTH (RFC 4954) on the submission listeners, with real clients.

What is checked, each against the real rampartd:
  - smtplib AUTH PLAIN (RFC 4616) and AUTH LOGIN, each explicitly, after STARTTLS on
    `submission` and on implicit TLS (`submissions`): 235, then a message to an
    external and a local recipient is accepted; the external one waits in the queue
    (`rampart queue list`), the local one lands in the Maildir;
  - no AUTH in the clear: EHLO before STARTTLS does not list it, AUTH there is 538
    5.7.11 (RFC 4954 §4, §6) and audited `tls-required`; MAIL before AUTH is 530 5.7.0;
    the mx listener never offers AUTH and answers it 503;
  - failures: 535 5.7.8 after auth_failure_delay, the same reply for an unknown user,
    421 4.7.0 and close after auth_max_failures, 503 for a second AUTH, 501 5.7.0 for
    `*`, 501 5.5.2 for bad base64, 504 5.5.4 for an unknown mechanism, the 12288-octet
    response line of RFC 4954 §4 read (a longer one 500 5.5.6), PLAIN authzid != authcid;
  - Received: of authenticated mail has no client address unless received_auth_client;
  - the audit log has one `auth` line per attempt with the right fields, and the
    password is in no log and no file of the state directory;
  - allow_plaintext_auth: AUTH without TLS from loopback, with a loud warning.
"""
import base64
import re
import smtplib
import socket
import time

import pytest

from conftest import (Rampart, audit_events, auth_plain_b64, client_tls_context, login,
                      smtp_client, wait_audit)
from test_smtp_support import (SMTPRaw, dot_stuff, message, parse_message, queued_id,
                               spool_files)

ALICE = "alice@example.test"
BOB = "bob@example.test"
ALICE_PW = Rampart.PASSWORDS[ALICE]
FAST = {"auth_failure_delay": "50ms"}


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


@pytest.fixture
def srv(make_checked_server):
    """A server whose failed logins are answered after 50 ms instead of 2 s."""
    return make_checked_server(settings=FAST)


def raw_tls(r, listener="submission", source=None):
    """An SMTPRaw inside TLS after EHLO (STARTTLS, or implicit TLS on submissions)."""
    if listener == "submissions":
        c = SMTPRaw(r.ports[listener], tls=True)
    else:
        c = SMTPRaw(r.ports[listener])
        c.ehlo()
        c.starttls()
    c.ehlo()
    return c


def ehlo_keywords(reply):
    return {ln.split()[0].upper(): ln for ln in reply.lines[1:]}


def session_of(r, port, timeout=5):
    """The session id the process log gives the connection from client port `port`."""
    pat = re.compile(r"smtp (\S+): connect from 127\.0\.0\.\d+:%d on " % port)
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = pat.search(r.log_text())
        if m:
            return m.group(1)
        time.sleep(0.05)
    raise AssertionError(f"no connect line for client port {port}:\n" + r.log_text()[-3000:])


def queue_list(r):
    return r.cli("queue", "list").stdout


def wait_queue_pending(r, rcpt, timeout=10):
    deadline = time.time() + timeout
    while True:
        out = queue_list(r)
        if re.search(r"^\s+pending\s+%s\b" % re.escape(rcpt), out, re.M):
            return out
        if time.time() > deadline:
            raise AssertionError(f"{rcpt} not pending in the queue:\n{out}")
        time.sleep(0.1)


# ---- success: PLAIN and LOGIN, STARTTLS and implicit TLS, then relay ----

@pytest.mark.parametrize("listener", ["submission", "submissions"])
@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_auth_then_relay_and_local_delivery(srv, listener, mech):
    """RFC 4954 §4/§6 and RFC 6409 §4.3: an authenticated client may relay. The external
    recipient is accepted and stays pending in the queue (no outbound delivery yet); the
    local one in the same message lands in bob's Maildir."""
    s = login(srv, ALICE, listener=listener, mech=mech)
    port = s.sock.getsockname()[1]
    tls_version = s.sock.version()
    assert s.has_extn("auth") and set(s.esmtp_features["auth"].upper().split()) == {"PLAIN", "LOGIN"}
    subject = f"relay-{listener}-{mech}"
    s.mail(ALICE)
    assert s.rcpt("carol@remote.test") == (250, b"2.1.5 Ok")
    assert s.rcpt(BOB)[0] == 250
    code, text = s.data(message(subject, frm=ALICE, to="carol@remote.test"))
    assert code == 250, text
    qid = re.search(rb"queued as (\S+)", text).group(1).decode()
    s.quit()

    raw = srv.wait_messages("bob", 1)[0].read_bytes()
    assert parse_message(raw)["Subject"] == subject
    out = wait_queue_pending(srv, "carol@remote.test")
    assert qid in out and "<alice@example.test>" in out, out
    # The Maildir copy exists a moment before the queue marks bob delivered.
    deadline = time.time() + 10
    while re.search(r"pending\s+bob@example\.test", out):
        assert time.time() < deadline, out
        time.sleep(0.05)
        out = queue_list(srv)

    ok, = wait_audit(srv, 1, pred=lambda e: e["result"] == "ok")
    assert ok["user"] == ALICE and ok["mech"] == mech and ok["listener"] == listener
    assert ok["port"] == port and ok["tls"] == tls_version and ok["proto"] == "smtp"
    assert "reason" not in ok


def test_auth_login_without_initial_response(srv):
    """The classic LOGIN exchange (no initial response): 334 VXNlcm5hbWU6 ("Username:"),
    334 UGFzc3dvcmQ6 ("Password:"), then 235 2.7.0."""
    c = raw_tls(srv)
    r = c.cmd("AUTH LOGIN")
    assert (r.code, r.lines) == (334, ["VXNlcm5hbWU6"]), r
    r = c.cmd(b64(ALICE))
    assert (r.code, r.lines) == (334, ["UGFzc3dvcmQ6"]), r
    r = c.cmd(b64(ALICE_PW))
    assert (r.code, r.enhanced) == (235, "2.7.0"), r
    assert c.cmd(f"MAIL FROM:<{ALICE}>").code == 250
    c.quit()


def test_auth_plain_without_initial_response(srv):
    """RFC 4954 §4: PLAIN with an empty challenge ("334 ") then the response line."""
    c = raw_tls(srv, "submissions")
    r = c.cmd("AUTH PLAIN")
    assert r.code == 334 and r.lines == [""], r
    r = c.cmd(auth_plain_b64(ALICE, ALICE_PW))
    assert (r.code, r.enhanced) == (235, "2.7.0"), r
    c.quit()


def test_auth_mechanism_name_case_insensitive(srv):
    """RFC 4954 §4 / RFC 4422 §3.1: mechanism names are case-insensitive."""
    c = raw_tls(srv)
    r = c.cmd("auth plain " + auth_plain_b64(ALICE, ALICE_PW))
    assert r.code == 235, r
    c.quit()


# ---- no AUTH in the clear, none on mx ----

def test_no_auth_before_starttls(srv):
    """RFC 4954 §4/§6, RFC 3207 §4, RFC 8314: before TLS, EHLO does not list AUTH, AUTH
    PLAIN with valid credentials is 538 5.7.11 (the password is not used: the audit line
    says tls-required, no user), MAIL is 530 5.7.0. After STARTTLS, AUTH is listed."""
    c = SMTPRaw(srv.ports["submission"])
    kws = ehlo_keywords(c.ehlo())
    assert "AUTH" not in kws and "STARTTLS" in kws, kws
    port = c.sock.getsockname()[1]
    r = c.cmd("AUTH PLAIN " + auth_plain_b64(ALICE, ALICE_PW))
    assert (r.code, r.enhanced) == (538, "5.7.11"), r
    r = c.cmd(f"MAIL FROM:<{ALICE}>")
    assert (r.code, r.enhanced) == (530, "5.7.0"), r
    r = c.cmd("AUTH LOGIN")
    assert r.code == 538, r
    c.starttls()
    kws = ehlo_keywords(c.ehlo())
    assert kws.get("AUTH", "").split()[1:] == ["PLAIN", "LOGIN"], kws
    c.quit()

    evs = wait_audit(srv, 2, pred=lambda e: e["port"] == port)
    assert [(e["result"], e["reason"], e.get("mech")) for e in evs] == \
        [("fail", "tls-required", "PLAIN"), ("fail", "tls-required", "LOGIN")], evs
    for e in evs:
        assert e["listener"] == "submission" and e["ip"] == "127.0.0.1"
        assert "tls" not in e and "user" not in e, e
    assert not [e for e in audit_events(srv, "auth") if e["result"] == "ok"]


@pytest.mark.parametrize("listener", ["submission", "submissions"])
def test_mail_before_auth_is_530(srv, listener):
    """RFC 4954 §6 / RFC 6409 §4.3: on a submission listener, inside TLS, MAIL without
    AUTH is 530 5.7.0, for a local, an external and the null sender; RCPT and DATA
    then have no transaction (503); nothing is queued."""
    c = raw_tls(srv, listener)
    for sender in (ALICE, "carol@remote.test", ""):
        r = c.cmd(f"MAIL FROM:<{sender}>")
        assert (r.code, r.enhanced) == (530, "5.7.0"), (sender, r)
    assert c.cmd("RCPT TO:<bob@example.test>").code == 503
    assert c.cmd("DATA").code == 503
    c.quit()
    time.sleep(0.2)
    assert srv.messages("bob") == []
    assert not spool_files(srv, "queue") and not spool_files(srv, "incoming")


def test_mx_has_no_auth(srv):
    """The mx role takes no AUTH (503 5.5.1), before or after STARTTLS, and never lists
    it in EHLO; no audit auth event comes out of it."""
    c = SMTPRaw(srv.ports["mx"])
    assert "AUTH" not in ehlo_keywords(c.ehlo())
    r = c.cmd("AUTH PLAIN " + auth_plain_b64(ALICE, ALICE_PW))
    assert (r.code, r.enhanced) == (503, "5.5.1"), r
    c.starttls()
    assert "AUTH" not in ehlo_keywords(c.ehlo())
    r = c.cmd("AUTH PLAIN " + auth_plain_b64(ALICE, ALICE_PW))
    assert (r.code, r.enhanced) == (503, "5.5.1"), r
    r = c.cmd("AUTH LOGIN")
    assert r.code == 503, r
    # Still an MX: local recipients only.
    assert c.cmd("MAIL FROM:<carol@remote.test>").code == 250
    assert c.cmd("RCPT TO:<dave@remote.test>").code == 554
    c.quit()
    time.sleep(0.3)
    assert audit_events(srv, "auth") == []


# ---- failures ----

def test_wrong_password_535_after_delay(make_checked_server):
    """RFC 4954 §6: 535 5.7.8, answered no sooner than auth_failure_delay (0.4 s here);
    the audit reason is bad-credentials, the process log has the failure line."""
    srv = make_checked_server(settings={"auth_failure_delay": "400ms"})
    c = raw_tls(srv)
    port = c.sock.getsockname()[1]
    t0 = time.monotonic()
    r = c.cmd("AUTH PLAIN " + auth_plain_b64(ALICE, "Wrong-Horse-Battery-42x"))
    elapsed = time.monotonic() - t0
    assert (r.code, r.enhanced) == (535, "5.7.8"), r
    assert elapsed >= 0.4, f"535 after {elapsed:.3f} s, auth_failure_delay is 0.4 s"
    # The session goes on: the right password now works.
    r = c.cmd("AUTH PLAIN " + auth_plain_b64(ALICE, ALICE_PW))
    assert r.code == 235, r
    c.quit()
    ev = wait_audit(srv, 1, pred=lambda e: e["result"] == "fail")[0]
    assert ev["reason"] == "bad-credentials" and ev["user"] == ALICE and ev["port"] == port
    sid = session_of(srv, port)
    assert re.search(r'auth failure: ip=127\.0\.0\.1 port=%d user="alice@example\.test" '
                     r'proto=smtp listener=submission mech=PLAIN reason=bad-credentials '
                     r'session=%s' % (port, sid), srv.log_text()), srv.log_text()[-3000:]


def test_unknown_user_same_reply(srv):
    """No account oracle: an unknown user gets byte-for-byte the reply a wrong password
    gets (535 5.7.8); only the audit log tells them apart (unknown-user)."""
    c = raw_tls(srv)
    wrong = c.cmd("AUTH PLAIN " + auth_plain_b64(ALICE, "Not-The-Password-1"))
    unknown = c.cmd("AUTH PLAIN " + auth_plain_b64("nobody@example.test", "Not-The-Password-1"))
    assert wrong.code == 535 and wrong.enhanced == "5.7.8", wrong
    assert (unknown.code, unknown.lines) == (wrong.code, wrong.lines), (wrong, unknown)
    c.close()
    evs = wait_audit(srv, 2)
    assert [(e["user"], e["reason"]) for e in evs] == \
        [(ALICE, "bad-credentials"), ("nobody@example.test", "unknown-user")], evs


def test_unknown_user_does_not_break_later_logins(srv):
    """A failed login for a name that does not exist leaves nothing behind: alice and
    bob log in right after it, on the same connection and on new ones."""
    c = raw_tls(srv)
    assert c.cmd("AUTH PLAIN " + auth_plain_b64("nobody@example.test", "x-x-x-x")).code == 535
    r = c.cmd("AUTH PLAIN " + auth_plain_b64(ALICE, ALICE_PW))
    assert r.code == 235, r
    c.quit()
    login(srv, BOB).quit()
    login(srv, ALICE, mech="LOGIN", source="127.0.0.9").quit()


def test_max_failures_then_421_and_close(make_checked_server):
    """After auth_max_failures (3) failed AUTHs on one connection: the third 535, then
    421 4.7.0 and the server closes. Three audit lines, not four."""
    srv = make_checked_server(settings={"auth_failure_delay": "50ms", "auth_max_failures": "3"})
    c = raw_tls(srv)
    port = c.sock.getsockname()[1]
    for i in range(2):
        r = c.cmd("AUTH PLAIN " + auth_plain_b64(ALICE, f"Wrong-{i}-password"))
        assert r.code == 535, r
    r = c.cmd("AUTH LOGIN " + b64(ALICE))
    assert r.code == 334, r
    r = c.cmd(b64("Wrong-2-password"))
    assert (r.code, r.enhanced) == (535, "5.7.8"), r
    r = c.reply()
    assert (r.code, r.enhanced) == (421, "4.7.0"), r
    assert c.closed(5), "connection still open after 421"
    evs = wait_audit(srv, 3, pred=lambda e: e["port"] == port)
    time.sleep(0.2)
    evs = [e for e in audit_events(srv, "auth") if e["port"] == port]
    assert [(e["mech"], e["reason"]) for e in evs] == \
        [("PLAIN", "bad-credentials")] * 2 + [("LOGIN", "bad-credentials")], evs
    # A new connection starts with a fresh count and the right password works.
    login(srv).quit()


def test_second_auth_is_503(srv):
    """RFC 4954 §4: AUTH after a successful AUTH is 503 5.5.1, even for another user
    with valid credentials; the session stays alice's."""
    s = login(srv, ALICE)
    code, text = s.docmd("AUTH", "PLAIN " + auth_plain_b64(BOB, Rampart.PASSWORDS[BOB]))
    assert (code, text[:5]) == (503, b"5.5.1"), text
    s.mail(ALICE)
    assert s.rcpt(BOB)[0] == 250
    assert s.data(message("second-auth", frm=ALICE, to=BOB))[0] == 250
    s.quit()
    srv.wait_messages("bob", 1)
    # Only one auth event: the 503 is a sequence error, not a login attempt.
    time.sleep(0.2)
    assert [e["result"] for e in audit_events(srv, "auth")] == ["ok"]


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_cancel_is_501(srv, mech):
    """RFC 4954 §4: "*" cancels the exchange: 501 5.7.0; the session goes on and a later
    AUTH succeeds. Audited as cancelled."""
    c = raw_tls(srv)
    port = c.sock.getsockname()[1]
    assert c.cmd(f"AUTH {mech}").code == 334
    r = c.cmd("*")
    assert (r.code, r.enhanced) == (501, "5.7.0"), r
    if mech == "LOGIN":   # cancel at the password prompt too
        assert c.cmd("AUTH LOGIN " + b64(ALICE)).code == 334
        r = c.cmd("*")
        assert (r.code, r.enhanced) == (501, "5.7.0"), r
    assert c.cmd("NOOP").code == 250
    r = c.cmd("AUTH PLAIN " + auth_plain_b64(ALICE, ALICE_PW))
    assert r.code == 235, r
    c.quit()
    n = 2 if mech == "LOGIN" else 1
    evs = wait_audit(srv, n + 1, pred=lambda e: e["port"] == port)
    assert [(e["result"], e.get("reason"), e.get("mech")) for e in evs] == \
        [("fail", "cancelled", mech)] * n + [("ok", None, "PLAIN")], evs


def test_bad_base64_is_501(srv):
    """RFC 4954 §4: a response that is not BASE64 is 501 5.5.2, as initial response and
    as a continuation line; audited as malformed."""
    c = raw_tls(srv)
    port = c.sock.getsockname()[1]
    r = c.cmd("AUTH PLAIN %%%not-base64%%%")
    assert (r.code, r.enhanced) == (501, "5.5.2"), r
    assert c.cmd("AUTH PLAIN").code == 334
    r = c.cmd("!!!!")
    assert (r.code, r.enhanced) == (501, "5.5.2"), r
    assert c.cmd("AUTH LOGIN").code == 334
    r = c.cmd("YWxp=ZQ==")      # padding in the middle
    assert (r.code, r.enhanced) == (501, "5.5.2"), r
    assert c.cmd("AUTH PLAIN " + auth_plain_b64(ALICE, ALICE_PW)).code == 235
    c.quit()
    evs = wait_audit(srv, 4, pred=lambda e: e["port"] == port)
    assert [e.get("reason") for e in evs] == ["malformed"] * 3 + [None], evs


def test_unknown_mechanism_is_504(srv):
    """RFC 4954 §4: a mechanism the server does not offer is 504 5.5.4 (audited
    mechanism-disabled); an AUTH without a mechanism is a 501 syntax error."""
    c = raw_tls(srv)
    port = c.sock.getsockname()[1]
    for mech in ("CRAM-MD5", "GSSAPI", "X-NOSUCH"):
        r = c.cmd(f"AUTH {mech}")
        assert (r.code, r.enhanced) == (504, "5.5.4"), (mech, r)
    r = c.cmd("AUTH")
    assert r.code == 501, r
    assert c.cmd("AUTH PLAIN " + auth_plain_b64(ALICE, ALICE_PW)).code == 235
    c.quit()
    evs = wait_audit(srv, 4, pred=lambda e: e["port"] == port)
    time.sleep(0.2)
    evs = [e for e in audit_events(srv, "auth") if e["port"] == port]
    assert [e.get("reason") for e in evs] == ["mechanism-disabled"] * 3 + [None], evs


def test_response_line_of_12288_octets_is_read(srv):
    """RFC 4954 §4: a server must accept a response line of 12288 octets. Such a line
    (a LOGIN password or user name of 9216 characters, more than any field may hold) is
    read and refused as a malformed response (501 5.5.2), not as a line too long; a line
    of 12292 or 20000 octets is 500 5.5.6 (RFC 4954 §4), and the session continues."""
    c = raw_tls(srv)
    port = c.sock.getsockname()[1]
    assert c.cmd("AUTH LOGIN " + b64(ALICE)).code == 334
    line = b64("p" * 9216)
    assert len(line) == 12288
    r = c.cmd(line)
    assert (r.code, r.enhanced) == (501, "5.5.2"), r
    assert c.cmd("AUTH LOGIN").code == 334
    name = "u" * 9203 + "@example.test"
    assert len(b64(name)) == 12288
    r = c.cmd(b64(name))
    assert (r.code, r.enhanced) == (501, "5.5.2"), r
    for size in (12292, 20000):
        assert c.cmd("AUTH LOGIN " + b64(ALICE)).code == 334
        r = c.cmd("A" * size)
        assert (r.code, r.enhanced) == (500, "5.5.6"), (size, r)
        assert c.cmd("NOOP").code == 250
    c.quit()
    evs = wait_audit(srv, 4, pred=lambda e: e["port"] == port)
    assert [(e["mech"], e["reason"]) for e in evs] == [("LOGIN", "malformed")] * 4, evs


def test_overlong_response_does_not_count_as_login(make_checked_server):
    """The 20000-octet line after 500 5.5.6 leaves a clean session: the right password
    then succeeds on the same connection."""
    srv = make_checked_server(settings=FAST)
    c = raw_tls(srv)
    assert c.cmd("AUTH PLAIN").code == 334
    r = c.cmd("QUFB" * 5000)
    assert (r.code, r.enhanced) == (500, "5.5.6"), r
    r = c.cmd("AUTH PLAIN " + auth_plain_b64(ALICE, ALICE_PW))
    assert r.code == 235, r
    c.quit()


def test_plain_authzid_must_match(srv):
    """RFC 4616 §2: an authorization identity different from the authentication identity
    (alice acting as bob, with alice's right password) is refused 535; the same
    identity given twice is accepted."""
    c = raw_tls(srv)
    r = c.cmd("AUTH PLAIN " + auth_plain_b64(ALICE, ALICE_PW, authzid=BOB))
    assert (r.code, r.enhanced) == (535, "5.7.8"), r
    r = c.cmd("AUTH PLAIN " + auth_plain_b64(ALICE, ALICE_PW, authzid=ALICE))
    assert r.code == 235, r
    r = c.cmd(f"MAIL FROM:<{BOB}>")
    assert (r.code, r.enhanced) == (553, "5.7.1"), r
    c.quit()
    evs = wait_audit(srv, 2)
    assert evs[0]["result"] == "fail" and evs[1]["result"] == "ok" and evs[1]["user"] == ALICE


# ---- Received: ----

def stored_received(srv, user="bob"):
    raw = srv.wait_messages(user, 1)[0].read_bytes()
    return " ".join(parse_message(raw)["Received"].split())


def send_authed(srv, subject, listener="submission"):
    s = login(srv, ALICE, listener=listener, helo="alices-laptop.example.net")
    s.mail(ALICE)
    s.rcpt(BOB)
    code, text = s.data(message(subject, frm=ALICE, to=BOB))
    assert code == 250, text
    s.quit()
    return re.search(rb"queued as (\S+)", text).group(1).decode()


def test_received_of_authenticated_mail_has_no_client(srv):
    """Submitters' privacy: the Received: of authenticated mail names neither the client
    address nor its EHLO name: "by HOST (Rampart) with ESMTPSA id ID" (RFC 3848 §2),
    with the TLS comment."""
    qid = send_authed(srv, "privacy")
    rec = stored_received(srv)
    assert rec.startswith("by mx.example.test (Rampart) with ESMTPSA id %s " % qid), rec
    assert "127.0.0.1" not in rec and "alices-laptop" not in rec and "client.example" not in rec
    assert "from " not in rec.split(";")[0], rec
    assert re.search(r"\(using TLSv1\.[23] with cipher \S+", rec), rec


def test_received_auth_client_names_the_client(make_checked_server):
    """received_auth_client = true: the from clause is back, with the EHLO name and
    the client address, and the protocol is still ESMTPSA."""
    srv = make_checked_server(settings={**FAST, "received_auth_client": "true"})
    qid = send_authed(srv, "named", listener="submissions")
    rec = stored_received(srv)
    assert re.search(r"from alices-laptop\.example\.net \(\[127\.0\.0\.1\]\) by mx\.example\.test "
                     r"\(Rampart\) with ESMTPSA id %s\b" % qid, rec), rec


def test_received_of_mx_mail_keeps_client(srv):
    """Contrast: unauthenticated mail on mx keeps "from HELO ([IP])" and says ESMTP."""
    with SMTPRaw(srv.ports["mx"]) as c:
        c.ehlo("relay.remote.test")
        assert c.cmd("MAIL FROM:<carol@remote.test>").code == 250
        assert c.cmd(f"RCPT TO:<{BOB}>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(message("mx-received", frm="carol@remote.test", to=BOB).encode()))
        qid = queued_id(c.reply())
        c.quit()
    rec = stored_received(srv)
    assert re.search(r"from relay\.remote\.test \(\[127\.0\.0\.1\]\) by mx\.example\.test "
                     r"\(Rampart\) with ESMTP id %s\b" % qid, rec), rec


# ---- the audit log and secrets ----

def test_audit_one_line_per_attempt(srv):
    """Every AUTH attempt, decided by the auth process or refused by the front, gives
    exactly one `auth` line with ts, result, reason (failures only), user (when one was
    given), ip, port, listener, proto, mech, tls, session."""
    expected = {}       # client port -> [(result, reason, user, mech, tls, listener)]
    conns = {}

    def note(c, listener, *rows):
        port = c.sock.getsockname()[1]
        conns[port] = listener
        expected.setdefault(port, []).extend(rows)

    # Before TLS: tls-required, no user, no tls.
    c = SMTPRaw(srv.ports["submission"])
    c.ehlo()
    assert c.cmd("AUTH PLAIN " + auth_plain_b64(ALICE, ALICE_PW)).code == 538
    note(c, "submission", ("fail", "tls-required", None, "PLAIN", None))
    c.starttls()
    c.ehlo()
    tls = c.sock.version()
    assert c.cmd("AUTH PLAIN " + auth_plain_b64(BOB, "Wrong-Password-77")).code == 535
    assert c.cmd("AUTH PLAIN " + auth_plain_b64("ghost@example.test", "Wrong-Password-77")).code == 535
    assert c.cmd("AUTH LOGIN").code == 334
    assert c.cmd("*").code == 501
    note(c, "submission", ("fail", "bad-credentials", BOB, "PLAIN", tls),
         ("fail", "unknown-user", "ghost@example.test", "PLAIN", tls),
         ("fail", "cancelled", None, "LOGIN", tls))
    c.close()

    c = raw_tls(srv, "submissions")
    tls2 = c.sock.version()
    assert c.cmd("AUTH XYZZY").code == 504
    assert c.cmd("AUTH PLAIN ====").code == 501
    assert c.cmd("AUTH LOGIN " + b64(ALICE)).code == 334
    assert c.cmd(b64(ALICE_PW)).code == 235
    note(c, "submissions", ("fail", "mechanism-disabled", None, None, tls2),
         ("fail", "malformed", None, "PLAIN", tls2),
         ("ok", None, ALICE, "LOGIN", tls2))
    c.quit()

    total = sum(len(v) for v in expected.values())
    wait_audit(srv, total)
    time.sleep(0.3)          # nothing more may come
    evs = audit_events(srv, "auth")
    assert len(evs) == total, evs
    for port, rows in expected.items():
        got = [e for e in evs if e["port"] == port]
        sid = session_of(srv, port)
        assert len(got) == len(rows), (port, got)
        for e, (result, reason, user, mech, tls_v) in zip(got, rows):
            assert e["result"] == result and e.get("reason") == reason, e
            assert e.get("user") == user and e.get("mech") == mech and e.get("tls") == tls_v, e
            assert e["ip"] == "127.0.0.1" and e["listener"] == conns[port], e
            assert e["proto"] == "smtp" and e["session"] == sid, e
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["ts"]), e
    # Every failure has its process-log line, with the same session.
    fails = [e for e in evs if e["result"] == "fail"]
    log_fails = re.findall(r"auth failure: ip=127\.0\.0\.1 port=(\d+) .* reason=(\S+) "
                           r"session=(\S+)", srv.log_text())
    assert sorted(log_fails) == sorted((str(e["port"]), e["reason"], e["session"]) for e in fails)


def password_forms(user, password):
    """The byte strings that must never be stored: the password, and how it travels."""
    p = password.encode()
    forms = {p, p.hex().encode(), base64.b64encode(p),
             base64.b64encode(b"\0" + user.encode() + b"\0" + p),
             base64.b64encode(user.encode() + b"\0" + user.encode() + b"\0" + p)}
    # Base64 of the password at the three alignments it can have inside a longer blob.
    for pre in (b"", b"\0", b"\0\0"):
        enc = base64.b64encode(pre + p)[len(pre) and 4:]
        forms.add(enc[:-4])
    return {f for f in forms if len(f) >= 8}


def test_password_never_stored(srv):
    """RULE 9 of CONVENTIONS.md: after good and bad logins with PLAIN and LOGIN, on both
    listeners and before TLS, no password (nor its base64/hex forms) is in the audit log,
    the process log, the directory database and its WAL, or any other file the server
    wrote."""
    wrong = ["Zq-Wrong-Secret-Alpha-913", "Zq-Wrong-Secret-Beta-277"]
    login(srv, ALICE, mech="PLAIN").quit()
    login(srv, BOB, listener="submissions", mech="LOGIN").quit()
    c = raw_tls(srv)
    assert c.cmd("AUTH PLAIN " + auth_plain_b64(ALICE, wrong[0])).code == 535
    assert c.cmd("AUTH LOGIN " + b64(BOB)).code == 334
    assert c.cmd(b64(wrong[1])).code == 535
    assert c.cmd("AUTH PLAIN " + auth_plain_b64("ghost@example.test", wrong[1])).code == 535
    c.close()
    c = SMTPRaw(srv.ports["submission"])      # in clear: refused, still never written
    c.ehlo()
    assert c.cmd("AUTH PLAIN " + auth_plain_b64(ALICE, ALICE_PW)).code == 538
    c.close()
    wait_audit(srv, 7)
    srv.stop()             # flush everything (WAL checkpoint, logs)

    secrets = [(ALICE, ALICE_PW), (BOB, Rampart.PASSWORDS[BOB]), (ALICE, wrong[0]),
               (BOB, wrong[1]), ("ghost@example.test", wrong[1])]
    files = [p for p in srv.root.rglob("*") if p.is_file() and p.name != "rampart.conf"]
    names = {p.name for p in files}
    assert "audit.log" in names and "directory.db" in names and "rampartd.log" in names, names
    for path in files:
        data = path.read_bytes()
        for user, pw in secrets:
            for form in password_forms(user, pw):
                assert form not in data, f"{form!r} (password of {user}) found in {path}"


def test_allow_plaintext_auth_on_loopback(make_checked_server):
    """allow_plaintext_auth = true (testing only): EHLO lists AUTH without TLS to a
    loopback client, AUTH succeeds and mail flows; the process log warns loudly at
    start. The other submission listener is unaffected (still TLS-only)."""
    srv = make_checked_server(settings=FAST,
                      listener_options={"submission": {"allow_plaintext_auth": "true"}})
    warn = [ln for ln in srv.log_text().splitlines()
            if "allow_plaintext_auth" in ln and "submission" in ln]
    assert warn and all("warn" in ln and "WITHOUT TLS" in ln for ln in warn), srv.log_text()
    s = smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=10)
    s.ehlo("client.example.net")
    assert s.has_extn("auth") and s.has_extn("starttls")
    s.user, s.password = ALICE, ALICE_PW
    assert s.auth("PLAIN", s.auth_plain)[0] == 235
    s.sendmail(ALICE, [BOB], message("plaintext-auth", frm=ALICE, to=BOB))
    s.quit()
    raw = srv.wait_messages("bob", 1)[0].read_bytes()
    rec = " ".join(parse_message(raw)["Received"].split())
    assert "with ESMTPA id" in rec and "TLS" not in rec, rec
    ok, = wait_audit(srv, 1)
    assert ok["result"] == "ok" and "tls" not in ok, ok
    # The mx listener has no such setting: still no AUTH there.
    with SMTPRaw(srv.ports["mx"]) as c:
        assert "AUTH" not in ehlo_keywords(c.ehlo())


def test_no_plaintext_warning_by_default(srv):
    """Contrast: without the setting there is no such warning."""
    assert "allow_plaintext_auth" not in srv.log_text()
