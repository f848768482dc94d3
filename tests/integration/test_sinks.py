"""Tests of the outbound-delivery test infrastructure itself (testca.py,
smtpsink.py, httpsd.py), with stdlib clients and the openssl command line as
independent checks, so that a failing relay test points at rampartd and not at
its test doubles. No rampartd here; the whole file runs in a few seconds.
"""
import base64
import hashlib
import http.client
import os
import random
import re
import smtplib
import socket
import ssl
import subprocess
import threading
import time

import pytest

from httpsd import STS_PATH, HttpsServer, Route, sts_policy, sts_txt
from smtpsink import SmtpSink, format_reply, free_port, xtext_decode
from testca import TestCA, tlsa_data, tlsa_rdata
from unbound import UNBOUND, Unbound, query_packet

MX = "mx1.remote.test"
CREDS = {"relay@example.test": "s3cret-relay-pass"}


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def mx_cert(ca):
    return ca.issue([MX, "mx.remote.test"], ips=["127.0.0.2"])


@pytest.fixture
def sink(mx_cert):
    s = SmtpSink("127.0.0.2", 0, *mx_cert, auth=CREDS)
    yield s
    s.stop()


def ca_context(ca, **kw):
    ctx = ssl.create_default_context(cafile=str(ca.ca_cert))
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def openssl(*args, input=None):
    r = subprocess.run(["openssl", *map(str, args)], input=input, capture_output=True)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


class NamedSMTP(smtplib.SMTP):
    """smtplib connected to an IP but speaking to `name`: STARTTLS sends it as SNI
    and checks the certificate against it (the name need not resolve)."""

    def __init__(self, name, ip, port, **kw):
        self._ip = ip
        kw.setdefault("timeout", 5)
        kw.setdefault("local_hostname", "client.example.net")
        super().__init__(name, port, **kw)

    def _get_socket(self, host, port, timeout):
        return socket.create_connection((self._ip, port), timeout, self.source_address)


class Raw:
    """A line-level SMTP client on a socket, for what smtplib cannot do."""

    def __init__(self, host, port, timeout=5):
        self.sock = socket.create_connection((host, port), timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def _line(self):
        while b"\r\n" not in self.buf:
            got = self.sock.recv(65536)
            if not got:
                raise EOFError(self.buf)
            self.buf += got
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def reply(self):
        """(code, [text lines]) of one possibly multi-line reply."""
        lines = [self._line()]
        while lines[-1][3:4] == "-":
            lines.append(self._line())
        return int(lines[0][:3]), [ln[4:] for ln in lines]

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def starttls(self, ctx, name):
        assert self.cmd("STARTTLS")[0] == 220
        assert self.buf == b""
        self.sock = ctx.wrap_socket(self.sock, server_hostname=name)

    def close(self):
        self.sock.close()


def raw_ehlo(s, name="client.example.net"):
    r = Raw(s.host, s.port)
    assert r.reply()[0] == 220
    code, lines = r.cmd(f"EHLO {name}")
    assert code == 250
    return r, {ln.split()[0] for ln in lines[1:]}, lines


# ---------------------------------------------------------------- testca

def test_ca_issue_verifies_with_openssl(ca, mx_cert):
    cert, key = mx_cert
    rc, out, err = openssl("verify", "-CAfile", ca.ca_cert, "-purpose", "sslserver", cert)
    assert rc == 0 and out.decode().strip() == f"{cert}: OK", err
    rc, out, _ = openssl("x509", "-in", cert, "-noout", "-ext",
                         "subjectAltName,extendedKeyUsage,basicConstraints")
    text = " ".join(out.decode().split())
    assert "DNS:mx1.remote.test, DNS:mx.remote.test, IP Address:127.0.0.2" in text
    assert "TLS Web Server Authentication" in text and "CA:FALSE" in text
    rc, out, _ = openssl("x509", "-in", ca.ca_cert, "-noout", "-ext", "basicConstraints")
    assert "CA:TRUE" in out.decode()
    # The key belongs to the certificate.
    _, pub_cert, _ = openssl("x509", "-in", cert, "-pubkey", "-noout")
    _, pub_key, _ = openssl("pkey", "-in", key, "-pubout")
    assert pub_cert == pub_key and b"BEGIN PUBLIC KEY" in pub_cert


def test_ca_untrusted_certificates_do_not_verify(ca, tmp_path):
    ok, out = ca.verify(ca.self_signed([MX])[0])
    assert not ok and "self-signed certificate" in out
    ok, out = ca.verify(ca.issue(["old.remote.test"], expired=True)[0])
    assert not ok and "certificate has expired" in out
    other = TestCA(tmp_path / "other", name="Someone Else")
    ok, out = ca.verify(other.issue([MX])[0])
    assert not ok and "unable to get local issuer certificate" in out
    ok, out = other.verify(other.issue([MX])[0])
    assert ok, out


def test_ca_key_types_and_chain(ca):
    rsa_cert, rsa_key = ca.issue(["rsa.remote.test"], key="rsa", chain=True)
    _, text, _ = openssl("x509", "-in", rsa_cert, "-noout", "-text")
    assert b"rsaEncryption" in text and b"(2048 bit)" in text
    assert b"Key Encipherment" in text
    _, text, _ = openssl("x509", "-in", ca.issue(["ec.remote.test"])[0], "-noout", "-text")
    assert b"id-ecPublicKey" in text and b"prime256v1" in text
    pems = re.findall(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n",
                      rsa_cert.read_bytes(), re.S)
    assert len(pems) == 2 and pems[1] == ca.ca_cert.read_bytes()
    assert ca.verify(rsa_cert)[0]


def spki_sha256_by_openssl(cert):
    """The RFC 6698 "x 1 1" hash the way operators compute it, through a shell."""
    r = subprocess.run(f"openssl x509 -in '{cert}' -pubkey -noout | "
                       "openssl pkey -pubin -outform DER | openssl dgst -sha256 -r",
                       shell=True, capture_output=True, text=True, check=True)
    return r.stdout.split()[0]


def test_tlsa_hashes_match_openssl(ca, mx_cert):
    cert = mx_cert[0]
    h = ca.tlsa_311(cert)
    assert re.fullmatch(r"[0-9a-f]{64}", h)
    assert h == spki_sha256_by_openssl(cert)
    assert ca.tlsa_211() == spki_sha256_by_openssl(ca.ca_cert) != h
    other = ca.issue([MX])[0]                   # same names, new key: new hash
    assert ca.tlsa_311(other) != h
    chain = ca.issue([MX], chain=True)[0]      # the leaf of a chain file counts
    assert ca.tlsa_311(chain) == spki_sha256_by_openssl(chain)
    _, der, _ = openssl("x509", "-in", cert, "-outform", "DER")
    assert tlsa_data(cert, 0, 1) == hashlib.sha256(der).hexdigest()
    assert tlsa_data(cert, 0, 0) == der.hex()
    assert len(tlsa_data(cert, 1, 2)) == 128
    assert tlsa_rdata(cert) == f"3 1 1 {h}"
    assert tlsa_rdata(ca.ca_cert, 2) == f"2 1 1 {ca.tlsa_211()}"
    with pytest.raises(ValueError):
        tlsa_data(cert, 2, 1)


# ---------------------------------------------------------------- smtpsink: basics

def test_plain_delivery_records_envelope(sink):
    body = b"Subject: hi\r\n\r\n.leading dot\r\nline\r\n"
    with smtplib.SMTP(sink.host, sink.port, local_hostname="client.example.net",
                      timeout=5) as c:
        refused = c.sendmail("alice@example.test", ["bob@remote.test", "carol@remote.test"],
                             body)
    assert refused == {}
    msg, = sink.wait_for(1)
    assert msg.mail_from == "alice@example.test"
    assert msg.rcpts == ["bob@remote.test", "carol@remote.test"]
    assert msg.mail_params == {"SIZE": str(len(body))}      # smtplib sends SIZE=
    assert msg.rcpt_params == [{}, {}]
    assert msg.data == body                                  # dot-stuffed, then unstuffed
    assert (msg.tls, msg.tls_version, msg.sni, msg.bdat) == (False, None, None, False)
    assert (msg.ehlo, msg.helo_verb) == ("client.example.net", "EHLO")
    assert msg.peer[0] == "127.0.0.1" and msg.queue_id == "S00001"
    sess, = sink.wait_sessions(1)
    assert sess.quit and sess.pipelined == [] and not sess.early_talker
    assert sess.transcript[0] == ("S", "220 mx.remote.test ESMTP smtpsink")
    assert ("C", "QUIT") in sess.transcript


def test_ehlo_keywords_follow_ext_cert_and_tls(sink, ca, mx_cert):
    r, kw, lines = raw_ehlo(sink)
    assert kw == {"PIPELINING", "8BITMIME", "SMTPUTF8", "DSN", "CHUNKING",
                  "ENHANCEDSTATUSCODES", "STARTTLS", "SIZE"}
    assert "SIZE 10485760" in lines
    r.starttls(ca_context(ca), MX)
    code, lines = r.cmd("EHLO client.example.net")
    assert code == 250
    assert {ln.split()[0] for ln in lines[1:]} == kw - {"STARTTLS"} | {"AUTH"}
    assert "AUTH PLAIN LOGIN" in lines
    r.close()
    with SmtpSink("127.0.0.2", 0, ext={"8BITMIME", "STARTTLS", "XFOO"}) as bare:
        r, kw, _ = raw_ehlo(bare)          # no certificate: no STARTTLS
        assert kw == {"8BITMIME", "XFOO"}
        assert r.cmd("STARTTLS")[0] == 502
        r.close()


def test_starttls_checks_name_records_sni_and_version(sink, ca):
    with NamedSMTP(MX, sink.host, sink.port) as c:
        c.starttls(context=ca_context(ca))
        c.sendmail("alice@example.test", ["bob@remote.test"], b"Subject: tls\r\n\r\nx\r\n")
    with NamedSMTP("mx.remote.test", sink.host, sink.port) as c:
        c.starttls(context=ca_context(ca, maximum_version=ssl.TLSVersion.TLSv1_2))
        c.sendmail("alice@example.test", ["bob@remote.test"], b"Subject: tls12\r\n\r\nx\r\n")
    with smtplib.SMTP(sink.host, sink.port, timeout=5) as c:   # no name: no SNI, IP SAN
        c.starttls(context=ca_context(ca))
        c.sendmail("alice@example.test", ["bob@remote.test"], b"Subject: ip\r\n\r\nx\r\n")
    m13, m12, mip = sink.wait_for(3)
    assert (m13.tls, m13.tls_version, m13.sni) == (True, "TLSv1.3", MX)
    assert m13.tls_cipher.startswith("TLS_")
    assert (m12.tls_version, m12.sni) == ("TLSv1.2", "mx.remote.test")
    assert (mip.tls_version, mip.sni) == ("TLSv1.3", None)
    assert all(s.starttls_leftover == 0 and s.tls_error is None for s in sink.sessions)


def test_starttls_failures_are_recorded(sink, ca, mx_cert, tmp_path):
    with NamedSMTP("wrong.remote.test", sink.host, sink.port) as c:
        with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
            c.starttls(context=ca_context(ca))
    other = TestCA(tmp_path / "other")
    with NamedSMTP(MX, sink.host, sink.port) as c:
        with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
            c.starttls(context=ca_context(other))
    sessions = sink.wait_sessions(2)
    assert [("alert" in (s.tls_error or "")) for s in sessions] == [True, True], sessions
    assert all(not s.tls for s in sessions) and sink.messages == []
    # A sink limited to TLS 1.3 refuses a TLS 1.2-only client.
    with SmtpSink("127.0.0.2", 0, *mx_cert, tls_min="TLSv1_3") as s13:
        with NamedSMTP(MX, s13.host, s13.port) as c:
            with pytest.raises(ssl.SSLError):
                c.starttls(context=ca_context(ca, maximum_version=ssl.TLSVersion.TLSv1_2))
        sess, = s13.wait_sessions(1)
        assert "UNSUPPORTED_PROTOCOL" in sess.tls_error


def test_starttls_discards_pipelined_plaintext(sink, ca):
    r, _, _ = raw_ehlo(sink)
    injected = b"MAIL FROM:<evil@attacker.test>\r\n"
    r.send(b"STARTTLS\r\n" + injected)
    assert r.reply()[0] == 220
    r.sock = ca_context(ca).wrap_socket(r.sock, server_hostname=MX)
    assert r.cmd("MAIL FROM:<a@example.test>")[0] == 503      # RFC 3207 §4.2: EHLO again
    assert r.cmd("EHLO client.example.net")[0] == 250
    assert r.cmd("MAIL FROM:<a@example.test>")[0] == 250
    assert r.cmd("QUIT")[0] == 221
    r.close()
    sess, = sink.wait_sessions(1)
    assert sess.starttls_leftover == len(injected) and sess.tls


def test_auth_plain_and_login(sink, ca):
    user, pw = next(iter(CREDS.items()))
    with NamedSMTP(MX, sink.host, sink.port) as c:
        c.ehlo()
        assert not c.has_extn("auth")
        code, text = c.docmd("AUTH", "PLAIN " + base64.b64encode(
            f"\0{user}\0{pw}".encode()).decode())
        assert (code, text) == (538, b"5.7.11 Encryption required for requested "
                                     b"authentication mechanism")
        c.starttls(context=ca_context(ca))
        c.ehlo()
        assert c.has_extn("auth")
        c.user, c.password = user, "wrong"
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            c.auth("PLAIN", c.auth_plain)
        assert (e.value.smtp_code, e.value.smtp_error) == \
            (535, b"5.7.8 Authentication credentials invalid")
    with NamedSMTP(MX, sink.host, sink.port) as c:
        c.starttls(context=ca_context(ca))
        c.ehlo()
        c.user, c.password = user, pw
        assert c.auth("LOGIN", c.auth_login, initial_response_ok=False)[0] == 235
        c.sendmail("alice@example.test", ["bob@remote.test"], b"Subject: a\r\n\r\nx\r\n")
    msg, = sink.wait_for(1)
    assert msg.auth_user == user
    attempts = [a for s in sink.sessions for a in s.auth_attempts]
    assert attempts == [("PLAIN", user, False), ("LOGIN", user, True)]


def test_auth_cancel_required_and_plaintext(mx_cert):
    with SmtpSink("127.0.0.2", 0, auth=CREDS, auth_plaintext=True, require_auth=True) as s:
        r, kw, lines = raw_ehlo(s)
        assert "AUTH PLAIN LOGIN" in lines and "STARTTLS" not in kw
        assert r.cmd("MAIL FROM:<a@example.test>") == (530, ["5.7.0 Authentication required"])
        assert r.cmd("AUTH PLAIN") == (334, [""])
        assert r.cmd("*")[0] == 501                                # RFC 4954 §4
        assert r.cmd("AUTH CRAM-MD5")[0] == 504
        user, pw = next(iter(CREDS.items()))
        secret = base64.b64encode(f"\0{user}\0{pw}".encode()).decode()
        assert r.cmd("AUTH PLAIN " + secret) == (235, ["2.7.0 Authentication successful"])
        assert r.cmd("AUTH PLAIN =")[0] == 503                    # once per session
        assert r.cmd("MAIL FROM:<a@example.test>")[0] == 250
        r.close()
        sess, = s.wait_sessions(1)
        assert ("C", "AUTH PLAIN") in sess.transcript            # no secret recorded
        assert not any(pw in t or secret in t for _, t in sess.transcript)


# ---------------------------------------------------------------- smtpsink: extensions

def test_dsn_params_recorded(sink):
    with smtplib.SMTP(sink.host, sink.port, timeout=5) as c:
        c.sendmail("alice@example.test", ["bob+1@remote.test"], b"Subject: d\r\n\r\nx\r\n",
                   mail_options=["RET=HDRS", "ENVID=QQ+2Bid"],
                   rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;bob+2B1@remote.test"])
    r, _, _ = raw_ehlo(sink)
    assert r.cmd("MAIL FROM:<> RET=FULL BODY=8BITMIME SMTPUTF8")[0] == 250
    assert r.cmd("RCPT TO:<x@remote.test> NOTIFY=NEVER")[0] == 250
    assert r.cmd("RCPT TO:<y@remote.test> NOTIFY=DELAY")[0] == 250
    assert r.cmd("RCPT TO:<z@remote.test> NOTIFY=NEVER,DELAY")[0] == 501   # RFC 3461 §4.1
    assert r.cmd("RCPT TO:<z@remote.test> FOO=BAR")[0] == 555
    assert r.cmd("DATA")[0] == 354
    r.send("x\r\n.\r\n")
    assert r.reply()[0] == 250
    r.close()
    m1, m2 = sink.wait_for(2)
    assert {k: v for k, v in m1.mail_params.items() if k != "SIZE"} == \
        {"RET": "HDRS", "ENVID": "QQ+2Bid"}
    assert m1.rcpt_params == [{"NOTIFY": "SUCCESS,FAILURE",
                               "ORCPT": "rfc822;bob+2B1@remote.test"}]
    assert xtext_decode(m1.params_for("BOB+1@remote.test")["ORCPT"]) == "rfc822;bob+1@remote.test"
    assert m2.mail_from == "" and m2.mail_params == {"RET": "FULL", "BODY": "8BITMIME",
                                                     "SMTPUTF8": True}
    assert m2.rcpts == ["x@remote.test", "y@remote.test"]
    assert m2.rcpt_params == [{"NOTIFY": "NEVER"}, {"NOTIFY": "DELAY"}]


def test_params_refused_when_not_offered():
    with SmtpSink("127.0.0.2", 0, ext={"PIPELINING"}) as s:
        r, _, _ = raw_ehlo(s)
        for p in ("RET=FULL", "ENVID=x", "BODY=8BITMIME", "SMTPUTF8", "SIZE=10", "AUTH=<>"):
            code, text = r.cmd(f"MAIL FROM:<a@example.test> {p}")
            assert code == 555, (p, code, text)
        assert r.cmd("MAIL FROM:<a@example.test>")[0] == 250
        assert r.cmd("RCPT TO:<b@remote.test> NOTIFY=FAILURE")[0] == 555
        assert r.cmd("RCPT TO:<b@remote.test> ORCPT=rfc822;b@remote.test")[0] == 555
        assert r.cmd("BDAT 0 LAST")[0] == 500                      # CHUNKING not offered
        r.close()
    with SmtpSink("127.0.0.2", 0) as s:                            # all offered, but HELO
        r = Raw(s.host, s.port)
        r.reply()
        assert r.cmd("HELO client.example.net") == (250, ["mx.remote.test"])
        assert r.cmd("MAIL FROM:<a@example.test> BODY=8BITMIME")[0] == 555
        r.close()


def test_smtputf8_addresses():
    with SmtpSink("127.0.0.2", 0) as s:
        r, _, _ = raw_ehlo(s)
        assert r.cmd("MAIL FROM:<jörg@example.test>") == \
            (553, ["5.6.7 Non-ASCII address requires SMTPUTF8"])
        assert r.cmd("MAIL FROM:<a@example.test>")[0] == 250
        assert r.cmd("RCPT TO:<δοκιμή@remote.test>")[0] == 553
        assert r.cmd("RSET")[0] == 250
        assert r.cmd("MAIL FROM:<jörg@example.test> SMTPUTF8")[0] == 250
        assert r.cmd("RCPT TO:<δοκιμή@remote.test>")[0] == 250
        assert r.cmd("DATA")[0] == 354
        r.send("Subject: ünïcode\r\n\r\nß\r\n.\r\n".encode())
        assert r.reply()[0] == 250
        r.close()
        msg, = s.wait_for(1)
        assert (msg.mail_from, msg.rcpts) == ("jörg@example.test", ["δοκιμή@remote.test"])
        assert msg.data == "Subject: ünïcode\r\n\r\nß\r\n".encode() and msg.eight_bit


def test_size_limits():
    with SmtpSink("127.0.0.2", 0, max_size=1000) as s:
        r, _, lines = raw_ehlo(s)
        assert "SIZE 1000" in lines
        assert r.cmd("MAIL FROM:<a@example.test> SIZE=1001") == \
            (552, ["5.3.4 Message size exceeds fixed maximum"])
        assert r.cmd("MAIL FROM:<a@example.test> SIZE=1000")[0] == 250
        assert r.cmd("RCPT TO:<b@remote.test>")[0] == 250
        assert r.cmd("DATA")[0] == 354
        r.send(b"x" * 600 + b"\r\n" + b"y" * 600 + b"\r\n.\r\n")      # lied about SIZE
        assert r.reply()[0] == 552
        assert r.cmd("MAIL FROM:<a@example.test>")[0] == 250           # transaction reset
        assert r.cmd("RCPT TO:<b@remote.test>")[0] == 250
        r.send(b"BDAT 900\r\n" + b"z" * 900)
        assert r.reply()[0] == 250
        r.send(b"BDAT 200 LAST\r\n" + b"z" * 200)
        assert r.reply()[0] == 552
        assert r.cmd("NOOP")[0] == 250                                # still in step
        r.close()
        s.wait_sessions(1)
        assert s.messages == []


def test_data_unstuffing_and_terminator():
    with SmtpSink("127.0.0.2", 0) as s:
        r, _, _ = raw_ehlo(s)
        assert r.cmd("MAIL FROM:<a@example.test>")[0] == 250
        assert r.cmd("RCPT TO:<b@remote.test>")[0] == 250
        assert r.cmd("DATA")[0] == 354
        # Only CRLF "." CRLF ends the data (RFC 5321 §4.1.1.4): not LF "." LF,
        # nor CRLF "." LF; a leading dot is removed (§4.5.2).
        r.send(b"Subject: dots\r\n\r\n..two\r\n.one\r\nbare\n.\nmix\r\n.\n"
               b"end\r\n.\r\n")
        assert r.reply()[0] == 250
        r.close()
        msg, = s.wait_for(1)
        assert msg.data == b"Subject: dots\r\n\r\n.two\r\none\r\nbare\n.\nmix\r\n\nend\r\n"
        assert msg.bare_lf and not msg.eight_bit


def test_bdat_chunks_by_raw_socket():
    with SmtpSink("127.0.0.2", 0) as s:
        r, _, _ = raw_ehlo(s)
        r.send(b"BDAT 7\r\n.\r\nabc\n")                      # no transaction: 503, in step
        assert r.reply()[0] == 503
        assert r.cmd("NOOP")[0] == 250
        assert r.cmd("MAIL FROM:<a@example.test> BODY=8BITMIME")[0] == 250
        assert r.cmd("RCPT TO:<b@remote.test>")[0] == 250
        chunk1 = b"Subject: chunks\r\n\r\n.dot stays\r\n.\r\n"
        r.send(b"BDAT %d\r\n" % len(chunk1) + chunk1[:10])
        time.sleep(0.05)
        r.send(chunk1[10:])                                   # a chunk in two writes
        assert r.reply() == (250, [f"2.0.0 {len(chunk1)} octets received"])
        assert r.cmd("DATA")[0] == 503                         # not after BDAT
        r.send(b"BDAT 5 LAST\r\ntail\n")
        code, text = r.reply()
        assert code == 250 and text == ["2.0.0 Ok: queued as S00001"]
        r.send(b"MAIL FROM:<a@example.test>\r\nRCPT TO:<c@remote.test>\r\nBDAT 0 LAST\r\n")
        assert [r.reply()[0] for _ in range(3)] == [250, 250, 250]
        r.close()
        m1, m2 = s.wait_for(2)
        assert m1.bdat and m1.data == chunk1 + b"tail\n"
        assert m2.bdat and m2.data == b"" and m2.rcpts == ["c@remote.test"]


def test_pipelining_answers_in_order_and_is_recorded(sink):
    sink.fail("rcpt", "550 5.1.1 no such user", match="nobody@remote.test")
    r, _, _ = raw_ehlo(sink)
    r.send("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@remote.test>\r\n"
           "RCPT TO:<nobody@remote.test>\r\nRCPT TO:<c@remote.test>\r\nDATA\r\n")
    first = r.sock.recv(65536)              # the group's replies come in one write
    r.buf = first
    codes = [r.reply()[0] for _ in range(5)]
    assert codes == [250, 250, 550, 250, 354] and r.buf == b""
    assert first.count(b"\r\n") == 5
    r.send("Subject: p\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    assert r.reply()[0] == 250 and r.reply()[0] == 221
    r.close()
    msg, = sink.wait_for(1)
    assert msg.rcpts == ["b@remote.test", "c@remote.test"]
    sess, = sink.wait_sessions(1)
    assert sess.pipelined == ["RCPT", "RCPT", "RCPT", "DATA", "QUIT"]
    assert sess.rejected == [("rcpt", "nobody@remote.test", "550 5.1.1 no such user")]
    # Data sent with DATA, before the 354: recorded as a pipelining violation.
    r, _, _ = raw_ehlo(sink)
    r.send("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@remote.test>\r\nDATA\r\nx\r\n.\r\n")
    assert [r.reply()[0] for _ in range(4)] == [250, 250, 354, 250]
    r.close()
    assert sink.wait_sessions(2)[1].pipelined == ["RCPT", "DATA", "<data before 354>"]


def test_session_in_any_pieces_gives_the_same_result():
    """One pipelined session sent whole, one octet at a time and in random
    pieces: the same replies and the same recorded messages every time."""
    script = (b"EHLO pieces.example.net\r\nMAIL FROM:<a@example.test> BODY=8BITMIME\r\n"
              b"RCPT TO:<b@remote.test> NOTIFY=FAILURE\r\nDATA\r\n"
              b"Subject: pieces\r\n\r\n..dot\r\nline\r\n.\r\n"
              b"MAIL FROM:<>\r\nRCPT TO:<c@remote.test>\r\nBDAT 9\r\n.\r\nx\r\n.\r\n"
              b"BDAT 0 LAST\r\nRSET\r\nNOOP\r\nQUIT\r\n")
    rng = random.Random(5)
    results = []
    for mode in ("whole", "octets", "random"):
        with SmtpSink("127.0.0.2", 0) as s:
            c = socket.create_connection((s.host, s.port), 5)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            i = 0
            while i < len(script):
                n = {"whole": len(script), "octets": 1, "random": rng.randint(1, 17)}[mode]
                c.sendall(script[i:i + n])
                i += n
            got = b""
            while True:
                piece = c.recv(65536)
                if not piece:
                    break
                got += piece
            c.close()
            codes = [ln[:4] for ln in got.decode().split("\r\n") if ln[3:4] == " "]
            msgs = [(m.mail_from, m.mail_params, m.rcpts, m.rcpt_params, m.data, m.bdat)
                    for m in s.wait_for(2)]
            results.append((codes, msgs))
    assert results[0][0] == ["220 ", "250 ", "250 ", "250 ", "354 ", "250 ", "250 ", "250 ",
                             "250 ", "250 ", "250 ", "250 ", "221 "]
    assert results[0][1] == [
        ("a@example.test", {"BODY": "8BITMIME"}, ["b@remote.test"], [{"NOTIFY": "FAILURE"}],
         b"Subject: pieces\r\n\r\n.dot\r\nline\r\n", False),
        ("", {}, ["c@remote.test"], [{}], b".\r\nx\r\n.\r\n", True)]
    assert results[1] == results[0] and results[2] == results[0]


# ---------------------------------------------------------------- smtpsink: scripted failures

def send(s, rcpts=("bob@remote.test",), body=b"Subject: t\r\n\r\nx\r\n", **kw):
    with smtplib.SMTP(s.host, s.port, timeout=5, **kw) as c:
        return c.sendmail("alice@example.test", list(rcpts), body)


def test_fail_rcpt_times_and_match(sink):
    sink.fail("rcpt", "451 4.3.0 try later", times=1)
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        send(sink)
    assert e.value.recipients == {"bob@remote.test": (451, b"4.3.0 try later")}
    assert send(sink) == {}
    sink.fail("rcpt", "550 5.1.1 no such user", match="BOB@remote.test")
    assert send(sink, ["bob@remote.test", "carol@remote.test"]) == \
        {"bob@remote.test": (550, b"5.1.1 no such user")}
    m1, m2 = sink.wait_for(2)
    assert m1.rcpts == ["bob@remote.test"] and m2.rcpts == ["carol@remote.test"]
    sink.clear()
    assert send(sink) == {}


def test_fail_mail_data_and_data_end(sink):
    sink.fail("mail", "452 4.3.1 insufficient storage", times=1)
    with pytest.raises(smtplib.SMTPSenderRefused) as e:
        send(sink)
    assert e.value.smtp_code == 452
    sink.fail("data", "451 4.3.0 not now", times=1)
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(sink)
    assert e.value.smtp_code == 451
    sink.fail("data_end", "554 5.7.1 looks like spam", match="Subject: reject me")
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(sink, body=b"Subject: reject me\r\n\r\nx\r\n")
    assert (e.value.smtp_code, e.value.smtp_error) == (554, b"5.7.1 looks like spam")
    sink.fail("data_end", "451 4.7.1 greylisted", match="carol@remote.test", times=1)
    with pytest.raises(smtplib.SMTPDataError):
        send(sink, ["bob@remote.test", "carol@remote.test"])
    assert send(sink, body=b"Subject: fine\r\n\r\nx\r\n") == {}
    msg, = sink.wait_for(1)
    assert msg.data.startswith(b"Subject: fine")


def test_fail_connect_multiline_and_421(sink):
    sink.fail("connect", "421 4.3.2 go away", times=1)
    with pytest.raises(smtplib.SMTPConnectError) as e:
        send(sink)
    assert e.value.smtp_code == 421
    sink.fail("connect", "554 5.7.1 no service here", match="127.0.0.1", times=1)
    r = Raw(sink.host, sink.port)
    assert r.reply() == (554, ["5.7.1 no service here"])
    assert r.cmd("EHLO client.example.net")[0] == 503               # RFC 5321 §3.1
    assert r.cmd("QUIT")[0] == 221
    r.close()
    sink.fail("rcpt", "550 5.1.1 first line\nsecond line\n550 5.1.1 third", times=1)
    sink.fail("rcpt", "421 4.4.5 shutting down", times=1)
    r, _, _ = raw_ehlo(sink)
    assert r.cmd("MAIL FROM:<a@example.test>")[0] == 250
    r.send("RCPT TO:<b@remote.test>\r\n")
    raw = r.sock.recv(4096)
    assert raw == b"550-5.1.1 first line\r\n550-second line\r\n550 5.1.1 third\r\n"
    assert r.cmd("RCPT TO:<b@remote.test>") == (421, ["4.4.5 shutting down"])
    assert r.sock.recv(100) == b""                                  # closed after 421
    r.close()
    assert format_reply("250 ok") == "250 ok\r\n"
    with pytest.raises(ValueError):
        sink.fail("rcpt", "no code here")
    with pytest.raises(ValueError):
        sink.fail("nowhere", "550 5.0.0 x")


def test_fail_drop_and_callable_match(sink):
    sink.fail("data_end", drop=True, times=1)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        send(sink)
    sink.fail("rcpt", "550 5.7.1 odd", match=lambda addr: addr.startswith("odd"))
    assert send(sink, ["odd@remote.test", "even@remote.test"]) == \
        {"odd@remote.test": (550, b"5.7.1 odd")}
    sessions = sink.wait_sessions(2)
    assert sessions[0].error == "dropped at data_end by a rule" and not sessions[0].quit
    assert [m.rcpts for m in sink.messages] == [["even@remote.test"]]


def test_delay_and_client_timeout(sink):
    sink.delay("mail", 0.3, times=1)
    with smtplib.SMTP(sink.host, sink.port, timeout=5) as c:
        c.ehlo()
        t = time.monotonic()
        assert c.mail("a@example.test")[0] == 250
        assert time.monotonic() - t >= 0.3
    sink.delay("connect", 30)
    t = time.monotonic()
    with pytest.raises((socket.timeout, smtplib.SMTPServerDisconnected)):
        smtplib.SMTP(sink.host, sink.port, timeout=0.3)
    assert time.monotonic() - t < 2
    t = time.monotonic()
    sink.stop()                                       # wakes the sleeping session
    assert time.monotonic() - t < 2


def test_early_talker_is_recorded(sink):
    sink.delay("connect", 0.2, times=1)
    r = Raw(sink.host, sink.port)
    r.send("EHLO impatient.example.net\r\n")
    assert r.reply()[0] == 220 and r.reply()[0] == 250
    r.close()
    sess, = sink.wait_sessions(1)
    assert sess.early_talker and sess.ehlo == "impatient.example.net"


def test_set_down_refuses_then_comes_back(sink):
    port = sink.port
    sink.set_down(True)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((sink.host, port), 2)
    sink.set_down(False)
    assert sink.port == port and send(sink) == {}
    assert len(sink.wait_for(1)) == 1


def test_limits_rcpts_long_lines_bad_commands():
    with SmtpSink("127.0.0.2", 0, max_rcpts=2) as s:
        r, _, _ = raw_ehlo(s)
        assert r.cmd("MAIL FROM:<a@example.test>")[0] == 250
        assert [r.cmd(f"RCPT TO:<u{i}@remote.test>")[0] for i in range(3)] == [250, 250, 452]
        assert r.cmd("NOOP " + "x" * 10000) == (500, ["5.5.2 Line too long"])
        assert r.cmd("NOOP")[0] == 250
        codes = [r.cmd("WHAT")[0] for _ in range(20)]     # the long line was the first
        assert codes == [500] * 19 + [421]
        with pytest.raises((EOFError, ConnectionResetError)):
            r.cmd("NOOP")
        r.close()


def test_helo_rset_noop_quit():
    with SmtpSink("127.0.0.2", 0) as s:
        r = Raw(s.host, s.port)
        r.reply()
        assert r.cmd("MAIL FROM:<a@example.test>")[0] == 503            # no HELO yet
        assert r.cmd("HELO old.example.net")[0] == 250
        assert r.cmd("MAIL FROM:<a@example.test>")[0] == 250
        assert r.cmd("MAIL FROM:<a@example.test>")[0] == 503            # nested
        assert r.cmd("RSET")[0] == 250
        assert r.cmd("RCPT TO:<b@remote.test>")[0] == 503               # RSET ended it
        assert r.cmd("DATA")[0] == 503
        assert r.cmd("NOOP") == (250, ["2.0.0 Ok"])
        assert r.cmd("VRFY bob")[0] == 252
        assert r.cmd("QUIT") == (221, ["2.0.0 Bye"])
        r.close()
        sess, = s.wait_sessions(1)
        assert (sess.helo_verb, sess.ehlo, sess.quit) == ("HELO", "old.example.net", True)


# ---------------------------------------------------------------- smtpsink: several at once

def test_two_sinks_share_a_port_on_different_addresses(mx_cert):
    port = free_port(["127.0.0.2", "127.0.0.3"])
    with SmtpSink("127.0.0.2", port) as a, SmtpSink("127.0.0.3", port) as b:
        send(a, ["x@remote.test"], source_address=("127.0.0.5", 0))
        send(b, ["y@remote.test"])
        ma, = a.wait_for(1)
        mb, = b.wait_for(1)
        assert (a.port, b.port) == (port, port)
        assert ma.rcpts == ["x@remote.test"] and mb.rcpts == ["y@remote.test"]
        assert ma.peer[0] == "127.0.0.5" and mb.peer[0] == "127.0.0.1"
        assert (len(a.messages), len(b.messages)) == (1, 1)


def test_concurrent_clients(sink):
    errors = []

    def client(n):
        try:
            with smtplib.SMTP(sink.host, sink.port, timeout=10) as c:
                for i in range(5):
                    c.sendmail("a@example.test", [f"c{n}@remote.test"],
                               f"Subject: {n}-{i}\r\n\r\nx\r\n".encode())
        except Exception as e:                       # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    msgs = sink.wait_for(40)
    assert len(msgs) == 40
    assert len({m.queue_id for m in msgs}) == 40
    assert sorted(m.data for m in msgs) == sorted(
        f"Subject: {n}-{i}\r\n\r\nx\r\n".encode() for n in range(8) for i in range(5))
    assert sink.connections == 8


def test_wait_for_times_out_with_transcript(sink):
    send(sink)
    with pytest.raises(AssertionError, match=r"expected 2 message\(s\); have 1") as e:
        sink.wait_for(2, timeout=0.2)
    assert re.search(r"C: mail FROM:<alice@example.test>", str(e.value), re.I)
    sink.reset()
    assert sink.messages == [] and sink.sessions == []


# ---------------------------------------------------------------- httpsd

class NamedHTTPS(http.client.HTTPSConnection):
    """HTTPS to an IP address with name as Host, SNI and certificate name."""

    def __init__(self, name, ip, port, context):
        super().__init__(name, port, context=context, timeout=5)
        self._ip = ip

    def connect(self):
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def get(web, ca, path, name="mta-sts.remote.test", method="GET"):
    c = NamedHTTPS(name, web.host, web.port, ca_context(ca))
    try:
        c.request(method, path)
        resp = c.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        c.close()


@pytest.fixture
def web(ca):
    cert, key = ca.issue(["mta-sts.remote.test"])
    policy = sts_policy("enforce", ["mx1.remote.test", "*.backup.remote.test"], 604800)
    w = HttpsServer("127.0.0.4", 0, cert, key, routes={STS_PATH: (200, "text/plain", policy)})
    yield w
    w.stop()


def test_https_serves_policy_and_counts(web, ca):
    status, headers, body = get(web, ca, STS_PATH)
    assert status == 200 and headers["Content-Type"] == "text/plain"
    assert body == (b"version: STSv1\r\nmode: enforce\r\nmx: mx1.remote.test\r\n"
                    b"mx: *.backup.remote.test\r\nmax_age: 604800\r\n")
    assert get(web, ca, "/nothing")[0] == 404
    policy_len = len(body)
    status, headers, body = get(web, ca, STS_PATH, method="HEAD")
    assert status == 200 and body == b"" and headers["Content-Length"] == str(policy_len)
    assert web.count() == 2 and web.hits == {STS_PATH: 2, "/nothing": 1}
    req = web.wait_requests(2)[0]
    assert (req.method, req.path, req.host, req.sni, req.status) == \
        ("GET", STS_PATH, f"mta-sts.remote.test:{web.port}", "mta-sts.remote.test", 200)
    assert req.peer[0] == "127.0.0.1"
    assert sts_txt("20240101T0000") == '"v=STSv1; id=20240101T0000;"'


def test_https_knobs(web, ca):
    web.redirect(STS_PATH, "https://elsewhere.test/policy.txt")
    status, headers, _ = get(web, ca, STS_PATH)
    assert status == 301 and headers["Location"] == "https://elsewhere.test/policy.txt"
    web.set_route(STS_PATH, 200, "text/html", "<p>not a policy</p>")
    assert get(web, ca, STS_PATH)[1]["Content-Type"] == "text/html"
    web.set_route(STS_PATH, 503, body="busy")
    assert get(web, ca, STS_PATH)[:1] == (503,)
    web.set_route(STS_PATH, body=sts_policy("testing"), chunked=True)
    status, headers, body = get(web, ca, STS_PATH)
    assert headers["Transfer-Encoding"] == "chunked" and body == sts_policy("testing").encode()
    web.set_route(STS_PATH, content_type=None, body="x")
    assert "Content-Type" not in get(web, ca, STS_PATH)[1]
    web.remove_route(STS_PATH)
    assert get(web, ca, STS_PATH)[0] == 404
    assert web.count() == 6
    with pytest.raises(AssertionError, match="had 6 request"):
        web.wait_requests(7, timeout=0.1)


def test_https_wrong_name_is_refused_and_recorded(web, ca):
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        get(web, ca, STS_PATH, name="mta-sts.other.test")
    deadline = time.time() + 5
    while not web.errors and time.time() < deadline:
        time.sleep(0.02)
    assert len(web.errors) == 1 and "alert" in web.errors[0][1]
    assert web.count() == 0
    with HttpsServer("127.0.0.4", 0, *ca.issue(["mta-sts.remote.test"]),
                     routes={"/r": Route(200, "text/plain", b"\x00bytes", delay=0.2)}) as w2:
        t = time.monotonic()
        assert get(w2, ca, "/r")[2] == b"\x00bytes"
        assert time.monotonic() - t >= 0.2


def test_tlsa_rdata_is_served_by_unbound(ca, mx_cert, tmp_path):
    """The rdata form tlsa_rdata() makes is what unbound.py's zones take."""
    if not os.path.exists(UNBOUND):
        pytest.skip("no unbound binary")
    cert = mx_cert[0]
    u = Unbound(tmp_path / "dns", {"remote.test": [
        ("_25._tcp.mx1", "TLSA", tlsa_rdata(cert)),
        ("_25._tcp.mx1", "TLSA", tlsa_rdata(ca.ca_cert, 2))]})
    try:
        q = query_packet("_25._tcp.mx1.remote.test", qtype=52)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            s.sendto(q, ("127.0.0.1", u.port))
            resp = s.recv(4096)
    finally:
        u.stop()
    assert resp[3] & 0x0F == 0 and int.from_bytes(resp[6:8], "big") == 2    # NOERROR, 2 RRs
    assert bytes([3, 1, 1]) + bytes.fromhex(ca.tlsa_311(cert)) in resp
    assert bytes([2, 1, 1]) + bytes.fromhex(ca.tlsa_211()) in resp
