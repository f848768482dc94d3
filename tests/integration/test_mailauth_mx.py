"""Mail authentication on the MX path (RFC 7208 SPF, RFC 6376 DKIM, RFC 7489 DMARC,
RFC 8601 Authentication-Results), with a real resolver: `unbound` on a loopback
port serving local zones, rampartd pointed at it with dns.resolver.

Senders (the client is always 127.0.0.1):
- good.example: SPF allows 127.0.0.1, messages DKIM-signed by dkimpy with the key
  published at sel._domainkey.good.example, DMARC p=reject: everything passes.
- reject.example: SPF allows only 192.0.2.1 (-all), no signature, p=reject.
- quarantine.example: the same with p=quarantine.
- nodmarc.example: SPF "?all" (neutral), no DMARC record.
"""
import smtplib
import time
import subprocess
import base64
from email.parser import BytesHeaderParser

import pytest

from unbound import Unbound

dkim = pytest.importorskip("dkim")

AUTHSERV = "mx.example.test"    # conftest's hostname, the default authserv-id


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory):
    d = tmp_path_factory.mktemp("dkimkey")
    key = d / "key.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", str(key)], check=True,
                   capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return key.read_bytes(), base64.b64encode(der).decode()


def txt(value):
    """A TXT rdata of one long value: strings of at most 255 octets (RFC 1035 §3.3.14)."""
    return " ".join(f'"{value[i:i + 255]}"' for i in range(0, len(value), 255))


@pytest.fixture(scope="module")
def zones(rsa_key):
    _, pub = rsa_key
    zones = {
        "good.example": [
            ("@", "TXT", txt("v=spf1 ip4:127.0.0.1 -all")),
            ("sel._domainkey", "TXT", txt(f"v=DKIM1; k=rsa; p={pub}")),
            ("_dmarc", "TXT", txt("v=DMARC1; p=reject")),
        ],
        "reject.example": [
            ("@", "TXT", txt("v=spf1 ip4:192.0.2.1 -all")),
            ("_dmarc", "TXT", txt("v=DMARC1; p=reject")),
        ],
        "nodmarc.example": [
            ("@", "TXT", txt("v=spf1 ?all")),
        ],
        "quarantine.example": [
            ("@", "TXT", txt("v=spf1 ip4:192.0.2.1 -all")),
            ("_dmarc", "TXT", txt("v=DMARC1; p=quarantine")),
        ],
    }
    return zones


@pytest.fixture(scope="module")
def dns(tmp_path_factory, zones):
    u = Unbound(tmp_path_factory.mktemp("unbound"), zones)
    yield u
    u.stop()


def settings_for(dns, **extra):
    s = {"dns.resolver": f'"{dns.addr}"', "dns.trust_anchor": '""', "dns.timeout": "3s"}
    s.update(extra)
    return s


def message(sender, subject, extra_headers=""):
    return (f"From: Sender <{sender}>\r\nTo: alice@example.test\r\nSubject: {subject}\r\n"
            f"Date: Sat, 21 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@x>\r\n"
            f"{extra_headers}\r\nHello Alice.\r\n").encode()


def signed(msg, rsa_key):
    key, _ = rsa_key
    sig = dkim.sign(msg, b"sel", b"good.example", key,
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    return sig + msg


def auth_results(path):
    hdrs = BytesHeaderParser().parsebytes(path.read_bytes())
    return [" ".join(v.split()) for v in hdrs.get_all("Authentication-Results", [])]


def test_signed_aligned_message_gets_pass_results_in_maildir(make_server, dns, rsa_key):
    """RFC 8601 §2.2: one field with our authserv-id; spf, dkim and dmarc all pass."""
    srv = make_server(settings=settings_for(dns))
    msg = signed(message("bob@good.example", "good"), rsa_key)
    s = smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=15)
    s.sendmail("bob@good.example", ["alice@example.test"], msg)
    s.quit()
    [path] = srv.wait_messages("alice", 1)
    [ar] = auth_results(path)
    assert ar.startswith(AUTHSERV + ";"), ar
    assert "spf=pass smtp.mailfrom=bob@good.example" in ar, ar
    assert "dkim=pass header.d=good.example header.s=sel header.b=" in ar, ar
    assert "dmarc=pass header.from=good.example" in ar, ar
    # The field is at the top, under the delivery's Return-Path and Delivered-To
    # and above our Received: (RFC 8601 §5, RFC 5321 §4.4). Maildir has LF ends.
    names = [l.split(b":")[0] for l in path.read_bytes().split(b"\n\n")[0].split(b"\n")
             if l[:1] not in (b" ", b"\t")]
    assert names[:4] == [b"Return-Path", b"Delivered-To", b"Authentication-Results",
                         b"Received"], names
    # What was delivered still verifies (nothing we added broke the signature).
    _, pub = rsa_key
    keys = {b"sel._domainkey.good.example.": f"v=DKIM1; k=rsa; p={pub}".encode()}
    assert dkim.verify(path.read_bytes(), dnsfunc=lambda n, timeout=5: keys.get(n))
    assert "spf=pass dkim=pass (good.example) dmarc=pass" in srv.log_text()


def test_forged_results_claiming_our_id_are_removed(make_server, dns, rsa_key):
    """RFC 8601 §5: fields claiming our authserv-id are removed before ours is added;
    others (another server's) stay."""
    srv = make_server(settings=settings_for(dns))
    forged = ("Authentication-Results: mx.example.test; dkim=pass header.d=bank.example\r\n"
              "Authentication-Results: (comment) MX.EXAMPLE.TEST 1;\r\n dmarc=pass\r\n"
              "Authentication-Results: other.example; spf=pass\r\n")
    msg = message("bob@reject.example", "forged", forged)
    s = smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=15)
    with pytest.raises(smtplib.SMTPDataError) as e:      # p=reject: still refused
        s.sendmail("bob@reject.example", ["alice@example.test"], msg)
    assert e.value.smtp_code == 550
    s.quit()
    msg = message("carol@nodmarc.example", "forged2", forged)
    s = smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=15)
    s.sendmail("carol@nodmarc.example", ["alice@example.test"], msg)
    s.quit()
    [path] = srv.wait_messages("alice", 1)
    ars = auth_results(path)
    assert len(ars) == 2, ars
    assert ars[0].startswith(AUTHSERV + ";") and "spf=neutral" in ars[0] and "dmarc=none" in ars[0]
    assert ars[1] == "other.example; spf=pass"
    assert b"bank.example" not in path.read_bytes()
    assert "removed 2 Authentication-Results fields" in srv.log_text()


def test_dmarc_reject_policy_refuses_with_550_5_7_1(make_server, dns):
    """RFC 7489 §6.6.4, §10.3: p=reject and a failing message: 550 5.7.1 at end of DATA."""
    srv = make_server(settings=settings_for(dns))
    s = smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=15)
    s.ehlo("client.example")
    s.mail("bob@reject.example")
    s.rcpt("alice@example.test")
    code, text = s.data(message("bob@reject.example", "spoof"))
    assert code == 550 and text.startswith(b"5.7.1"), (code, text)
    assert b"reject.example" in text
    # The session goes on: the next message (no DMARC policy) is accepted.
    s.sendmail("carol@nodmarc.example", ["alice@example.test"], message("carol@nodmarc.example", "ok"))
    s.quit()
    msgs = srv.wait_messages("alice", 1)
    assert len(msgs) == 1 and b"Subject: ok" in msgs[0].read_bytes()
    assert "refused: spf=fail dkim=none dmarc=fail (reject.example: p=reject dis=reject)" \
        in srv.log_text()


def test_dmarc_quarantine_policy_delivers_to_junk(make_server, dns):
    """p=quarantine: accepted, delivered to the Junk folder (Maildir++ .Junk) with
    dmarc=fail in its Authentication-Results."""
    srv = make_server(settings=settings_for(dns))
    s = smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=15)
    s.sendmail("bob@quarantine.example", ["alice@example.test"],
               message("bob@quarantine.example", "junk"))
    s.quit()
    junk = srv.maildir("alice") / ".Junk" / "new"
    deadline = time.time() + 15
    while not (junk.exists() and list(junk.iterdir())):
        assert time.time() < deadline, srv.log_text()[-3000:]
        time.sleep(0.05)
    [path] = list(junk.iterdir())
    [ar] = auth_results(path)
    assert "dmarc=fail" in ar and "header.from=quarantine.example" in ar, ar
    assert (srv.maildir("alice") / ".Junk" / "maildirfolder").exists()
    assert srv.messages("alice") == []


def test_report_only_action_accepts_and_reports_failure(make_server, dns):
    """dmarc_action = report: nothing is refused, the failure is in the header."""
    srv = make_server(settings=settings_for(dns, dmarc_action='"report"'))
    s = smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=15)
    s.sendmail("bob@reject.example", ["alice@example.test"], message("bob@reject.example", "rep"))
    s.quit()
    [path] = srv.wait_messages("alice", 1)
    [ar] = auth_results(path)
    assert "spf=fail" in ar and "dkim=none" in ar and "dmarc=fail" in ar, ar


def test_header_section_over_the_limit_is_refused(make_server, dns):
    """The header section is held in memory until complete (to remove forged
    Authentication-Results); more than 256 KiB of it is refused at the end of
    DATA with 552 5.3.4, and the session goes on."""
    srv = make_server(settings=settings_for(dns))
    big = "".join(f"X-Filler-{i}: {'x' * 200}\r\n" for i in range(1400))   # ~300 KiB
    s = smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=30)
    s.ehlo("client.example")
    s.mail("carol@nodmarc.example")
    s.rcpt("alice@example.test")
    code, text = s.data(message("carol@nodmarc.example", "big", big))
    assert (code, text[:5]) == (552, b"5.3.4"), (code, text)
    s.sendmail("carol@nodmarc.example", ["alice@example.test"],
               message("carol@nodmarc.example", "small", "X-Filler: y\r\n"))
    s.quit()
    msgs = srv.wait_messages("alice", 1)
    assert len(msgs) == 1 and b"Subject: small" in msgs[0].read_bytes()
    assert "header section over 262144 octets" in srv.log_text()


def test_unreachable_resolver_gives_temperror_and_the_message_is_kept(make_server):
    """DNS down: every lookup times out (dns.timeout), the results are temperror
    and the message is accepted (RFC 7208 §2.6.6, RFC 7489 §6.6.3: no policy
    can be applied)."""
    import socket
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # bound, never answers
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    try:
        srv = make_server(settings={"dns.resolver": f'"127.0.0.1@{port}"',
                                    "dns.trust_anchor": '""', "dns.timeout": "500"})
        start = time.time()
        s = smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=30)
        s.sendmail("bob@reject.example", ["alice@example.test"],
                   message("bob@reject.example", "dnsdown"))
        s.quit()
        assert time.time() - start < 10
        [path] = srv.wait_messages("alice", 1)
        [ar] = auth_results(path)
        assert "spf=temperror" in ar and "dmarc=temperror" in ar, ar
    finally:
        sock.close()
