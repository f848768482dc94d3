"""`rampart log` over a synthetic audit log, and the fail2ban filter.

The audit file is written here, byte for byte, into the state directory of a
configured (not started) instance; `rampart log` reads it through the instance's
configuration. Every combination of the filters is checked against an
independent Python model of them (ipaddress for the network tests), the human
and --json outputs are compared exactly, -n, a missing file, usage errors, and
--follow through appends, rotation by rename, removal, truncation and a line
written in two pieces. The fail2ban test runs fail2ban-regex on the text
failure line in its stderr, syslog and journal forms, with hostile user names.
"""
import ipaddress
import itertools
import json
import os
import selectors
import shutil
import signal
import subprocess
import time

import pytest

from conftest import BUILD, SRCDIR

# The synthetic log: valid events and, in between, lines that are not events.
EVENTS = [
    ('{"ts":"2026-11-21T10:00:00.000Z","event":"auth","result":"ok","user":"alice@example.test",'
     '"ip":"127.0.0.1","port":50000,"listener":"submission","proto":"smtp","mech":"PLAIN",'
     '"tls":"TLSv1.3","session":"s1"}',
     "2026-11-21T10:00:00.000Z auth ok alice@example.test 127.0.0.1:50000 submission smtp "
     "PLAIN TLSv1.3 session=s1"),
    ('{"ts":"2026-11-21T10:00:01.000Z","event":"auth","result":"fail","reason":"bad-credentials",'
     '"user":"bob@example.test","ip":"127.0.0.2","port":40312,"listener":"submission",'
     '"proto":"smtp","mech":"PLAIN","tls":"TLSv1.3","session":"s2"}',
     "2026-11-21T10:00:01.000Z auth fail bob@example.test 127.0.0.2:40312 submission smtp "
     "PLAIN TLSv1.3 bad-credentials session=s2"),
    "this is not json",
    ('{"ts":"2026-11-21T10:00:02.000Z","event":"auth","result":"fail","reason":"locked-out",'
     '"user":"BOB@Example.TEST","ip":"127.0.0.3","port":40313,"listener":"submissions",'
     '"proto":"smtp","mech":"LOGIN","tls":"TLSv1.2","session":"s3"}',
     "2026-11-21T10:00:02.000Z auth fail BOB@Example.TEST 127.0.0.3:40313 submissions smtp "
     "LOGIN TLSv1.2 locked-out session=s3"),
    ('{"ts":"2026-11-21T10:00:03.000Z","event":"block","network":"127.0.0.0/24",'
     '"until":"2026-11-21T10:05:00Z"}',
     "2026-11-21T10:00:03.000Z block 127.0.0.0/24 until 2026-11-21T10:05:00Z"),
    ('{"ts":"2026-11-21T10:00:04.000Z","event":"auth","result":"fail","reason":"tls-required",'
     '"user":"mallory","ip":"2001:db8::7","port":25,"listener":"mx","proto":"smtp",'
     '"mech":"PLAIN","session":"s4"}',
     "2026-11-21T10:00:04.000Z auth fail mallory [2001:db8::7]:25 mx smtp PLAIN tls-required "
     "session=s4"),
    "[1,2,3]",
    ('{"ts":"2026-11-21T10:00:05.000Z","event":"lockout","user":"bob@example.test",'
     '"until":"2026-11-21T11:00:00Z"}',
     "2026-11-21T10:00:05.000Z lockout bob@example.test until 2026-11-21T11:00:00Z"),
    ('{"ts":"2026-11-21T10:00:06.000Z","event":"admin","result":"ok","action":"user add",'
     '"target":"carol@example.test","actor":"root"}',
     "2026-11-21T10:00:06.000Z admin ok user add carol@example.test by root"),
    ('{"ts":"2026-11-21T10:00:07.000Z","event":"unblock","network":"127.0.0.0/24"}',
     "2026-11-21T10:00:07.000Z unblock 127.0.0.0/24"),
    # Terminal escapes, a bidi override and a C1 control from a peer print as '?'.
    ('{"ts":"2026-11-21T10:00:08.000Z","event":"auth","result":"fail",'
     '"reason":"mechanism-disabled","user":"evil\\u001b[2J\\u202e\\u0085x","ip":"198.51.100.9",'
     '"port":1,"listener":"mx","proto":"smtp","mech":"CRAM-MD5","session":"s5"}',
     "2026-11-21T10:00:08.000Z auth fail evil?[2J??x 198.51.100.9:1 mx smtp CRAM-MD5 "
     "mechanism-disabled session=s5"),
    '{"event":"auth","result":"fail"}',
    ('{"ts":"2026-11-21T10:00:09.000Z","event":"admin","action":"guard unblock",'
     '"target":"127.0.0.0/24","actor":"alice"}',
     "2026-11-21T10:00:09.000Z admin guard unblock 127.0.0.0/24 by alice"),
    # An IPv4-mapped IPv6 address is the IPv4 address for --ip.
    ('{"ts":"2026-11-21T10:00:10.000Z","event":"auth","result":"fail","reason":"unknown-user",'
     '"user":"bob@example.test","ip":"::ffff:127.0.0.2","port":4000,"listener":"mx",'
     '"proto":"smtp","mech":"LOGIN","session":"s6"}',
     "2026-11-21T10:00:10.000Z auth fail bob@example.test [::ffff:127.0.0.2]:4000 mx smtp "
     "LOGIN unknown-user session=s6"),
]
VALID = [e for e in EVENTS if isinstance(e, tuple)]
SKIPPED = "rampart: skipped 3 lines that are not valid audit JSON.\n"


def audit_text():
    return "".join((e[0] if isinstance(e, tuple) else e) + "\n" for e in EVENTS)


def model_matches(ev, user=None, ip=None, failures=False, event=None):
    """What the filters of rampart-log.h select, written independently."""
    if event is not None and ev["event"] != event:
        return False
    if failures and ev.get("result") != "fail" and ev["event"] not in ("block", "lockout"):
        return False
    if user is not None and (ev.get("user") is None or ev["user"].lower() != user.lower()):
        return False
    if ip is not None:
        want = ipaddress.ip_network(ip, strict=False)
        mapped = want.network_address.ipv4_mapped if want.version == 6 else None
        if mapped is not None and want.prefixlen >= 96:     # as netaddr.h normalises
            want = ipaddress.ip_network(f"{mapped}/{want.prefixlen - 96}")
        hit = False
        if "ip" in ev:
            a = ipaddress.ip_address(ev["ip"])
            if a.version == 6 and a.ipv4_mapped is not None:
                a = a.ipv4_mapped
            hit = a.version == want.version and a in want
        if not hit and "network" in ev:
            n = ipaddress.ip_network(ev["network"])
            hit = n.version == want.version and n.overlaps(want)
        if not hit:
            return False
    return True


@pytest.fixture
def inst(make_server):
    r = make_server(start=False)
    r.audit = r.state / "audit.log"
    r.audit.parent.mkdir(parents=True, exist_ok=True)
    r.audit.write_text(audit_text())
    return r


def log(r, *args):
    return r.cli("log", *args, check=False)


def expect(r, args, lines, stderr=SKIPPED, rc=0):
    res = log(r, *args)
    assert (res.returncode, res.stdout, res.stderr) == (rc, "".join(l + "\n" for l in lines), stderr), args


# ---------------------------------------------------------------- one-shot reading

def test_everything_human_and_json(inst):
    expect(inst, [], [e[1] for e in VALID])
    expect(inst, ["--json"], [e[0] for e in VALID])


def test_exact_filters(inst):
    """A few selections written out by hand (they anchor the model below)."""
    by_session = {json.loads(e[0]).get("session"): e[1] for e in VALID}
    expect(inst, ["--user", "Bob@Example.Test"],
           [VALID[1][1], VALID[2][1], VALID[5][1], VALID[10][1]])
    expect(inst, ["--ip", "127.0.0.2"],
           [by_session["s2"], VALID[3][1], VALID[7][1], by_session["s6"]])
    expect(inst, ["--ip=2001:db8::/32"], [by_session["s4"]])
    expect(inst, ["--ip", "10.0.0.0/8"], [])
    expect(inst, ["--event", "admin"], [VALID[6][1], VALID[9][1]])
    expect(inst, ["--failures", "--ip", "127.0.0.0/16", "--event", "block"], [VALID[3][1]])
    expect(inst, ["--failures"], [VALID[i][1] for i in (1, 2, 3, 4, 5, 8, 10)])


def test_every_filter_combination(inst):
    users = [None, "bob@EXAMPLE.test", "mallory", "nobody@example.test"]
    ips = [None, "127.0.0.0/24", "127.0.0.2", "127.0.0.1", "2001:db8::/32", "198.51.100.9", "::ffff:127.0.0.3"]
    events = [None, "auth", "block", "lockout", "admin"]
    parsed = [json.loads(e[0]) for e in VALID]
    for user, ip, failures, event in itertools.product(users, ips, [False, True], events):
        args = []
        if user is not None:
            args += ["--user", user]
        if ip is not None:
            args += ["--ip", ip]
        if failures:
            args.append("--failures")
        if event is not None:
            args += ["--event", event]
        want = [i for i, ev in enumerate(parsed) if model_matches(ev, user, ip, failures, event)]
        res = log(inst, *args, "--json")
        assert res.returncode == 0 and res.stderr == SKIPPED, args
        assert res.stdout == "".join(VALID[i][0] + "\n" for i in want), args
        if user is None and ip is None and not failures and event is None:
            assert len(want) == len(VALID)


def test_last_n(inst):
    expect(inst, ["-n", "3"], [e[1] for e in VALID[-3:]])
    expect(inst, ["-n1", "--json"], [VALID[-1][0]])
    expect(inst, ["-n", "0"], [])
    expect(inst, ["-n", "1000"], [e[1] for e in VALID])
    expect(inst, ["--failures", "-n", "2"], [VALID[8][1], VALID[10][1]])


def test_missing_file_and_partial_last_line(inst):
    inst.audit.unlink()
    expect(inst, [], [], stderr="")
    # A last line without its newline (a writer that died mid-line) is still a line.
    inst.audit.write_text(VALID[0][0] + "\n" + VALID[1][0])
    expect(inst, [], [VALID[0][1], VALID[1][1]], stderr="")
    # A line too long to be an event is skipped, not buffered without end.
    inst.audit.write_text("x" * (2 * 1024 * 1024) + "\n" + VALID[0][0] + "\n")
    expect(inst, [], [VALID[0][1]], stderr="rampart: skipped 1 line that is not valid audit JSON.\n")


def test_not_a_regular_file(inst):
    inst.audit.unlink()
    inst.audit.mkdir()
    res = log(inst)
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr == f"The audit log {inst.audit} is not a regular file.\n"


@pytest.mark.parametrize("args,message", [
    (["-n", "x"], "-n needs a number of lines, not 'x'"),
    (["-n", "-1"], "-n needs a number of lines, not '-1'"),
    (["-n"], "-n needs a value"),
    (["--user"], "--user needs a value"),
    (["--ip", "example.test"], "--ip example.test: "),
    (["--ip", "10.0.0.0/33"], "--ip 10.0.0.0/33: "),
    (["--bogus"], "'log' does not take the option --bogus"),
    (["--users", "x"], "'log' does not take the option --users"),
    (["bob"], "'log' takes no arguments, only options"),
])
def test_usage_errors(inst, args, message):
    res = log(inst, *args)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.startswith("rampart: " + message)
    assert res.stderr.endswith("; see 'rampart help'.\n")


# ---------------------------------------------------------------- --follow

class Follower:
    def __init__(self, r, *args):
        self.proc = subprocess.Popen([str(BUILD / "rampart"), "-c", str(r.config), "log", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.proc.stdout, selectors.EVENT_READ)
        self.buf = b""

    def lines(self, count, timeout=10):
        deadline = time.time() + timeout
        while self.buf.count(b"\n") < count and time.time() < deadline:
            if self.sel.select(timeout=max(0.0, deadline - time.time())):
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                self.buf += chunk
        got = self.buf.split(b"\n")
        assert len(got) - 1 >= count, f"wanted {count} lines, have {self.buf!r}"
        self.buf = b"\n".join(got[count:])
        return [l.decode() for l in got[:count]]

    def quiet(self, seconds=0.8):
        """Nothing more is printed for a while."""
        if self.sel.select(timeout=seconds):
            self.buf += os.read(self.proc.stdout.fileno(), 65536)
        assert self.buf == b""

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=10)
        assert out == b"" and self.buf == b""
        return self.proc.returncode, err.decode()


def append(path, *lines, newline=True):
    with open(path, "a") as f:
        f.write("".join(l + ("\n" if newline else "") for l in lines))


def test_follow_appends_rotation_truncation(inst):
    f = Follower(inst, "-f", "--failures")
    try:
        assert f.lines(7) == [VALID[i][1] for i in (1, 2, 3, 4, 5, 8, 10)]
        f.quiet()
        append(inst.audit, VALID[0][0], VALID[1][0], "garbage", VALID[3][0])
        assert f.lines(2) == [VALID[1][1], VALID[3][1]]

        # Rotation by rename: the writer's last lines in the old file still arrive,
        # then the new file is read from its start.
        rotated = inst.audit.with_name("audit.log.1")
        os.rename(inst.audit, rotated)
        append(rotated, VALID[2][0])
        assert f.lines(1) == [VALID[2][1]]
        append(inst.audit, VALID[0][0], VALID[4][0])
        assert f.lines(1) == [VALID[4][1]]
        append(rotated, VALID[5][0])           # a late writer, within the grace period
        assert f.lines(1) == [VALID[5][1]]

        # Truncated in place (copytruncate): start again from the top.
        time.sleep(0.5)
        with open(inst.audit, "w") as fh:
            fh.write(VALID[8][0] + "\n")
        assert f.lines(1) == [VALID[8][1]]

        # A line that arrives in two writes is printed once, whole.
        half = len(VALID[10][0]) // 2
        append(inst.audit, VALID[10][0][:half], newline=False)
        f.quiet()
        append(inst.audit, VALID[10][0][half:])
        assert f.lines(1) == [VALID[10][1]]

        # Removed, then created again.
        inst.audit.unlink()
        time.sleep(0.5)
        append(inst.audit, VALID[1][0])
        assert f.lines(1) == [VALID[1][1]]
        f.quiet()
    finally:
        rc, err = f.stop()
    assert rc == 0
    assert err == "rampart: skipped 4 lines that are not valid audit JSON.\n"


def test_follow_waits_for_the_file(inst):
    inst.audit.unlink()
    f = Follower(inst, "--follow", "--json", "--user", "alice@example.test")
    try:
        f.quiet()
        append(inst.audit, VALID[1][0], VALID[0][0])
        assert f.lines(1) == [VALID[0][0]]
    finally:
        rc, err = f.stop(signal.SIGINT)
    assert (rc, err) == (0, "")


def test_follow_with_last_n(inst):
    f = Follower(inst, "-f", "-n", "1", "--event", "auth")
    try:
        assert f.lines(1) == [VALID[-1][1]]
        f.quiet()
        append(inst.audit, VALID[3][0], VALID[0][0])
        assert f.lines(1) == [VALID[0][1]]
    finally:
        rc, err = f.stop()
    assert (rc, err) == (0, SKIPPED)


# ---------------------------------------------------------------- fail2ban

FILTER = SRCDIR / "contrib" / "fail2ban" / "filter.d" / "rampart.conf"

# (line, the address fail2ban must take from it, or None when it must not match)
F2B_SAMPLES = [
    # stderr form, exactly as tests/unit/test-audit.c has audit_log_failure_line write it
    ('2026-11-21T10:00:00.123Z rampartd/auth[1234]: warn: auth failure: ip=192.0.2.10 port=40312 '
     'user="bob@example.org" proto=smtp listener=submission mech=PLAIN reason=bad-credentials '
     'session=a1b2c3', "192.0.2.10"),
    # syslog(3) form (a syslog file, or the journal as fail2ban formats it)
    ('Nov 21 10:00:01 mx rampartd/auth[1234]: auth failure: ip=192.0.2.11 port=40313 '
     'user="alice@example.org" proto=smtp listener=submissions mech=LOGIN reason=unknown-user '
     'session=s2', "192.0.2.11"),
    # a hostile user name, as sanitised by audit_log_failure_line
    ('2026-11-21T10:00:02.456Z rampartd/auth[1234]: warn: auth failure: ip=192.0.2.12 port=25 '
     'user="x ip=9.9.9.9 ?????[1m???" proto=smtp? listener=mx? mech=PLAIN?ip?9.9.9.9 '
     'reason=unknown-user session=s?1', "192.0.2.12"),
    ('Nov 21 10:00:03 mx rampartd/auth[1234]: auth failure: ip=192.0.2.13 port=- '
     'user="auth failure: ip=9.9.9.9 port=1" proto=smtp listener=mx mech=PLAIN '
     'reason=bad-credentials session=s3', "192.0.2.13"),
    # missing values, IPv6
    ('Nov 21 10:00:04 mx rampartd/auth[1234]: auth failure: ip=2001:db8::7 port=- user=- '
     'proto=- listener=- mech=- reason=malformed session=-', "2001:db8::7"),
    # stderr of rampartd -d captured by the journal
    ('Nov 21 10:00:05 mx rampartd[1200]: 2026-11-21T10:00:05.000Z rampartd/auth[1234]: warn: '
     'auth failure: ip=192.0.2.14 port=2 user="" proto=smtp listener=mx mech=PLAIN '
     'reason=cancelled session=s4', "192.0.2.14"),
    # not from the auth process, or not a failure line: never a ban
    ('2026-11-21T10:00:06.000Z rampartd/front0[1235]: warn: auth failure: ip=9.9.9.1 port=1 '
     'user="x" proto=smtp listener=mx mech=PLAIN reason=bad-credentials session=x', None),
    ('Nov 21 10:00:07 mx rampartd/front0[1235]: unknown command: auth failure: ip=9.9.9.2 port=1 '
     'user="x" proto=smtp listener=mx mech=PLAIN reason=x session=x', None),
    ('Nov 21 10:00:08 mx rampartd[1200]: 2026-11-21T10:00:08.000Z rampartd/front0[1235]: warn: '
     'rampartd/auth[1]: auth failure: ip=9.9.9.3 port=1 user="x" proto=smtp listener=mx '
     'mech=PLAIN reason=x session=x', None),
    ('2026-11-21T10:00:09.000Z rampartd/auth[1234]: info: auth ok: ip=9.9.9.4', None),
    ('2026-11-21T10:00:10.000Z rampartd/auth[1234]: warn: auth failure: ip=- port=1 user="x" '
     'proto=smtp listener=mx mech=PLAIN reason=x session=x', None),
]


@pytest.mark.skipif(shutil.which("fail2ban-regex") is None, reason="fail2ban-regex is not installed")
def test_fail2ban_filter(tmp_path):
    sample = tmp_path / "mail.log"
    sample.write_text("".join(line + "\n" for line, _ in F2B_SAMPLES))
    r = subprocess.run(["fail2ban-regex", "-o", "ip", str(sample), str(FILTER)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [ip for _, ip in F2B_SAMPLES if ip is not None]
    # Each line alone: the address comes from that line and from nowhere else.
    for line, ip in F2B_SAMPLES:
        sample.write_text(line + "\n")
        r = subprocess.run(["fail2ban-regex", "-o", "ip", str(sample), str(FILTER)],
                           capture_output=True, text=True, timeout=60)
        assert r.stdout.split() == ([ip] if ip else []), line
