"""Integration-test harness: starts the real rampartd and gives tests handles on it.

Each test gets (through the `server` fixture) a fresh instance in a temporary
directory: its own configuration, self-signed certificate, SQLite directory with
the domain example.test and the users alice and bob, free loopback ports for an
mx, a submission (STARTTLS) and a submissions (implicit TLS) listener, and
rampartd -d running with its log captured. Tests drive it with real clients
(smtplib, swaks, openssl s_client) and look at the Maildirs it writes.
"""
import os
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

    def __init__(self, root: Path, tls_files, settings=None, workers=2):
        self.root = root
        self.cert, self.key = tls_files
        self.ports = {"mx": free_port(), "submission": free_port(), "submissions": free_port()}
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
        for k, v in (settings or {}).items():
            lines.append(f"{k} = {v}")
        for name, port in self.ports.items():
            lines.append(f'listener {name} {{ role = {name} address = "127.0.0.1" port = {port} }}')
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

    def make(settings=None, workers=2, start=True, name="srv"):
        root = tmp_path / f"{name}{len(made)}"
        root.mkdir()
        r = Rampart(root, tls_files, settings, workers)
        r.provision()
        if start:
            r.start()
        made.append(r)
        return r
    yield make
    for r in made:
        r.stop()
