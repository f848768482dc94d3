"""The smarthost password is a secret of the queue process only (DESIGN: front
processes hold no secrets): it lives in relay.password_file, which the queue
process alone reads, at start; rampartd (whose heap every child inherits)
never does. Checked on a real delivery through a smarthost that requires AUTH:
the queue logs in with it, and the memory of rampartd and of the front, auth
and keys processes does not contain it (the queue's does, which shows the scan
finds it where it is). Never in the log. A file others could read is refused: no queue, no mail
out, and the log says why.

Reading another process's memory needs root (CAP_SYS_PTRACE); without it the
test is skipped.
"""
import os
import re
import smtplib
import subprocess
import time

import pytest

from conftest import BUILD, login
from smtpsink import SmtpSink, free_port
from testca import TestCA

ALICE = "alice@example.test"
SECRET = "Smarthost-Canary-Q7v9xZ2k"


MAX_MAPPING = 1 << 30     # sanitizer shadow and reserved regions are far larger
CHUNK = 4 << 20


def process_holds(pid, needle):
    """True when needle is anywhere in pid's readable memory (mappings of at most
    MAX_MAPPING, read in chunks that overlap by len(needle))."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
            if "r" not in m.group(3) or "[vsyscall]" in line or "[vvar]" in line:
                continue
            start, end = int(m.group(1), 16), int(m.group(2), 16)
            if end - start > MAX_MAPPING:
                continue
            pos = start
            while pos < end:
                try:
                    mem.seek(pos)
                    block = mem.read(min(CHUNK + len(needle), end - pos))
                except (OSError, ValueError, OverflowError):
                    break
                if needle in block:
                    return True
                pos += CHUNK
    return False


def smarthost_settings(port, pwfile, ca):
    return {"relay.host": '"127.0.0.1"', "relay.port": str(port), "relay.tls": '"required"',
            "relay.user": '"relayuser"', "relay.password_file": f'"{pwfile}"',
            "relay.ca_file": f'"{ca.ca_cert}"'}


@pytest.mark.skipif(os.geteuid() != 0, reason="reading process memory needs root")
def test_only_the_queue_holds_the_smarthost_password(make_server, tmp_path):
    ca = TestCA(tmp_path / "ca")
    cert, key = ca.issue(["smarthost.test"])
    port = free_port()
    sink = SmtpSink("127.0.0.1", port, cert=cert, key=key, hostname="smarthost.test",
                    auth={"relayuser": SECRET}, require_auth=True)
    try:
        pwfile = tmp_path / "relay.secret"
        pwfile.write_text(SECRET + "\n")
        pwfile.chmod(0o600)
        srv = make_server(settings=smarthost_settings(port, pwfile, ca))
        s = login(srv)
        s.sendmail(ALICE, ["carol@remote.test"],
                   f"From: <{ALICE}>\r\nTo: <carol@remote.test>\r\nSubject: via smarthost\r\n\r\nHi.\r\n")
        s.quit()
        msg, = sink.wait_for(1, timeout=20)
        assert msg.auth_user == "relayuser" and msg.tls
        needle = SECRET.encode()
        try:
            assert process_holds(srv.pids("queue")[0], needle), "the scan cannot see the queue's copy"
        except PermissionError:
            pytest.skip("no permission to read process memory here")
        assert not process_holds(srv.proc.pid, needle), "rampartd itself holds the password"
        for role in ("front", "auth", "keys"):
            for pid in srv.pids(role):
                assert not process_holds(pid, needle), f"{role} (pid {pid}) holds the password"
        assert SECRET not in srv.log_text()
    finally:
        sink.stop()


def test_a_password_file_others_can_read_is_refused(make_server, tmp_path):
    """Fail closed: the queue does not start (it is retried, with a log line that
    says why, and without the password), so nothing is accepted for relay."""
    pwfile = tmp_path / "relay.secret"
    pwfile.write_text(SECRET + "\n")
    pwfile.chmod(0o644)
    ca = TestCA(tmp_path / "ca")
    srv = make_server(settings=smarthost_settings(free_port(), pwfile, ca), start=False)
    # Started by hand: Rampart.start() would wait for a queue that cannot start.
    srv.log = open(srv.logfile, "ab")
    srv.proc = subprocess.Popen([str(BUILD / "rampartd"), "-d", "-c", str(srv.config)],
                                stdout=srv.log, stderr=subprocess.STDOUT)
    deadline = time.time() + 20
    while "must not be accessible to others" not in srv.log_text():
        assert time.time() < deadline, srv.log_text()[-3000:]
        time.sleep(0.05)
    assert f"relay.password_file {pwfile} must not be accessible to others" in srv.log_text()
    s = login(srv)
    with pytest.raises(smtplib.SMTPResponseException) as refused:
        s.sendmail(ALICE, ["carol@remote.test"], f"From: <{ALICE}>\r\nSubject: x\r\n\r\nHi.\r\n")
    s.close()
    assert refused.value.smtp_code == 451, refused.value
    assert SECRET not in srv.log_text()
