"""Transport security of outbound delivery (issue 5): DANE (RFC 7672) and MTA-STS
(RFC 8461). A destination that publishes either gets mail only over TLS with a
certificate its policy accepts; otherwise the message is deferred, not sent in
the clear nor to an impostor, and the log says why.

DANE: dane.test is a DNSSEC-signed zone (ldns-signzone, served by unbound's
auth-zone; rampartd's trust anchor holds its DS), MX mx.dane.test -> 127.0.0.4,
with a TLSA "3 1 1" record at _PORT._tcp.mx.dane.test: matching the sink's key, or
not. MTA-STS: sts.test publishes _mta-sts TXT and a policy served over HTTPS at
mta-sts.sts.test (127.0.0.5); its MX mx.sts.test (127.0.0.6) shows a certificate
from the trusted CA for the right name, or a self-signed one.
"""
import re
import shutil
import subprocess
import time

import pytest

from conftest import login
from httpsd import STS_PATH, HttpsServer, sts_policy, sts_txt
from smtpsink import SmtpSink, free_port
from testca import TestCA
from unbound import UNBOUND, Unbound

LDNS_KEYGEN = shutil.which("ldns-keygen")
LDNS_SIGNZONE = shutil.which("ldns-signzone")
ALICE = "alice@example.test"


def submit(srv, rcpt, subject):
    s = login(srv)
    s.sendmail(ALICE, [rcpt], f"From: {ALICE}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n"
               f"\r\nbody\r\n")
    s.quit()


def wait_log(srv, pattern, timeout=20):
    deadline = time.time() + timeout
    while not re.search(pattern, srv.log_text()):
        assert time.time() < deadline, srv.log_text()[-4000:]
        time.sleep(0.1)


def queued(srv):
    return list((srv.spool / "queue").iterdir())


# ---- DANE ----

def sign_zone(directory, zone, body):
    """Signs zone (ECDSAP256SHA256, NSEC); returns (signed file, DS line)."""
    unsigned = directory / f"{zone}.zone"
    unsigned.write_text(body)
    keys = []
    for ksk in (True, False):
        args = [LDNS_KEYGEN, "-a", "ECDSAP256SHA256"] + (["-k"] if ksk else []) + [zone]
        r = subprocess.run(args, cwd=directory, capture_output=True, text=True, check=True)
        keys.append(r.stdout.strip())
    signed = directory / f"{zone}.zone.signed"
    subprocess.run([LDNS_SIGNZONE, "-f", str(signed), str(unsigned), *keys], cwd=directory,
                   capture_output=True, text=True, check=True)
    return signed, (directory / f"{keys[0]}.ds").read_text().strip()


@pytest.fixture
def dane_world(tmp_path):
    if LDNS_KEYGEN is None or LDNS_SIGNZONE is None or shutil.which(UNBOUND) is None:
        pytest.skip("ldnsutils or unbound is not installed")
    ca = TestCA(tmp_path / "ca")
    port = free_port(["127.0.0.4"])
    cert, key = ca.self_signed(["mx.dane.test"])      # DANE-EE needs no CA (RFC 7672 §3.1.1)
    other, _ = ca.self_signed(["mx.dane.test"])
    sink = SmtpSink("127.0.0.4", port, cert=cert, key=key, hostname="mx.dane.test")
    made = []

    def make(make_server, matching):
        tlsa = ca.tlsa_311(cert if matching else other)
        zdir = tmp_path / f"zone{len(made)}"
        zdir.mkdir()
        signed, ds = sign_zone(zdir, "dane.test", f"""$ORIGIN dane.test.
$TTL 300
@    SOA   ns1 hostmaster 1 3600 600 86400 300
     NS    ns1
     MX    10 mx
ns1  A     192.0.2.53
mx   A     127.0.0.4
_{port}._tcp.mx TLSA 3 1 1 {tlsa}
""")
        anchor = zdir / "anchor.ds"
        anchor.write_text(ds + "\n")
        dns = Unbound(zdir / "unbound", {}, auth_zones={"dane.test": signed})
        made.append(dns)
        srv = make_server(settings={
            "dns.resolver": f'"{dns.addr}"', "dns.trust_anchor": f'"{anchor}"',
            "relay.port": str(port), "relay.mta_sts": "false",
            "queue_retry_min": "1s", "relay.destination_backoff": "1s"})
        return srv

    yield make, sink
    sink.stop()
    for d in made:
        d.stop()


def test_dane_match_delivers_with_verified_dane(make_server, dane_world):
    make, sink = dane_world
    srv = make(make_server, matching=True)
    submit(srv, "carol@dane.test", "dane ok")
    msg, = sink.wait_for(1, timeout=20)
    assert msg.tls and msg.sni == "mx.dane.test"
    wait_log(srv, r"to=<carol@dane\.test> host=mx\.dane\.test\[127\.0\.0\.4\] "
                  r"tls=TLSv1\.[23]/\S+ verified=dane status=sent")


def test_dane_mismatch_is_deferred_and_logged(make_server, dane_world):
    """RFC 7672 §2.2: with usable TLSA records, a certificate that matches none of
    them gets no mail: deferred (4.7.5), the log says the certificate did not verify."""
    make, sink = dane_world
    srv = make(make_server, matching=False)
    submit(srv, "carol@dane.test", "dane mismatch")
    wait_log(srv, r"to=<carol@dane\.test> .*status=deferred")
    time.sleep(1.0)
    assert sink.messages == []
    log = srv.log_text()
    assert re.search(r"relay: dane\.test: mx\.dane\.test\[127\.0\.0\.4\]: .*(verif|TLSA)", log,
                     re.I), log[-4000:]
    assert len(queued(srv)) == 1


# ---- MTA-STS ----

@pytest.fixture
def sts_world(tmp_path):
    ca = TestCA(tmp_path / "ca")
    port = free_port(["127.0.0.6"])
    web_cert, web_key = ca.issue(["mta-sts.sts.test"])
    made = []

    def make(make_server, mode, good_cert):
        if good_cert:
            cert, key = ca.issue(["mx.sts.test"])
        else:
            cert, key = ca.self_signed(["mx.sts.test"])
        sink = SmtpSink("127.0.0.6", port, cert=cert, key=key, hostname="mx.sts.test")
        web = HttpsServer("127.0.0.5", 0, web_cert, web_key,
                          routes={STS_PATH: (200, "text/plain", sts_policy(mode, ["mx.sts.test"]))})
        dns = Unbound(tmp_path / f"unbound{len(made)}", {"sts.test": [
            ("@", "MX", "10 mx"), ("mx", "A", "127.0.0.6"), ("mta-sts", "A", "127.0.0.5"),
            ("_mta-sts", "TXT", sts_txt("20261120"))]})
        made.extend([sink, web, dns])
        srv = make_server(settings={
            "dns.resolver": f'"{dns.addr}"', "dns.trust_anchor": '""',
            "relay.port": str(port), "relay.ca_file": f'"{ca.ca_cert}"',
            "relay.mta_sts_port": str(web.port),
            "queue_retry_min": "1s", "relay.destination_backoff": "1s"})
        return srv, sink, web

    yield make
    for m in made:
        m.stop()


def test_mta_sts_enforce_with_valid_certificate_delivers(make_server, sts_world):
    srv, sink, web = sts_world(make_server, "enforce", good_cert=True)
    submit(srv, "dave@sts.test", "sts ok")
    msg, = sink.wait_for(1, timeout=20)
    assert msg.tls and msg.sni == "mx.sts.test"
    assert web.count(STS_PATH) == 1
    wait_log(srv, r"to=<dave@sts\.test> .*verified=pkix status=sent")


def test_mta_sts_enforce_with_bad_certificate_is_deferred(make_server, sts_world):
    """RFC 8461 §4.2: under enforce, a certificate that does not verify for the MX
    host means no delivery to it; the message waits (deferred) and the log says why."""
    srv, sink, web = sts_world(make_server, "enforce", good_cert=False)
    submit(srv, "dave@sts.test", "sts bad cert")
    wait_log(srv, r"to=<dave@sts\.test> .*status=deferred")
    time.sleep(1.0)
    assert sink.messages == []
    assert re.search(r"relay: sts\.test: mx\.sts\.test\[127\.0\.0\.6\]: .*verif", srv.log_text(),
                     re.I), srv.log_text()[-4000:]
    assert len(queued(srv)) == 1


def test_mta_sts_testing_delivers_and_reports(make_server, sts_world):
    """RFC 8461 §5: testing mode delivers as usual and only reports the failure."""
    srv, sink, web = sts_world(make_server, "testing", good_cert=False)
    submit(srv, "dave@sts.test", "sts testing")
    msg, = sink.wait_for(1, timeout=20)
    assert msg.tls
    wait_log(srv, r"MTA-STS testing: enforce would refuse this")
