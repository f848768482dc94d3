"""`rampart queue list|show|retry|delete|hold|release` against a spool that a real
rampartd wrote.

The spool is made the way mail gets there: alice submits with AUTH two messages with
remote recipients whose domain does not resolve (the static zone answers TIMEOUT for
remote.test), so they stay queued; bob's local copy is delivered. Then:

  - offline (rampartd stopped): list and show print exactly what the files hold (the
    data size is checked against the spool file's own data-end); hold moves
    queue/ID to hold/ID, release moves it back, delete removes it; each change says
    "rampartd is not running: ..." and is an "admin" line in the audit log; refusals
    (already held, not held, unknown id, held message retried) exit 1 with one
    sentence; bad ids and arguments exit 2; a held message is not touched by a
    rampartd started meanwhile; a process holding the spool lock without a control
    socket makes the CLI refuse instead of changing the files;
  - online (rampartd running, its queue answering on spool/control.sock): retry, hold,
    show (with the daemon's runtime state), release and delete reach the daemon and
    the files follow.
"""
import fcntl
import os
import re
import time

import pytest

from conftest import assert_clean_exit, audit_events, login

ALICE = "alice@example.test"
BOB = "bob@example.test"
ID_RE = re.compile(r"^[0-9a-f]{24}$")


@pytest.fixture
def queued(make_server, tmp_path):
    """A server (stopped) whose spool holds two queued messages: (server, id1, id2).
    id1 went to carol@remote.test and bob (bob delivered), id2 to dave@remote.test."""
    zone = tmp_path / "remote.zone"
    zone.write_text("remote.test. TIMEOUT\n")
    srv = make_server(settings={"dns.zone": f'"{zone}"'})
    ids = []
    for subject, rcpts in (("queue-cli-1", ["carol@remote.test", BOB]),
                           ("queue-cli-2", ["dave@remote.test"])):
        s = login(srv, ALICE)
        s.mail(ALICE)
        for r in rcpts:
            assert s.rcpt(r)[0] == 250
        code, text = s.data(f"From: <{ALICE}>\r\nTo: <{rcpts[0]}>\r\nSubject: {subject}\r\n"
                            f"\r\nHello {subject}.\r\n")
        assert code == 250, text
        ids.append(re.search(rb"queued as (\S+)", text).group(1).decode())
        s.quit()
    srv.wait_messages("bob", 1)
    # bob's mark is written a moment after his Maildir copy.
    deadline = time.time() + 10
    while not re.search(r"^    delivered bob@example\.test$", cli(srv, "queue", "list").stdout,
                        re.M):
        assert time.time() < deadline, srv.log_text()[-3000:]
        time.sleep(0.05)
    return srv, ids[0], ids[1]


def cli(srv, *args):
    return srv.cli(*args, check=False)


def data_size(path):
    """The message data's length, from the spool file itself (RAMPART-SPOOL 2:
    data-end on line two; the data starts after the envelope's empty line)."""
    raw = path.read_bytes()
    lines = raw.split(b"\n", 2)
    assert lines[0] == b"RAMPART-SPOOL 2", lines[0]
    data_end = int(lines[1].split()[1], 16)
    return data_end - (raw.index(b"\n\n") + 2)


def admin_events(srv, action):
    return [e for e in audit_events(srv, "admin") if e.get("action") == action]


def test_offline(queued):
    srv, id1, id2 = queued
    assert ID_RE.match(id1) and ID_RE.match(id2) and id1 < id2
    assert_clean_exit(srv)
    q, h = srv.spool / "queue", srv.spool / "hold"
    size1, size2 = data_size(q / id1), data_size(q / id2)

    # list: one block per message, oldest first, and a count.
    r = cli(srv, "queue", "list")
    assert r.returncode == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert len(lines) == 6, r.stdout
    assert re.fullmatch(rf"{id1}  +\d+s  +{size1}  <{ALICE}>", lines[0]), lines[0]
    assert lines[1:3] == ["    pending   carol@remote.test (remote)",
                          "    delivered bob@example.test"]
    assert re.fullmatch(rf"{id2}  +\d+s  +{size2}  <{ALICE}>", lines[3]), lines[3]
    assert lines[4] == "    pending   dave@remote.test (remote)"
    assert lines[5] == "2 messages in the queue"

    # show: the envelope, recipients, header section (not the body), no daemon.
    r = cli(srv, "queue", "show", id1)
    assert r.returncode == 0 and r.stderr == ""
    out = r.stdout.splitlines()
    for want in (f"id:         {id1}", "state:      queued", f"from:       <{ALICE}>",
                 f"auth:       {ALICE}", "listener:   submission", "body:       7BIT",
                 "ret:        -", "envid:      -", f"size:       {size1} bytes",
                 "folder:     INBOX", "recipients: 2 (1 pending)",
                 "    pending   carol@remote.test (remote)", "    delivered bob@example.test",
                 "header section:", f"    From: <{ALICE}>", "    To: <carol@remote.test>",
                 "    Subject: queue-cli-1", "rampartd:   not running"):
        assert want in out, (want, r.stdout)
    assert any(re.fullmatch(r"client:     127\.0\.0\.1 port \d+, helo client\.example\.net", ln)
               for ln in out), r.stdout
    assert any(re.fullmatch(r"received:   \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(\d+s ago\)", ln)
               for ln in out), r.stdout
    assert any(ln.startswith("    Received: by mx.example.test") for ln in out), r.stdout
    assert "Hello queue-cli-1." not in r.stdout
    assert out[-1] == "rampartd:   not running"

    # hold: the file moves; list and show say so.
    r = cli(srv, "queue", "hold", id1)
    assert r.returncode == 0, r.stderr
    assert r.stdout == (f"Held {id1}.\nrampartd is not running: moved to hold/ in the spool "
                        "files directly; it stays there when rampartd starts.\n")
    assert not (q / id1).exists() and (h / id1).is_file()
    r = cli(srv, "queue", "list")
    lines = r.stdout.splitlines()
    assert re.fullmatch(rf"{id2}  +\d+s  +{size2}  <{ALICE}>", lines[0]), r.stdout
    assert re.fullmatch(rf"{id1}  +\d+s  +{size1}  <{ALICE}>  held", lines[2]), r.stdout
    assert lines[-1] == "2 messages in the queue (1 held)"
    assert "state:      held (not delivered until released)" in \
        cli(srv, "queue", "show", id1).stdout.splitlines()
    ev = admin_events(srv, "queue hold (offline)")
    assert len(ev) == 1 and ev[0]["target"] == id1 and ev[0]["result"] == "ok"

    # Refusals: one sentence, exit 1, nothing moved.
    r = cli(srv, "queue", "hold", id1)
    assert r.returncode == 1
    assert r.stderr == f"Cannot hold {id1}: message {id1} is already held.\n"
    r = cli(srv, "queue", "release", id2)
    assert r.returncode == 1
    assert r.stderr == f"Cannot release {id2}: message {id2} is not held.\n"
    r = cli(srv, "queue", "retry", id1)
    assert r.returncode == 1
    assert r.stderr == f"{id1} is held: release it first (rampart queue release {id1}).\n"
    missing = "0000000000000000deadbeef"
    for verb in ("delete", "hold", "release", "show"):
        r = cli(srv, "queue", verb, missing)
        assert r.returncode == 1, (verb, r)
        assert f"no message {missing} in the spool" in r.stderr, (verb, r.stderr)
        assert r.stderr.count("\n") == 1
    assert (h / id1).is_file() and (q / id2).is_file()

    # Usage errors: exit 2.
    for args in (("hold", "xyz"), ("delete", id1.upper()), ("show", "../../etc/passwd"),
                 ("hold",), ("release", id1, id2), ("retry",), ("retry", "--bogus"),
                 ("retry", id1, id2), ("delete", "--force", id1)):
        r = cli(srv, "queue", *args)
        assert r.returncode == 2, (args, r)
        assert r.stdout == "", args
    assert "is not a message id" in cli(srv, "queue", "hold", "xyz").stderr

    # retry: only the daemon schedules; offline there is nothing to do.
    r = cli(srv, "queue", "retry", id2)
    assert r.returncode == 0
    assert r.stdout == (f"rampartd is not running: nothing to do; {id2} will be tried when "
                        "it starts.\n")
    r = cli(srv, "queue", "retry", "--all")
    assert r.returncode == 0
    assert r.stdout == ("rampartd is not running: nothing to do; every queued message will be "
                        "tried when it starts.\n")

    # A rampartd started now leaves the held message alone, and tries the other.
    before = len(srv.log_text())
    srv.start()
    wait_for(lambda: f"{id2} deferred" in srv.log_text()[before:], "id2 not tried", srv)
    time.sleep(1.5)   # past queue_retry_min: a second round of attempts
    assert_clean_exit(srv)
    assert id1 not in srv.log_text()[before:]
    assert (h / id1).is_file() and not (q / id1).exists()

    # release: back in queue/, ready for the next start.
    r = cli(srv, "queue", "release", id1)
    assert r.returncode == 0, r.stderr
    assert r.stdout == (f"Released {id1}.\nrampartd is not running: moved back to queue/ in "
                        "the spool files directly; it will be delivered when rampartd "
                        "starts.\n")
    assert (q / id1).is_file() and not (h / id1).exists()
    assert cli(srv, "queue", "list").stdout.splitlines()[-1] == "2 messages in the queue"

    # delete: queued and held messages alike, for good.
    r = cli(srv, "queue", "delete", id2)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"Deleted {id2}.\nrampartd is not running: removed from the spool files directly.\n"
    assert not (q / id2).exists()
    assert cli(srv, "queue", "hold", id1).returncode == 0
    r = cli(srv, "queue", "delete", id1)
    assert r.returncode == 0, r.stderr
    assert not (h / id1).exists() and not (q / id1).exists()
    r = cli(srv, "queue", "delete", id1)
    assert r.returncode == 1 and f"no message {id1} in the spool" in r.stderr
    assert cli(srv, "queue", "list").stdout == "0 messages in the queue\n"

    # The audit log has each change, in order, with the actor.
    acts = [(e["action"], e["target"]) for e in audit_events(srv, "admin")
            if e["action"].startswith("queue ")]
    assert acts == [("queue hold (offline)", id1), ("queue release (offline)", id1),
                    ("queue delete (offline)", id2), ("queue hold (offline)", id1),
                    ("queue delete (offline)", id1)]
    assert all(e.get("actor") for e in audit_events(srv, "admin"))


def test_lock_without_socket_refuses(queued):
    """A process that holds the spool lock but does not answer (a rampartd whose queue
    has no control socket) must not have its files changed under it."""
    srv, id1, _ = queued
    assert_clean_exit(srv)
    fd = os.open(srv.spool, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        for verb in ("hold", "delete", "retry"):
            r = cli(srv, "queue", verb, id1)
            assert r.returncode == 1, (verb, r)
            assert "holds the spool" in r.stderr and "does not answer" in r.stderr, r.stderr
        assert (srv.spool / "queue" / id1).is_file()
        # Reading is still fine.
        assert cli(srv, "queue", "list").returncode == 0
    finally:
        os.close(fd)
    assert cli(srv, "queue", "hold", id1).returncode == 0


def wait_for(pred, what, srv, timeout=15):
    deadline = time.time() + timeout
    while not pred():
        assert time.time() < deadline, f"{what}\n" + srv.log_text()[-3000:]
        time.sleep(0.05)


def test_online(queued):
    """rampartd running: the CLI talks to its queue over spool/control.sock."""
    srv, id1, id2 = queued
    q, h = srv.spool / "queue", srv.spool / "hold"
    if not (srv.spool / "control.sock").exists():
        pytest.skip("this rampartd's queue has no control socket")

    r = cli(srv, "queue", "retry", id1)
    assert r.returncode == 0 and r.stdout == f"{id1} will be tried now.\n", r
    r = cli(srv, "queue", "retry", "--all")
    assert r.returncode == 0 and r.stdout == "Every queued message will be tried now.\n", r

    r = cli(srv, "queue", "show", id1)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert f"id:         {id1}" in out and "rampartd:" in out, r.stdout
    daemon = out[out.index("rampartd:") + 1:]
    assert daemon and all(ln.startswith("    ") for ln in daemon), r.stdout

    # hold: done now, or after the attempt under way.
    r = cli(srv, "queue", "hold", id1)
    assert r.returncode == 0 and r.stdout == f"Held {id1}.\n", r
    wait_for(lambda: (h / id1).is_file() and not (q / id1).exists(), "not held", srv)
    r = cli(srv, "queue", "hold", id1)
    assert r.returncode == 1 and r.stderr.startswith(f"rampartd did not hold {id1}: "), r

    r = cli(srv, "queue", "release", id1)
    assert r.returncode == 0 and r.stdout == f"Released {id1}.\n", r
    assert (q / id1).is_file() and not (h / id1).exists()

    r = cli(srv, "queue", "delete", id2)
    assert r.returncode == 0 and r.stdout == f"Deleted {id2}.\n", r
    wait_for(lambda: not (q / id2).exists(), "not deleted", srv)
    r = cli(srv, "queue", "retry", id2)
    assert r.returncode == 1 and r.stderr.startswith(f"rampartd did not retry {id2}: "), r

    acts = [e["action"] for e in audit_events(srv, "admin") if e["action"].startswith("queue ")]
    assert acts == ["queue retry", "queue retry", "queue hold", "queue release",
                    "queue delete"]
    assert_clean_exit(srv)
    assert (q / id1).is_file()
