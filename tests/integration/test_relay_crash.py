"""Crash safety of outbound delivery (issue 5): while a stream of messages is
submitted and relayed to a sink, each of rampartd's processes is killed with
SIGKILL in turn (the parent restarts it). Afterwards every message the client got
250 for has reached the sink — none lost — and duplicates are only those SMTP's
at-least-once delivery allows: a message the sink took whose "250" the relay
never recorded (the queue was killed between the sink's reply and marking the
recipient done) is sent again. The counts are printed (pytest -s shows them).

The client side is at-least-once too: a message whose session died before its
250 is submitted again (a new Message-ID), so "accepted" counts only 250s.
"""
import collections
import os
import re
import signal
import smtplib
import threading
import time

from conftest import Rampart, client_tls_context
from smtpsink import SmtpSink, free_port
from unbound import Unbound

ALICE = "alice@example.test"
N = 120


def submit_stream(srv, stop, accepted, errors):
    """Submits N messages, reconnecting after any failure; records the
    Message-IDs that got 250."""
    i = 0
    s = None
    while i < N and not stop.is_set():
        try:
            if s is None:
                s = smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=10)
                s.ehlo("client.example.net")
                s.starttls(context=client_tls_context())
                s.ehlo("client.example.net")
                s.login(ALICE, Rampart.PASSWORDS[ALICE])
            mid = f"<crash-{i}-{time.time_ns()}@example.test>"
            s.sendmail(ALICE, ["sink@remote.test"],
                       f"From: {ALICE}\r\nTo: sink@remote.test\r\nSubject: crash {i}\r\n"
                       f"Message-ID: {mid}\r\n\r\nmessage {i}\r\n")
            accepted.append(mid)
            i += 1
        except (smtplib.SMTPException, OSError) as e:
            errors.append(repr(e))
            try:
                if s is not None:
                    s.close()
            except OSError:
                pass
            s = None
            time.sleep(0.2)
    if s is not None:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            pass


def test_kill_every_process_during_a_relay_stream(make_server, tmp_path):
    port = free_port(["127.0.0.2"])
    sink = SmtpSink("127.0.0.2", port, hostname="mx1.remote.test",
                    ext={"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SIZE"})
    dns = Unbound(tmp_path / "unbound", {"remote.test": [("@", "MX", "10 mx1"),
                                                           ("mx1", "A", "127.0.0.2")]})
    try:
        srv = make_server(settings={
            "dns.resolver": f'"{dns.addr}"', "dns.trust_anchor": '""',
            "relay.port": str(port), "relay.mta_sts": "false",
            "queue_retry_min": "1s", "queue_retry_max": "2s",
            "relay.destination_backoff": "1s"})
        stop = threading.Event()
        accepted, errors = [], []
        t = threading.Thread(target=submit_stream, args=(srv, stop, accepted, errors))
        t.start()
        kills = collections.Counter()
        roles = ["queue", "front", "auth", "keys", "queue", "front"]
        for role in roles:
            deadline = time.time() + 10
            while len(accepted) < (kills.total() + 1) * N // (len(roles) + 1) and \
                    time.time() < deadline and t.is_alive():
                time.sleep(0.05)
            for pid in srv.pids(role)[:1]:
                os.kill(pid, signal.SIGKILL)
                kills[role] += 1
            time.sleep(0.3)
        t.join(timeout=120)
        stop.set()
        assert len(accepted) == N, (len(accepted), errors[-5:])
        # Everything accepted arrives.
        deadline = time.time() + 60
        while True:
            got = collections.Counter(
                m.group(0).decode() for msg in sink.messages
                for m in [re.search(rb"<crash-[^>]+>", msg.data)] if m)
            missing = [mid for mid in accepted if got[mid] == 0]
            if not missing:
                break
            assert time.time() < deadline, (f"{len(missing)} of {N} never arrived",
                                            srv.log_text()[-4000:])
            time.sleep(0.2)
        assert srv.queue_empty(timeout=30)
        dups = sum(c - 1 for c in got.values() if c > 1)
        print(f"\nrelay crash test: {N} accepted, {len(got)} distinct arrived, "
              f"{dups} duplicate(s), kills {dict(kills)}, client retries {len(errors)}")
        # At-least-once: a duplicate needs a kill between the sink's reply and the
        # spool update, so there can be at most one per queue kill per connection.
        assert dups <= kills["queue"] * 20, dups
    finally:
        sink.stop()
        dns.stop()
