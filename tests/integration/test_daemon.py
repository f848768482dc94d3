"""rampartd as a process: configuration check, overrides, signals, child restarts."""
import os
import resource
import signal
import smtplib
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BUILD, Rampart, client_tls_context, make_cert

MSG = "From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: %s\r\n\r\nbody %s\r\n"


def test_check_mode_accepts_good_config(server):
    r = subprocess.run([str(BUILD / "rampartd"), "-n", "-c", str(server.config)],
                       capture_output=True, text=True)
    assert r.returncode == 0
    assert "configuration ok" in r.stdout


@pytest.mark.parametrize("text,where,what", [
    ('hostname = "a"\nmax_recipients = lots\n', ":2:", "expected a whole number"),
    ('hostname = "a"\n\nno_such_option = 1\n', ":3:", "no_such_option"),
    ('listener x { role = relay }\n', ":1:", "expected mx, submission or submissions"),
])
def test_check_mode_reports_file_and_line(tmp_path, text, where, what):
    conf = tmp_path / "bad.conf"
    conf.write_text(text)
    r = subprocess.run([str(BUILD / "rampartd"), "-n", "-c", str(conf)],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert str(conf) + where in r.stderr
    assert what in r.stderr


def test_check_mode_refuses_unreadable_certificate(tmp_path, tls_files):
    conf = tmp_path / "c.conf"
    conf.write_text('tls_cert = "/nonexistent.pem"\ntls_key = "/nonexistent.key"\n')
    r = subprocess.run([str(BUILD / "rampartd"), "-n", "-c", str(conf)],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "certificate" in r.stderr


def test_override_on_command_line(tmp_path, tls_files):
    srv = Rampart(tmp_path, tls_files)
    srv.provision()
    srv.start("-o", "max_errors=2")
    try:
        with socket.create_connection(("127.0.0.1", srv.ports["mx"])) as s:
            f = s.makefile("rb")
            f.readline()
            s.sendall(b"FOO\r\nBAR\r\n")
            assert f.readline().startswith(b"500")   # FOO
            assert f.readline().startswith(b"500")   # BAR: the second error ...
            assert f.readline().startswith(b"421 4.7.0")   # ... reaches max_errors
            assert f.readline() == b""               # and the connection is closed
    finally:
        assert srv.stop() == 0


def test_sigterm_lets_open_transaction_finish(server):
    """SIGTERM: no new connections, but a transaction in DATA completes (grace period)."""
    s = smtplib.SMTP("127.0.0.1", server.ports["mx"])
    s.ehlo()
    s.mail("carol@remote.test")
    s.rcpt("alice@example.test")
    code, _ = s.docmd("DATA")
    assert code == 354
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    # New connections are no longer accepted.
    with pytest.raises(OSError):
        c = socket.create_connection(("127.0.0.1", server.ports["mx"]), timeout=2)
        c.recv(10) or (_ for _ in ()).throw(OSError("closed"))
    s.send(b"Subject: late\r\n\r\nfinished during shutdown\r\n.\r\n")
    code, text = s.getreply()
    assert code == 250, text
    # After its transaction, the session is told the service is going away.
    code, _ = s.docmd("NOOP")
    assert code in (421, -1) or code == 250
    s.close()
    assert server.proc.wait(timeout=20) == 0
    # The queue was stopped after the fronts, so the message is in the spool or delivered.
    queued = list((server.spool / "queue").iterdir())
    assert len(queued) + len(server.messages("alice")) == 1


def test_sighup_reloads_certificate_without_dropping_sessions(server, tmp_path):
    ctx = client_tls_context()
    user, password = "alice@example.test", server.PASSWORDS["alice@example.test"]
    # Submission requires AUTH: alice sends as herself (sender accountability).
    alice_msg = MSG.replace("From: carol@remote.test", "From: alice@example.test")
    old = smtplib.SMTP("127.0.0.1", server.ports["submission"])
    old.starttls(context=ctx)
    old.ehlo()
    old.login(user, password)
    old_cert = old.sock.getpeercert(binary_form=True)

    # New certificate and host name, then SIGHUP.
    newdir = tmp_path / "newtls"
    newdir.mkdir()
    cert, key = make_cert(newdir)
    text = server.config.read_text()
    text = text.replace(str(server.cert), str(cert)).replace(str(server.key), str(key))
    text = text.replace('hostname = "mx.example.test"', 'hostname = "reloaded.example.test"')
    server.config.write_text(text)
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while "reloaded: generation 1" not in server.log_text():
        assert time.time() < deadline, server.log_text()
        time.sleep(0.05)

    # The established (authenticated) session still works and delivers.
    old.sendmail(user, ["alice@example.test"], alice_msg % ("before", "x"))
    old.quit()
    # New sessions get the new configuration and the new certificate.
    new = smtplib.SMTP("127.0.0.1", server.ports["submission"])
    assert b"reloaded.example.test" in new.ehlo()[1]
    new.starttls(context=ctx)
    assert new.sock.getpeercert(binary_form=True) != old_cert
    new.ehlo()
    new.login(user, password)
    new.sendmail(user, ["alice@example.test"], alice_msg % ("after", "y"))
    new.quit()
    server.wait_messages("alice", 2)


def test_sighup_with_broken_config_keeps_running(server):
    good = server.config.read_text()
    server.config.write_text(good + "max_recipients = many\n")
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while "reload refused" not in server.log_text():
        assert time.time() < deadline
        time.sleep(0.05)
    server.config.write_text(good)
    s = smtplib.SMTP("127.0.0.1", server.ports["mx"])
    s.sendmail("carol@remote.test", ["alice@example.test"], MSG % ("still", "up"))
    s.quit()
    server.wait_messages("alice", 1)


def child_pids(parent_pid):
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == parent_pid:
                    kids.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return kids


@pytest.mark.parametrize("role", ["auth", "queue", "keys"])
def test_killed_child_is_restarted_and_rewired(server, role):
    pid = server.pids(role)[0]
    os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 10
    while not [p for p in server.pids(role) if p != pid]:
        assert time.time() < deadline, server.log_text()
        time.sleep(0.05)
    # Both fronts talk to the new process.
    for _ in range(4):
        s = smtplib.SMTP("127.0.0.1", server.ports["mx"])
        s.sendmail("carol@remote.test", ["alice@example.test"], MSG % (role, "restart"))
        s.quit()
    server.wait_messages("alice", 4)
    assert sorted(server.children().values()) == ["auth", "front0", "front1", "keys", "queue"]


def listening_inodes():
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] == "0A":        # TCP_LISTEN
                    inodes.add(fields[9])
    return inodes


def socket_inodes(pid):
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(link[8:-1])
    return out


def test_children_keep_only_their_own_sockets(server):
    """Privilege separation: auth and queue hold no listening socket; each front holds
    exactly its own socket per listener (not its siblings')."""
    listening = listening_inodes()
    auth, queue = server.pids("auth")[0], server.pids("queue")[0]
    fronts = server.pids("front")
    assert len(fronts) == 2
    assert not socket_inodes(auth) & listening
    assert not socket_inodes(queue) & listening
    held = [socket_inodes(f) & listening for f in fronts]
    assert all(len(h) == len(server.ports) for h in held)
    assert not held[0] & held[1]


def test_children_do_not_inherit_the_parents_other_fds(tmp_path, tls_files):
    """Whatever the parent holds beyond a child's own channel and listeners is closed
    in the child (close_range over the gaps between the kept fds): here two pipes the
    daemon inherited, one at fd 40 (among the parent's own) and one at the highest fd
    the hard limit allows."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    high = min(hard, 1 << 20) - 1
    r, w = os.pipe()

    def place():
        resource.setrlimit(resource.RLIMIT_NOFILE, (high + 1, hard))
        os.dup2(w, 40)
        os.dup2(w, high)

    srv = Rampart(tmp_path, tls_files)
    srv.provision()
    log = open(srv.logfile, "ab")
    srv.proc = subprocess.Popen([str(BUILD / "rampartd"), "-d", "-c", str(srv.config)],
                                stdout=log, stderr=subprocess.STDOUT, close_fds=False,
                                preexec_fn=place)
    os.close(w)
    try:
        deadline = time.time() + 20
        while len(srv.children()) < 4:
            assert time.time() < deadline and srv.proc.poll() is None, srv.log_text()
            time.sleep(0.05)
        pipe = os.readlink(f"/proc/{srv.proc.pid}/fd/{high}")
        assert os.readlink(f"/proc/{srv.proc.pid}/fd/40") == pipe     # the parent has both
        for pid, role in srv.children().items():
            links = set()
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    links.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
                except OSError:
                    pass
            assert pipe not in links, (role, sorted(os.listdir(f"/proc/{pid}/fd"), key=int))
    finally:
        assert srv.stop() == 0
        os.close(r)


def test_sigterm_after_reload_closes_draining_sessions(server):
    """A session kept by a reload's drain does not hold up a later shutdown."""
    s = smtplib.SMTP("127.0.0.1", server.ports["mx"])
    s.ehlo()
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while "reloaded: generation 1" not in server.log_text():
        assert time.time() < deadline
        time.sleep(0.05)
    assert s.noop()[0] == 250          # still served by the draining front
    start = time.time()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=15) == 0
    assert time.time() - start < 10    # not reload_grace (1 h)
    s.close()


def test_children_run_as_configured_user(tmp_path, tls_files):
    """With `user` set, auth, queue and fronts drop root; the files they create are theirs."""
    import pwd
    import tempfile
    nobody = pwd.getpwnam("nobody")
    base = Path(tempfile.mkdtemp(prefix="rampart-user-", dir="/var/tmp"))
    os.chmod(base, 0o711)
    srv = Rampart(tmp_path, tls_files)
    srv.state = base / "state"
    srv.mail, srv.spool = srv.state / "mail", srv.state / "spool"
    text = srv.config.read_text().replace(f'state_dir = "{tmp_path / "state"}"',
                                          f'state_dir = "{srv.state}"')
    srv.config.write_text(text + 'user = "nobody"\n')
    try:
        srv.start()
        srv.provision()          # the CLI switches to the same user
        for pid, role in srv.children().items():
            with open(f"/proc/{pid}/status") as f:
                uid_line = next(l for l in f if l.startswith("Uid:"))
            assert set(uid_line.split()[1:]) == {str(nobody.pw_uid)}, (role, uid_line)
        s = smtplib.SMTP("127.0.0.1", srv.ports["mx"])
        s.sendmail("carol@remote.test", ["alice@example.test"], MSG % ("priv", "drop"))
        s.quit()
        msg = srv.wait_messages("alice", 1)[0]
        assert msg.stat().st_uid == nobody.pw_uid
        assert (srv.state / "directory.db").stat().st_uid == nobody.pw_uid
    finally:
        assert srv.stop() == 0
        subprocess.run(["rm", "-rf", str(base)])


def test_signals_during_startup_do_not_kill_the_daemon(tmp_path, tls_files):
    """SIGHUP while the daemon is still starting (its listeners already accept
    connections, its handlers may not be in place yet) is handled, never fatal; a burst
    of them makes one reload, not one each."""
    srv = Rampart(tmp_path, tls_files)
    srv.provision()
    log = open(srv.logfile, "ab")
    srv.proc = subprocess.Popen([str(BUILD / "rampartd"), "-d", "-c", str(srv.config)],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        # Before main() runs no program can catch a signal; the daemon's first log
        # line comes after it blocked them, which is where the storm starts.
        deadline = time.time() + 10
        while not srv.log_text():
            assert time.time() < deadline and srv.proc.poll() is None
            time.sleep(0.001)
        end = time.time() + 1.0
        while time.time() < end:
            srv.proc.send_signal(signal.SIGHUP)
            time.sleep(0.002)
        assert srv.proc.poll() is None, srv.log_text()
        deadline = time.time() + 10
        while True:
            try:
                s = smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=5)
                break
            except OSError:
                assert time.time() < deadline
                time.sleep(0.05)
        s.sendmail("carol@remote.test", ["alice@example.test"], MSG % ("hup", "storm"))
        s.quit()
        srv.wait_messages("alice", 1)
        assert srv.log_text().count("reloading") < 100   # ~500 signals, coalesced
    finally:
        assert srv.stop() == 0


def test_repeated_kills_of_a_ready_child_never_stop_the_daemon(server):
    """A child that had started and served is restarted at once however often it dies:
    only deaths before it is ready (start-up failures) back off and can give up."""
    for round_ in range(8):
        # the queue in place has served (so it reported ready) before it is killed
        s = smtplib.SMTP("127.0.0.1", server.ports["mx"])
        s.sendmail("carol@remote.test", ["alice@example.test"], MSG % ("kill", round_))
        s.quit()
        pid = server.pids("queue")[0]
        os.kill(pid, signal.SIGKILL)
        deadline = time.time() + 10
        while True:
            new = [p for p in server.pids("queue") if p != pid]
            if new and "queue/0 (pid %d)" % pid in server.log_text():
                break
            assert server.proc.poll() is None, server.log_text()[-2000:]
            assert time.time() < deadline, server.log_text()[-2000:]
            time.sleep(0.02)
    server.wait_messages("alice", 8)
    assert "giving up" not in server.log_text()
    assert "before it was ready" not in server.log_text()


def test_child_failing_at_startup_backs_off(tmp_path, tls_files):
    """A queue that cannot start (its spool is unusable) is retried with growing delays,
    the parent's loop keeps running (fronts answer 451), and it recovers once fixed."""
    srv = Rampart(tmp_path, tls_files)
    srv.provision()
    srv.state.mkdir(parents=True, exist_ok=True)
    srv.spool.write_text("a file where the spool directory should be")
    srv.start()
    try:
        deadline = time.time() + 10
        while "before it was ready; restarting in 2 s" not in srv.log_text():
            assert time.time() < deadline, srv.log_text()[-2000:]
            time.sleep(0.05)
        s = smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=5)   # fronts still answer
        s.ehlo()
        s.mail("carol@remote.test")
        s.rcpt("alice@example.test")
        code, _ = s.docmd("DATA")
        assert code == 451
        s.close()
        srv.spool.unlink()
        deadline = time.time() + 20
        while not srv.pids("queue"):
            assert time.time() < deadline, srv.log_text()[-2000:]
            time.sleep(0.1)
        # The new queue process needs a moment (longer under ASan) before the
        # fronts reach it; until then DATA still gets 451, as a client would retry.
        while True:
            s = smtplib.SMTP("127.0.0.1", srv.ports["mx"], timeout=5)
            try:
                s.sendmail("carol@remote.test", ["alice@example.test"], MSG % ("fixed", "spool"))
                s.quit()
                break
            except smtplib.SMTPDataError as e:
                assert e.smtp_code == 451, e
                assert time.time() < deadline, srv.log_text()[-2000:]
                s.close()
                time.sleep(0.2)
        srv.wait_messages("alice", 1)
    finally:
        assert srv.stop() == 0


def test_open_file_limit_is_raised_to_the_hard_limit(make_server):
    """Connections and messages in delivery each hold a descriptor: rampartd lifts
    a low soft limit (1024 here) to the hard one (at most 1048576) for every child."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard <= 1024:
        pytest.skip(f"the hard open-file limit here is only {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        srv = make_server()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    want = hard if hard != resource.RLIM_INFINITY and hard <= 1048576 else 1048576
    for role in ("queue", "front", "auth"):
        for pid in srv.pids(role):
            line = [l for l in open(f"/proc/{pid}/limits") if l.startswith("Max open files")][0]
            assert int(line.split()[3]) == want, (role, line)
