"""Integration-test harness: starts the real rampartd and gives tests handles on it.

Each test gets (through the `server` fixture) a fresh instance in a temporary
directory: its own configuration, self-signed certificate, SQLite directory with
the domain example.test and the users alice and bob, free loopback ports for an
mx, a submission (STARTTLS) and a submissions (implicit TLS) listener, and
rampartd -d running with its log captured. Tests drive it with real clients
(smtplib, swaks, openssl s_client) and look at the Maildirs it writes.

Helpers for the AUTH tests: login() returns an smtplib client authenticated on a
submission listener, audit_events()/wait_audit() read the JSON-lines audit log.
"""
import base64
import json
import os
import smtplib
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

BUILD = Path(os.environ.get("RAMPART_BUILD", Path(__file__).resolve().parents[2] / "build"))
SRCDIR = Path(__file__).resolve().parents[2]
SHARED = SRCDIR.parent / "shared"
SANITIZED = os.environ.get("RAMPART_SANITIZED") == "1"


def closed_port():
    """A loopback TCP port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_cert(directory: Path):
    """A self-signed certificate for mx.example.test (and 127.0.0.1)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    if not cert.exists():
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
             "-out", str(cert), "-days", "30", "-subj", "/CN=mx.example.test",
             "-addext", "subjectAltName=DNS:mx.example.test,IP:127.0.0.1"],
            check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("tls"))


def client_tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Rampart:
    """One running rampartd and what it owns."""

    PASSWORDS = {"alice@example.test": "Correct-Horse-Battery-42x",
                 "bob@example.test": "Tr0ub4dor&3-Staple-Lamp"}

    def __init__(self, root: Path, tls_files, settings=None, workers=2, listener_options=None):
        self.root = root
        self.workers = workers
        self.cert, self.key = tls_files
        # Three distinct ports: the kernel may hand the same free port out twice.
        ports = []
        while len(ports) < 3:
            p = free_port()
            if p not in ports:
                ports.append(p)
        self.ports = dict(zip(("mx", "submission", "submissions"), ports))
        self.state = root / "state"
        self.mail = self.state / "mail"
        self.spool = self.state / "spool"
        self.config = root / "rampart.conf"
        self.logfile = root / "rampartd.log"
        lines = [
            'hostname = "mx.example.test"',
            f'state_dir = "{self.state}"',
            f'data_dir = "{SRCDIR / "data"}"',
            f'tls_cert = "{self.cert}"',
            f'tls_key = "{self.key}"',
            f"workers = {workers}",
            # Cheap hashes keep the tests fast; production defaults are in config-doc.
            "argon2_opslimit = 1",
            "argon2_memlimit = 8M",
            "queue_retry_min = 1s",
            "queue_retry_max = 2s",
            "shutdown_grace = 5s",
        ]
        settings = dict(settings or {})
        if not any(k.startswith("dns.") for k in settings):
            # No test reaches the network: mx mail is checked (SPF, DKIM, DMARC)
            # against an empty static zone unless a test brings its own DNS.
            zone = root / "empty.zone"
            zone.write_text("; no records: every name is NXDOMAIN\n")
            settings["dns.zone"] = f'"{zone}"'
        if not any(k.startswith("relay.") for k in settings):
            # Nor does relayed mail leave: it goes to a loopback port where nothing
            # listens, so it stays queued (deferred) unless a test brings its own sinks.
            settings["relay.host"] = '"127.0.0.1"'
            settings["relay.port"] = str(closed_port())
            settings["relay.tls"] = '"opportunistic"'
        for k, v in settings.items():
            lines.append(f"{k} = {v}")
        # listener_options: {"mx": {"deny": '"127.0.0.5/32"'}} adds settings to one listener.
        listener_options = listener_options or {}
        for name, port in self.ports.items():
            extra = "".join(f" {k} = {v}" for k, v in listener_options.get(name, {}).items())
            lines.append(f'listener {name} {{ role = {name} address = "127.0.0.1" port = {port}'
                         f'{extra} }}')
        self.config.write_text("\n".join(lines) + "\n")
        self.proc = None

    # -- the CLI --
    def cli(self, *args, input=None, check=True):
        r = subprocess.run([str(BUILD / "rampart"), "-c", str(self.config), *args],
                           input=input, capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"rampart {' '.join(args)} failed: {r.stderr}")
        return r

    def provision(self):
        self.cli("domain", "add", "example.test")
        for user, pw in self.PASSWORDS.items():
            self.cli("user", "add", user, "--password-stdin", input=pw + "\n")

    # -- the daemon --
    def start(self, *extra):
        self.log = open(self.logfile, "ab")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=66")
        self.proc = subprocess.Popen([str(BUILD / "rampartd"), "-d", "-c", str(self.config), *extra],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 20
        for port in self.ports.values():
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if self.proc.poll() is not None:
                        raise AssertionError("rampartd exited at start-up:\n" + self.log_text())
                    if time.time() > deadline:
                        raise AssertionError("rampartd did not start:\n" + self.log_text())
                    time.sleep(0.05)
        # The parent binds the listeners before its children exist: wait (best
        # effort; some tests start servers whose children are meant to fail) until
        # auth, queue and every front are running, so pids() and children() see them.
        fronts = self.workers or os.cpu_count() or 1
        while time.time() < deadline and self.proc.poll() is None:
            roles = list(self.children().values())
            if "auth" in roles and "queue" in roles and \
                    sum(r.startswith("front") for r in roles) >= fronts:
                break
            time.sleep(0.05)
        return self

    def stop(self, timeout=30):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("rampartd did not stop on SIGTERM:\n" + self.log_text())
        return self.proc.returncode

    def log_text(self):
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def children(self):
        """{pid: role} of rampartd's child processes (roles: auth, queue, front0, front1...)."""
        kids = {}
        if self.proc is None:
            return kids
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                with open(f"/proc/{d}/comm") as f:
                    comm = f.read().strip()
            except (OSError, IndexError, ValueError):
                continue
            if ppid == self.proc.pid and comm.startswith("rampartd-"):
                kids[int(d)] = comm[len("rampartd-"):]
        return kids

    def pids(self, role):
        """PIDs of the children of one role: "auth", "queue", or "front" (all fronts)."""
        return sorted(p for p, r in self.children().items()
                      if r == role or (role == "front" and r.startswith("front")))

    # -- mail --
    def maildir(self, user, domain="example.test"):
        return self.mail / domain / user / "Maildir"

    def messages(self, user, domain="example.test"):
        d = self.maildir(user, domain) / "new"
        if not d.exists():
            return []
        return sorted(d.iterdir())

    def wait_messages(self, user, count, timeout=15, domain="example.test"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            msgs = self.messages(user, domain)
            if len(msgs) >= count:
                return msgs
            time.sleep(0.05)
        raise AssertionError(f"{user}: expected {count} message(s), have "
                             f"{len(self.messages(user, domain))}\n" + self.log_text()[-4000:])

    def queue_empty(self, timeout=15):
        deadline = time.time() + timeout
        q = self.spool / "queue"
        while time.time() < deadline:
            if not q.exists() or not any(q.iterdir()):
                return True
            time.sleep(0.05)
        return False


@pytest.fixture
def server(tmp_path, tls_files):
    r = Rampart(tmp_path, tls_files)
    r.provision()
    r.start()
    yield r
    rc = r.stop()
    # A sanitizer finding makes the process exit non-zero: fail the test that caused it.
    assert rc == 0, "rampartd exited with %s:\n%s" % (rc, r.log_text()[-6000:])
    assert "ERROR: AddressSanitizer" not in r.log_text()
    assert "runtime error:" not in r.log_text()


@pytest.fixture
def make_server(tmp_path, tls_files):
    """For tests that need their own settings: make_server(settings={...})."""
    made = []

    def make(settings=None, workers=2, start=True, name="srv", listener_options=None):
        root = tmp_path / f"{name}{len(made)}"
        root.mkdir()
        r = Rampart(root, tls_files, settings, workers, listener_options)
        r.provision()
        if start:
            r.start()
        made.append(r)
        return r
    yield make
    for r in made:
        r.stop()


def assert_clean_exit(r):
    """Stops r and fails on a non-zero exit or a sanitizer report in its log."""
    if r.proc is None:
        return            # never started
    rc = r.stop()
    assert rc == 0, "rampartd exited with %s:\n%s" % (rc, r.log_text()[-6000:])
    assert "ERROR: AddressSanitizer" not in r.log_text()
    assert "runtime error:" not in r.log_text()


@pytest.fixture
def make_checked_server(make_server):
    """make_server whose servers must exit cleanly (status 0, no sanitizer report),
    like the `server` fixture's."""
    made = []

    def make(**kw):
        r = make_server(**kw)
        made.append(r)
        return r
    yield make
    for r in made:
        assert_clean_exit(r)


# ---- SMTP AUTH helpers ----

def auth_plain_b64(user, password, authzid=""):
    """The RFC 4616 PLAIN message, base64: authzid NUL authcid NUL passwd."""
    raw = authzid.encode() + b"\0" + user.encode() + b"\0" + password.encode()
    return base64.b64encode(raw).decode()


def smtp_client(r, listener="submission", source=None, timeout=10, tls=True,
                helo="client.example.net"):
    """An smtplib client on a listener after EHLO, inside TLS when tls is true
    (STARTTLS on submission and mx, implicit TLS on submissions); source binds the
    client to a loopback address such as 127.0.0.2."""
    src = (source, 0) if source else None
    if listener == "submissions":
        s = smtplib.SMTP_SSL("127.0.0.1", r.ports[listener], timeout=timeout,
                             context=client_tls_context(), source_address=src)
        s.ehlo(helo)
        return s
    s = smtplib.SMTP("127.0.0.1", r.ports[listener], timeout=timeout, source_address=src)
    s.ehlo(helo)
    if tls:
        code, text = s.starttls(context=client_tls_context())
        assert code == 220, text
        s.ehlo(helo)
    return s


def login(r, user="alice@example.test", listener="submission", mech="PLAIN", password=None,
          source=None, timeout=10, helo="client.example.net"):
    """An smtplib client authenticated as user (235 asserted) with exactly one AUTH
    command of the given mechanism (PLAIN or LOGIN): smtplib's login() would try a
    second mechanism after a failure."""
    s = smtp_client(r, listener, source=source, timeout=timeout, helo=helo)
    pw = Rampart.PASSWORDS[user] if password is None else password
    s.user, s.password = user, pw
    try:
        if mech == "PLAIN":
            code, text = s.auth("PLAIN", s.auth_plain)
        else:
            code, text = s.auth("LOGIN", s.auth_login)
    except smtplib.SMTPAuthenticationError as e:
        s.close()
        raise AssertionError(f"AUTH {mech} as {user} refused: {e.smtp_code} {e.smtp_error!r}")
    assert code == 235, (code, text)
    return s


def audit_path(r):
    return r.state / "audit.log"


def audit_events(r, event=None):
    """The audit log's JSON objects, in order (optionally only one event type)."""
    try:
        text = audit_path(r).read_text()
    except FileNotFoundError:
        return []
    out = [json.loads(ln) for ln in text.splitlines() if ln.strip()]
    return [e for e in out if event is None or e.get("event") == event]


def wait_audit(r, count, event="auth", pred=None, timeout=10):
    """Waits until the audit log has at least count events of the type that satisfy
    pred; returns all of them (the auth process writes after the front replied)."""
    deadline = time.time() + timeout
    while True:
        evs = [e for e in audit_events(r, event) if pred is None or pred(e)]
        if len(evs) >= count or time.time() > deadline:
            return evs
        time.sleep(0.05)
