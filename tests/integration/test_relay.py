"""Outbound delivery (issue 5): mail an authenticated user submits for remote.test
leaves over the relay — routed by MX through a real unbound on loopback, to
receiving sinks on 127.0.0.2/127.0.0.3, over TLS, DKIM-signed — and comes back as a
bounce (RFC 3464) when the receiver refuses it for good.

The world is: unbound serving remote.test (MX mx1 -> 127.0.0.2, pref 10; mx2 ->
127.0.0.3, pref 20) and nullmx.test (RFC 7505 null MX); SmtpSink receivers on one
port (relay.port) with certificates from a throwaway CA that rampartd trusts
(relay.ca_file); a DKIM key for example.test made with `rampart dkim keygen`,
its TXT record published in the same unbound so dkimpy can check it.
"""
import email
import email.policy
import re
import time

import dkim
import pytest

from conftest import login
from smtpsink import SmtpSink, free_port
from testca import TestCA
from unbound import Unbound

ALICE = "alice@example.test"


class World:
    """unbound + sinks + CA; rampartd configured to use them."""

    def __init__(self, tmp_path, extra_zones=None, sink_ext=None):
        self.ca = TestCA(tmp_path / "ca")
        self.port = free_port(["127.0.0.2", "127.0.0.3"])
        self.cert1, self.key1 = self.ca.issue(["mx1.remote.test"])
        self.cert2, self.key2 = self.ca.issue(["mx2.remote.test"])
        kw = {} if sink_ext is None else {"ext": sink_ext}
        self.sink1 = SmtpSink("127.0.0.2", self.port, cert=self.cert1, key=self.key1,
                              hostname="mx1.remote.test", **kw)
        self.sink2 = SmtpSink("127.0.0.3", self.port, cert=self.cert2, key=self.key2,
                              hostname="mx2.remote.test", **kw)
        self.tmp = tmp_path
        self.zones = {
            "remote.test": [("@", "MX", "10 mx1"), ("@", "MX", "20 mx2"),
                            ("mx1", "A", "127.0.0.2"), ("mx2", "A", "127.0.0.3")],
            "nullmx.test": [("@", "MX", "0 .")],
            "nohost.test": [("@", "MX", "10 missing.nohost.test.")],
        }
        self.zones.update(extra_zones or {})
        self.dns = None

    def start_dns(self, dkim_txt=None):
        zones = dict(self.zones)
        if dkim_txt is not None:
            name, txt = dkim_txt
            zones["example.test"] = [(name, "TXT", txt)]
        self.dns = Unbound(self.tmp / "unbound", zones)

    def settings(self, **more):
        s = {
            "dns.resolver": f'"{self.dns.addr}"',
            "dns.trust_anchor": '""',
            "relay.port": str(self.port),
            "relay.ca_file": f'"{self.ca.ca_cert}"',
            "relay.mta_sts": "false",
            "relay.connection_idle": "1s",
        }
        s.update(more)
        return s

    def stop(self):
        self.sink1.stop()
        self.sink2.stop()
        if self.dns is not None:
            self.dns.stop()


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.stop()


def keygen(srv, kind):
    """`rampart dkim keygen example.test --type KIND`: (selector, TXT rdata for unbound)."""
    r = srv.cli("dkim", "keygen", "example.test", "--type", kind)
    m = re.search(r"^(\S+)\._domainkey\.example\.test\.\s+IN\s+TXT\s+(.*)$", r.stdout, re.M)
    assert m, r.stdout
    return m.group(1), m.group(2)


def submit(srv, to, subject="relay test", body="Hello from Rampart.\r\n", mail_from=ALICE,
           rcpt_options=(), mail_options=()):
    s = login(srv)
    msg = (f"From: Alice <{ALICE}>\r\nTo: {', '.join(to)}\r\nSubject: {subject}\r\n"
           f"Date: Fri, 20 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{time.time_ns()}@example.test>\r\n"
           f"\r\n{body}")
    refused = s.sendmail(mail_from, to, msg, mail_options=list(mail_options),
                         rcpt_options=list(rcpt_options))
    s.quit()
    assert refused == {}
    return msg


def dkim_verify(world, data):
    """dkimpy's verdict on every signature, with the key records from our zone."""
    txts = {}
    for name, typ, rdata in world.zones.get("example.test", []):
        if typ == "TXT":
            txts[f"{name}.example.test."] = rdata
    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        rdata = txts.get(name if name.endswith(".") else name + ".")
        if rdata is None:
            return None
        return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', rdata)).encode()
    d = dkim.DKIM(data)
    results = []
    for i in range(len([h for h in d.headers if h[0].lower() == b"dkim-signature"])):
        try:
            results.append(d.verify(idx=i, dnsfunc=dnsfunc))
        except dkim.ValidationError:     # e.g. "body hash mismatch"
            results.append(False)
    return results


def make_relay_server(make_server, world, **settings):
    """A rampartd with ed25519 and RSA keys for example.test published in unbound."""
    srv = make_server(settings=None, start=False, name="keys")
    # Keys are made in this server's state dir; the real server below uses it too.
    records = [keygen(srv, t) for t in ("ed25519", "rsa")]
    world.zones["example.test"] = [(f"{sel}._domainkey", "TXT", txt) for sel, txt in records]
    world.start_dns()
    s = world.settings(**settings)
    s["dkim_key_dir"] = f'"{srv.state / "dkim"}"'
    real = make_server(settings=s)
    return real, records


def test_submitted_mail_leaves_signed_over_tls(make_server, world):
    """smtplib over 587 -> rampartd -> the lowest-preference MX over STARTTLS, with
    an ed25519 and an RSA DKIM-Signature that dkimpy verifies against the published
    keys; a changed body fails both."""
    srv, _ = make_relay_server(make_server, world)
    submit(srv, ["carol@remote.test"], subject="signed and sealed")
    msg, = world.sink1.wait_for(1, timeout=20)
    assert msg.mail_from == ALICE
    assert msg.rcpts == ["carol@remote.test"]
    assert msg.tls, "delivered without TLS"
    assert msg.tls_version in ("TLSv1.2", "TLSv1.3")
    assert msg.sni == "mx1.remote.test"
    assert world.sink2.messages == []
    assert msg.data.count(b"DKIM-Signature:") == 2
    assert b"a=ed25519-sha256" in msg.data and b"a=rsa-sha256" in msg.data
    assert dkim_verify(world, msg.data) == [True, True]
    tampered = msg.data.replace(b"Hello from Rampart.", b"Hello from Rampart!")
    assert dkim_verify(world, tampered) == [False, False]
    assert srv.queue_empty()
    log = srv.log_text()
    assert re.search(r"relay: \S+ to=<carol@remote\.test> host=mx1\.remote\.test\[127\.0\.0\.2\] "
                     r"tls=TLSv1\.[23]/\S+ verified=no status=sent", log), log[-3000:]


def test_4xx_is_retried_until_the_receiver_recovers(make_server, world):
    srv, _ = make_relay_server(make_server, world, **{"relay.destination_backoff": "1s"})
    world.sink1.fail("rcpt", "451 4.3.0 try again later", times=2)
    world.sink2.set_down(True)
    submit(srv, ["dave@remote.test"], subject="retry me")
    msg, = world.sink1.wait_for(1, timeout=30)
    assert msg.rcpts == ["dave@remote.test"]
    log = srv.log_text()
    assert "status=deferred (451 4.3.0 try again later)" in log, log[-3000:]
    assert "deferred (attempt 1)" in log
    assert srv.queue_empty()


def test_5xx_bounces_to_the_sender_with_the_remote_reply(make_server, world):
    srv, _ = make_relay_server(make_server, world)
    world.sink1.fail("rcpt", "550 5.1.1 <nobody@remote.test>: no such user",
                     match="nobody@remote.test")
    submit(srv, ["nobody@remote.test", "carol@remote.test"], subject="half of it bounces")
    msg, = world.sink1.wait_for(1, timeout=20)
    assert msg.rcpts == ["carol@remote.test"]
    bounce_path, = srv.wait_messages("alice", 1, timeout=20)
    raw = bounce_path.read_bytes()
    b = email.message_from_bytes(raw, policy=email.policy.default)
    assert b["Return-Path"] == "<>"
    assert b.get_content_type() == "multipart/report"
    assert b.get_param("report-type") == "delivery-status"
    text = raw.decode(errors="replace")
    assert "nobody@remote.test" in text
    assert "550 5.1.1" in text and "no such user" in text
    assert re.search(r"Final-Recipient: rfc822; ?nobody@remote\.test", text)
    assert re.search(r"Action: failed", text)
    assert re.search(r"Status: 5\.1\.1", text)
    assert re.search(r"Remote-MTA: dns; ?mx1\.remote\.test", text)
    assert "Subject: half of it bounces" in text     # the original headers come back
    assert "carol@remote.test" not in re.sub(r"(?s)Content-Type: text/rfc822-headers.*", "",
                                             text.split("Final-Recipient", 1)[1])
    assert srv.queue_empty()


def test_null_sender_failure_makes_no_bounce(make_server, world):
    """A notification that cannot be delivered is not answered by another one
    (RFC 5321 §4.5.5); the failure is logged and the message leaves the queue."""
    srv, _ = make_relay_server(make_server, world)
    world.sink1.fail("rcpt", "550 5.1.1 no such user")
    s = login(srv)
    s.sendmail("", ["ghost@remote.test"],
               f"From: {ALICE}\r\nTo: ghost@remote.test\r\nSubject: null sender\r\n\r\nx\r\n")
    s.quit()
    assert srv.queue_empty(timeout=20)
    time.sleep(0.5)
    assert srv.messages("alice") == []
    assert "no notification for the null sender" in srv.log_text()


def test_null_mx_bounces_at_once(make_server, world):
    srv, _ = make_relay_server(make_server, world)
    submit(srv, ["someone@nullmx.test"], subject="to nowhere")
    bounce_path, = srv.wait_messages("alice", 1, timeout=20)
    text = bounce_path.read_text(errors="replace")
    assert "Status: 5.1.10" in text
    assert "null MX" in text
    assert world.sink1.messages == [] and world.sink2.messages == []
    # No host was reached: the log line says so without an empty address.
    assert re.search(r"relay: \S+ to=<someone@nullmx\.test> host=none tls=none status=bounced "
                     r"\(5\d\d 5\.1\.10 ", srv.log_text()), srv.log_text()[-2000:]


def test_second_mx_takes_the_mail_when_the_first_is_down(make_server, world):
    srv, _ = make_relay_server(make_server, world)
    world.sink1.set_down(True)
    submit(srv, ["erin@remote.test"])
    msg, = world.sink2.wait_for(1, timeout=20)
    assert msg.rcpts == ["erin@remote.test"] and msg.tls and msg.sni == "mx2.remote.test"
    assert world.sink1.messages == []


def test_one_connection_carries_several_messages(make_server, world):
    srv, _ = make_relay_server(make_server, world, **{"relay.connection_idle": "5s",
                                                     "relay.destination_concurrency": "1"})
    for i in range(3):
        submit(srv, [f"user{i}@remote.test"], subject=f"batch {i}")
    world.sink1.wait_for(3, timeout=20)
    assert world.sink1.connections == 1, world.sink1.transcript()


@pytest.mark.parametrize("limit", [1, 20])
def test_queue_active_limit_bounds_attempts_in_flight(make_server, world, limit):
    """queue_active_limit: at most that many messages are in an attempt at once
    (each holds its file open); the others wait their turn and still go. With a
    receiver that takes 1 s per message, limit 1 sends three messages one after
    the other on one connection; limit 20 opens a connection for each."""
    srv, _ = make_relay_server(make_server, world, **{"queue_active_limit": str(limit),
                                                     "relay.connection_idle": "5s"})
    world.sink1.delay("data_end", 1.0)
    for i in range(3):
        submit(srv, [f"user{i}@remote.test"], subject=f"slot {i}")
    msgs = world.sink1.wait_for(3, timeout=30)
    assert sorted(m.rcpts[0] for m in msgs) == [f"user{i}@remote.test" for i in range(3)]
    assert world.sink1.connections == (1 if limit == 1 else 3), world.sink1.transcript()
    deadline = time.time() + 10
    while not srv.queue_empty() and time.time() < deadline:
        time.sleep(0.05)
    assert srv.queue_empty()


def submit_for_id(srv, rcpt, subject):
    """Submits one message; its queue id (from the 250 reply)."""
    s = login(srv)
    s.mail(ALICE)
    assert s.rcpt(rcpt)[0] == 250
    code, text = s.data(f"From: <{ALICE}>\r\nTo: <{rcpt}>\r\nSubject: {subject}\r\n\r\nHi.\r\n")
    s.quit()
    assert code == 250, text
    return re.search(rb"queued as (\S+)", text).group(1).decode()


def wait_in_delivery(srv, qid):
    deadline = time.time() + 20
    while "being delivered now" not in srv.cli("queue", "show", qid).stdout:
        assert time.time() < deadline, srv.log_text()[-3000:]
        time.sleep(0.05)


def test_hold_and_delete_during_an_attempt_answer_when_it_ends(make_server, world):
    """`rampart queue hold|delete ID` while ID is being delivered: the answer waits
    for the attempt. A hold after an attempt that ended 4xx puts the message in
    hold/ (no retry); a delete after an attempt that delivered it says ok; a
    hold after an attempt that delivered it says it came too late (exit 1)."""
    srv, _ = make_relay_server(make_server, world)
    for sink in (world.sink1, world.sink2):
        sink.fail("data_end", "451 4.3.0 try later", delay=1.5)
    qid = submit_for_id(srv, "carol@remote.test", "hold me")
    wait_in_delivery(srv, qid)
    t0 = time.time()
    r = srv.cli("queue", "hold", qid)
    assert time.time() - t0 > 0.3, "answered before the attempt ended"
    assert "being delivered" not in srv.cli("queue", "show", qid).stdout
    assert "held" in srv.cli("queue", "show", qid).stdout
    assert f"queue: {qid} held by the operator" in srv.log_text()
    assert world.sink1.messages == [] and world.sink2.messages == []

    for sink in (world.sink1, world.sink2):
        sink.clear()
        sink.delay("data_end", 1.5)
    qid2 = submit_for_id(srv, "dave@remote.test", "delete me")
    wait_in_delivery(srv, qid2)
    r = srv.cli("queue", "delete", qid2)
    assert r.returncode == 0, r.stderr
    assert len(world.sink1.messages) == 1        # the attempt finished its work
    assert qid2 not in srv.cli("queue", "list").stdout

    qid3 = submit_for_id(srv, "erin@remote.test", "too late to hold")
    wait_in_delivery(srv, qid3)
    r = srv.cli("queue", "hold", qid3, check=False)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "delivered by the attempt" in r.stderr
    assert len(world.sink1.messages) == 2
