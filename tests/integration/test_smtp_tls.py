"""STARTTLS (RFC 3207) and implicit TLS (RFC 8314) with real TLS clients: Python's
ssl/smtplib and `openssl s_client -starttls smtp`. The Received: header must carry
"with ESMTPS" and the TLS version and cipher the client actually negotiated.
"""
import os
import re
import select
import shutil
import smtplib
import ssl
import subprocess
import time

import pytest

from conftest import Rampart, auth_plain_b64, client_tls_context
from test_smtp_support import SMTPRaw, dot_stuff, message, parse_message, queued_id, settle


def stored(server, user, n=1):
    msgs = server.wait_messages(user, n)
    assert len(msgs) == n, f"{user}: {len(msgs)} messages, expected {n}"
    return [p.read_bytes() for p in msgs]


def received_tls(raw, qid, version, cipher, keyword="ESMTPS"):
    rec = parse_message(raw)["Received"]
    assert rec is not None
    flat = " ".join(rec.split())
    assert re.search(r"\bwith %s id %s\b" % (keyword, re.escape(qid)), flat), flat
    assert version in flat, f"TLS version {version} not in Received: {flat}"
    assert cipher in flat, f"cipher {cipher} not in Received: {flat}"
    return flat


def ehlo_keywords(reply_lines):
    return {ln.split()[0].upper() for ln in reply_lines[1:]}


ALICE = "alice@example.test"
ALICE_PW = Rampart.PASSWORDS[ALICE]


# ---- STARTTLS with smtplib ----

def test_starttls_smtplib_on_submission(server):
    """RFC 3207 §4-4.2: STARTTLS is offered before TLS only; after the handshake the
    client must EHLO again and STARTTLS is no longer listed; the message gets a
    Received: with ESMTPS (RFC 3848) and the negotiated version and cipher."""
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=10) as s:
        s.ehlo("client.example.net")
        assert s.has_extn("starttls")
        code, _ = s.starttls(context=client_tls_context())
        assert code == 220
        version, cipher = s.sock.version(), s.sock.cipher()[0]
        s.ehlo("client.example.net")
        assert not s.has_extn("starttls"), s.esmtp_features
        assert s.has_extn("pipelining") and s.has_extn("chunking")
        # RFC 3207 §4: a second STARTTLS on a TLS session is 503.
        code, text = s.docmd("STARTTLS")
        assert code == 503, text
        # Submission requires AUTH (RFC 6409 §4.3), offered only now, inside TLS.
        assert s.has_extn("auth")
        s.login(ALICE, ALICE_PW)
        s.mail(ALICE)
        assert s.rcpt("alice@example.test")[0] == 250
        code, text = s.data(message("starttls-smtplib", frm=ALICE))
        assert code == 250
        qid = re.search(rb"queued as (\S+)", text).group(1).decode()
    raw, = stored(server, "alice")
    # RFC 3848 §2: TLS and AUTH give "ESMTPSA".
    received_tls(raw, qid, version, cipher, keyword="ESMTPSA")
    assert parse_message(raw)["Subject"] == "starttls-smtplib"


def test_starttls_tls12(server):
    """RFC 3207 with a TLS 1.2 client (the floor the server accepts): Received: names
    TLSv1.2 and the ECDHE cipher suite negotiated."""
    ctx = client_tls_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with smtplib.SMTP("127.0.0.1", server.ports["mx"], timeout=10) as s:
        s.ehlo("client.example.net")
        s.starttls(context=ctx)
        version, cipher = s.sock.version(), s.sock.cipher()[0]
        assert version == "TLSv1.2"
        s.ehlo("client.example.net")
        s.mail("sender@client.example.net")
        s.rcpt("bob@example.test")
        code, text = s.data(message("tls12", to="bob@example.test"))
        assert code == 250
        qid = re.search(rb"queued as (\S+)", text).group(1).decode()
    raw, = stored(server, "bob")
    received_tls(raw, qid, "TLSv1.2", cipher)


def test_tls_below_1_2_refused(server):
    """The server's floor is TLS 1.2 (RFC 8996 deprecates 1.0/1.1): a client that
    offers only TLS 1.1 fails the handshake (the server answers a protocol_version alert
    or just closes), and the server keeps serving."""
    import warnings
    ctx = client_tls_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            ctx.set_ciphers("ALL:@SECLEVEL=0")   # let this OpenSSL offer TLS 1.1 at all
            ctx.minimum_version = ssl.TLSVersion.TLSv1_1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        except (ValueError, ssl.SSLError):
            pytest.skip("this OpenSSL cannot offer TLS 1.1")
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("STARTTLS").code == 220
        with pytest.raises((ssl.SSLError, ConnectionResetError)) as e:
            ctx.wrap_socket(c.sock, server_hostname="mx.example.test")
        if "NO_PROTOCOLS_AVAILABLE" in str(e.value).upper():
            pytest.skip("this OpenSSL would not send a TLS 1.1 ClientHello")
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        c.quit()


# ---- STARTTLS state rules ----

def test_starttls_syntax_and_sequence(server):
    """RFC 3207 §4: STARTTLS takes no parameter (501); RFC 5321 §4.1.4: it needs EHLO
    first (503)."""
    with SMTPRaw(server.ports["submission"]) as c:
        r = c.cmd("STARTTLS")
        assert r.code == 503, r
        c.ehlo()
        r = c.cmd("STARTTLS now")
        assert r.code == 501, r
        c.starttls()
        c.ehlo()
        c.quit()


def test_starttls_discards_pipelined_command(server):
    """RFC 3207 §4.2 and RFC 2920 §3.1 (STARTTLS ends a pipeline group): a command sent
    in the same packet as STARTTLS, before the handshake, must be discarded — answering
    it would let a man-in-the-middle inject commands into the protected session
    (CVE-2011-0411)."""
    with SMTPRaw(server.ports["submission"]) as c:
        c.ehlo()
        c.send(b"STARTTLS\r\nRSET\r\n")
        r = c.reply()
        assert r.code == 220, r
        assert c.buf == b"", f"plain-text reply after 220: {c.buf!r}"
        c.sock = client_tls_context().wrap_socket(c.sock, server_hostname="mx.example.test")
        # The RSET must get no reply, neither in clear nor inside TLS.
        assert c.silent(0.5), f"the injected RSET was answered: {c.buf!r}"
        r = c.cmd("EHLO client.example.net")
        assert r.code == 250 and r.lines[0].startswith("mx.example.test"), \
            f"first reply inside TLS is not the EHLO reply: {r}"
        c.quit()


def test_starttls_discards_injected_transaction(server):
    """RFC 3207 §4.2: an injected MAIL/RCPT pipelined with STARTTLS creates no
    transaction inside TLS, and nothing is delivered."""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        c.send(b"STARTTLS\r\nMAIL FROM:<evil@attacker.example>\r\nRCPT TO:<alice@example.test>\r\n"
               b"DATA\r\nSubject: injected\r\n\r\ninjected\r\n.\r\n")
        assert c.reply().code == 220
        c.sock = client_tls_context().wrap_socket(c.sock, server_hostname="mx.example.test")
        assert c.silent(0.5), f"injected commands were answered: {c.buf!r}"
        c.ehlo()
        assert c.cmd("RCPT TO:<alice@example.test>").code == 503
        assert c.cmd("DATA").code == 503
        c.quit()
    settle(server)
    assert server.messages("alice") == []


def test_starttls_resets_session(server):
    """RFC 3207 §4.2: after the handshake the server forgets the EHLO and any
    transaction: MAIL before a new EHLO is 503, a pre-TLS MAIL is gone. (On the mx
    listener, which offers STARTTLS and takes MAIL without AUTH; submission's MAIL
    needs AUTH, which is never offered before TLS — see test_starttls_resets_auth_state.)"""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo("before-tls.example.net")
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        c.starttls()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 503
        c.ehlo("after-tls.example.net")
        assert c.cmd("RCPT TO:<alice@example.test>").code == 503   # no transaction
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(message("after-reset").encode()))
        qid = queued_id(c.reply())
        version, cipher = c.sock.version(), c.sock.cipher()[0]
        c.quit()
    raw, = stored(server, "alice")
    flat = received_tls(raw, qid, version, cipher)
    # The HELO name recorded is the one given inside TLS.
    assert "after-tls.example.net" in flat and "before-tls" not in flat


def test_starttls_resets_auth_state(server):
    """RFC 3207 §4.2 on submission: a pipelined AUTH after STARTTLS is discarded, and
    after the handshake the session must EHLO and AUTH inside TLS before MAIL (530)."""
    with SMTPRaw(server.ports["submission"]) as c:
        c.ehlo("before-tls.example.net")
        assert c.cmd(f"MAIL FROM:<{ALICE}>").code == 530
        c.send(b"STARTTLS\r\nAUTH PLAIN " + auth_plain_b64(ALICE, ALICE_PW).encode() + b"\r\n")
        assert c.reply().code == 220
        assert c.buf == b"", c.buf
        c.sock = client_tls_context().wrap_socket(c.sock, server_hostname="mx.example.test")
        assert c.silent(0.5), f"the injected AUTH was answered: {c.buf!r}"
        c.ehlo("after-tls.example.net")
        r = c.cmd(f"MAIL FROM:<{ALICE}>")
        assert (r.code, r.enhanced) == (530, "5.7.0"), r
        assert c.cmd("AUTH PLAIN " + auth_plain_b64(ALICE, ALICE_PW)).code == 235
        assert c.cmd(f"MAIL FROM:<{ALICE}>").code == 250
        c.quit()


# ---- openssl s_client -starttls smtp ----

class SClient:
    """`openssl s_client -starttls smtp` driven line by line."""

    def __init__(self, port, extra=()):
        self.p = subprocess.Popen(
            ["openssl", "s_client", "-starttls", "smtp", "-connect", f"127.0.0.1:{port}",
             "-servername", "mx.example.test", "-name", "client.example.net", "-crlf",
             "-quiet", "-ign_eof", *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.buf = b""

    def line(self, timeout=10):
        deadline = time.time() + timeout
        fd = self.p.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise AssertionError(f"s_client: no reply; have {self.buf!r}; "
                                     f"stderr {self.p.stderr.read1() if self.p.poll() is not None else b''!r}")
            data = os.read(fd, 65536)
            if not data:
                raise EOFError(self.buf)
            self.buf += data
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln.rstrip(b"\r").decode()

    def reply(self):
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return int(lines[0][:3]), lines

    def cmd(self, text):
        # -crlf turns our LF into CRLF.
        self.p.stdin.write(text.encode() + b"\n")
        self.p.stdin.flush()
        return self.reply()

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        err = self.p.stderr.read().decode(errors="replace")
        self.p.stdout.close()
        self.p.stderr.close()
        return err


def test_openssl_s_client_starttls_delivery(server):
    """RFC 3207 with OpenSSL's own client: after STARTTLS, EHLO does not list STARTTLS,
    a second STARTTLS is 503 5.5.1, and a message sent through the TLS session lands
    with a Received: header naming the TLS 1.3 suite s_client negotiated."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    sc = SClient(server.ports["mx"], extra=("-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"))
    try:
        code, lines = sc.cmd("EHLO client.example.net")
        assert code == 250, lines
        kws = {ln[4:].split()[0].upper() for ln in lines[1:]}
        assert "STARTTLS" not in kws and "PIPELINING" in kws, lines
        code, lines = sc.cmd("STARTTLS")
        assert code == 503 and "5.5.1" in lines[0], lines
        assert sc.cmd("MAIL FROM:<sender@client.example.net>")[0] == 250
        assert sc.cmd("RCPT TO:<bob@example.test>")[0] == 250
        assert sc.cmd("DATA")[0] == 354
        body = message("s-client", to="bob@example.test").replace("\r\n", "\n")
        sc.p.stdin.write(body.encode() + b".\n")
        sc.p.stdin.flush()
        code, lines = sc.reply()
        assert code == 250, lines
        qid = re.search(r"queued as (\S+)", lines[0]).group(1)
        assert sc.cmd("QUIT")[0] == 221
    finally:
        sc.close()
    raw, = stored(server, "bob")
    received_tls(raw, qid, "TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256")
    assert parse_message(raw)["Subject"] == "s-client"


# ---- implicit TLS (RFC 8314) ----

def test_implicit_tls_submissions(server):
    """RFC 8314 §3.3: the submissions port speaks TLS from the first byte; STARTTLS is
    not offered inside it (and is 503); Received: says ESMTPS with version and cipher."""
    with smtplib.SMTP_SSL("127.0.0.1", server.ports["submissions"], timeout=10,
                          context=client_tls_context()) as s:
        code, _ = s.ehlo("client.example.net")
        assert code == 250
        assert not s.has_extn("starttls")
        assert s.has_extn("size") and s.has_extn("8bitmime")
        assert s.docmd("STARTTLS")[0] == 503
        version, cipher = s.sock.version(), s.sock.cipher()[0]
        # RFC 8314 §3.3 + RFC 6409 §4.3: AUTH is offered at once (TLS from the start).
        assert s.has_extn("auth")
        s.login(ALICE, ALICE_PW)
        s.mail(ALICE)
        assert s.rcpt("alice@example.test")[0] == 250
        assert s.rcpt("bob@example.test")[0] == 250
        code, text = s.data(message("implicit-tls", frm=ALICE, to="alice@example.test"))
        assert code == 250
        qid = re.search(rb"queued as (\S+)", text).group(1).decode()
    for user in ("alice", "bob"):
        raw, = stored(server, user)
        received_tls(raw, qid, version, cipher, keyword="ESMTPSA")


def test_implicit_tls_port_sends_no_plaintext(server):
    """RFC 8314 §3.3: no clear-text greeting on the implicit-TLS port, and clear-text
    SMTP there is never answered as SMTP."""
    with SMTPRaw(server.ports["submissions"], greet=False) as c:
        assert c.silent(0.5), f"clear-text data on the submissions port: {c.buf!r}"
        try:
            c.send(b"EHLO client.example.net\r\n")
            got = b""
            c.sock.settimeout(3)
            while True:
                d = c.sock.recv(4096)
                if not d:
                    break
                got += d
        except (OSError, TimeoutError):
            got = c.buf
        assert b"250" not in got, got
    # Still serving TLS clients.
    with SMTPRaw(server.ports["submissions"], tls=True) as c:
        assert c.greeting.code == 220
        c.ehlo()
        c.quit()


def test_tls_handshake_that_never_comes_times_out(make_server):
    """RFC 5321 §4.5.3.2 applies to the TLS handshake too: a client that says STARTTLS,
    or opens the implicit-TLS port, and then sends nothing must be disconnected soon
    after the command timeout (1 s here), or idle clients can hold connection slots
    forever; the server keeps serving."""
    srv = make_server(settings={"smtp_command_timeout": "1s"})
    with SMTPRaw(srv.ports["submission"]) as a, \
            SMTPRaw(srv.ports["submissions"], greet=False) as b:
        a.ehlo()
        assert a.cmd("STARTTLS").code == 220
        starttls_closed = a.closed(5)
        implicit_closed = b.closed(1)
    assert starttls_closed and implicit_closed, (
        "5 s after a 1 s command timeout, the session waiting for a handshake after STARTTLS "
        f"is {'closed' if starttls_closed else 'STILL OPEN'}, the implicit-TLS one is "
        f"{'closed' if implicit_closed else 'STILL OPEN'}")
    with SMTPRaw(srv.ports["submissions"], tls=True) as c:
        c.ehlo()
        c.quit()


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_swaks_tls(server, mode):
    """RFC 3207 and RFC 8314 with a third client, swaks (--tls / --tls-on-connect):
    the message lands with "with ESMTPS" and a TLS version in Received:."""
    if shutil.which("swaks") is None:
        pytest.skip("swaks not installed")
    port = server.ports["submission" if mode == "starttls" else "submissions"]
    flag = "--tls" if mode == "starttls" else "--tls-on-connect"
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(port), flag,
                        "--auth", "PLAIN", "--auth-user", ALICE, "--auth-password", ALICE_PW,
                        "--from", ALICE, "--to", "bob@example.test",
                        "--helo", "client.example.net", "--header", f"Subject: swaks-{mode}",
                        "--timeout", "10"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"250 2\.0\.0 Ok: queued as (\S+)", r.stdout)
    assert m, r.stdout
    if mode == "starttls":
        assert re.search(r"<-\s+220 2\.0\.0 Ready to start TLS", r.stdout), r.stdout
    assert re.search(r"<~\s+235 2\.7\.0 ", r.stdout), r.stdout
    raw, = stored(server, "bob")
    rec = " ".join(parse_message(raw)["Received"].split())
    assert re.search(r"\bwith ESMTPSA id %s\b" % re.escape(m.group(1)), rec), rec
    assert re.search(r"\(using TLSv1\.[23] with cipher \S+", rec), rec


@pytest.mark.parametrize("listener", ["mx", "submissions"])
def test_utf8_over_tls_keyword(server, listener):
    """RFC 6531 §3.7.3: an SMTPUTF8 transaction over TLS is recorded "with UTF8SMTPS"
    (STARTTLS on mx), and "with UTF8SMTPSA" when the client authenticated (implicit
    TLS on submissions, where alice must send as herself)."""
    if listener == "mx":
        c = SMTPRaw(server.ports["mx"])
        c.ehlo()
        c.starttls()
        sender, frm, keyword = "j\u00f6rg@client.example.net", "sender@client.example.net", "UTF8SMTPS"
    else:
        c = SMTPRaw(server.ports["submissions"], tls=True)
        sender, frm, keyword = ALICE, ALICE, "UTF8SMTPSA"
    with c:
        c.ehlo()
        if listener == "submissions":
            assert c.cmd("AUTH PLAIN " + auth_plain_b64(ALICE, ALICE_PW)).code == 235
        assert c.cmd(f"MAIL FROM:<{sender}> SMTPUTF8".encode()).code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(message("utf8-tls", frm=frm).encode()))
        qid = queued_id(c.reply())
        version, cipher = c.sock.version(), c.sock.cipher()[0]
        c.quit()
    raw, = stored(server, "alice")
    received_tls(raw, qid, version, cipher, keyword=keyword)


def test_plain_received_has_no_tls_clause(server):
    """Contrast for the above: without TLS the Received: says "with ESMTP" and has no
    cipher comment (RFC 3848). (On mx: submission takes no mail without TLS and AUTH.)"""
    with SMTPRaw(server.ports["mx"]) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@client.example.net>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(message("plain-submission").encode()))
        qid = queued_id(c.reply())
        c.quit()
    raw, = stored(server, "alice")
    rec = " ".join(parse_message(raw)["Received"].split())
    assert re.search(r"\bwith ESMTP id %s\b" % re.escape(qid), rec), rec
    assert "TLS" not in rec and "cipher" not in rec, rec
