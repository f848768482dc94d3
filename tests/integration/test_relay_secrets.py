"""The smarthost password (relay.password) is a secret of the queue process only
(DESIGN: front processes hold no secrets): rampartd loads it with the rest of
the configuration, and every other child wipes it at start. Checked on a real
delivery through a smarthost that requires AUTH: the queue logs in with it, and
the memory of the front, auth and keys processes does not contain it (the
queue's does, which shows the scan finds it where it is). Never in the log.

Reading another process's memory needs root (CAP_SYS_PTRACE); without it the
test is skipped.
"""
import os
import re

import pytest

from conftest import login
from smtpsink import SmtpSink, free_port
from testca import TestCA

ALICE = "alice@example.test"
SECRET = "Smarthost-Canary-Q7v9xZ2k"


def process_holds(pid, needle):
    """True when needle is anywhere in pid's readable memory."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
            if "r" not in m.group(3) or "[vsyscall]" in line or "[vvar]" in line:
                continue
            start, end = int(m.group(1), 16), int(m.group(2), 16)
            try:
                mem.seek(start)
                if needle in mem.read(end - start):
                    return True
            except (OSError, ValueError, OverflowError):
                continue
    return False


@pytest.mark.skipif(os.geteuid() != 0, reason="reading process memory needs root")
def test_only_the_queue_holds_the_smarthost_password(make_server, tmp_path):
    ca = TestCA(tmp_path / "ca")
    cert, key = ca.issue(["smarthost.test"])
    port = free_port()
    sink = SmtpSink("127.0.0.1", port, cert=cert, key=key, hostname="smarthost.test",
                    auth={"relayuser": SECRET}, require_auth=True)
    try:
        srv = make_server(settings={
            "relay.host": '"127.0.0.1"', "relay.port": str(port), "relay.tls": '"required"',
            "relay.user": '"relayuser"', "relay.password": f'"{SECRET}"',
            "relay.ca_file": f'"{ca.ca_cert}"'})
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
        for role in ("front", "auth", "keys"):
            for pid in srv.pids(role):
                assert not process_holds(pid, needle), f"{role} (pid {pid}) holds the password"
        assert SECRET not in srv.log_text()
    finally:
        sink.stop()
