"""The queue: temporary delivery failures are retried with backoff; `rampart queue list`."""
import smtplib
import time


def test_temporary_failure_is_retried_and_listed(server):
    # alice's mailbox path is blocked by a file: Maildir creation fails (ENOTDIR),
    # which is temporary, so the message stays queued.
    blocker = server.mail / "example.test" / "alice"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a directory")
    s = smtplib.SMTP("127.0.0.1", server.ports["mx"])
    s.sendmail("carol@remote.test", ["alice@example.test", "bob@example.test"],
               "Subject: retry\r\n\r\nretry me\r\n")
    s.quit()
    server.wait_messages("bob", 1)           # bob is not blocked
    deadline = time.time() + 10
    while "deferred (attempt 2)" not in server.log_text():
        assert time.time() < deadline, server.log_text()[-3000:]
        time.sleep(0.1)

    out = server.cli("queue", "list").stdout
    assert "1 message in the queue" in out
    assert "<carol@remote.test>" in out
    assert "pending   alice@example.test" in out
    assert "delivered bob@example.test" in out

    blocker.unlink()
    msgs = server.wait_messages("alice", 1, timeout=15)
    assert b"retry me" in msgs[0].read_bytes()
    assert len(server.messages("bob")) == 1   # not delivered twice to bob
    assert server.queue_empty()
    assert "0 messages in the queue" in server.cli("queue", "list").stdout


def test_queue_list_without_running_daemon(make_server):
    srv = make_server(start=False)
    r = srv.cli("queue", "list")
    assert r.returncode == 0
    assert "0 messages in the queue" in r.stdout
