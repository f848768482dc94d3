"""A password-guessing attack on Rampart's submission listeners, for test_guard.py.

Attackers bind 127.0.0.2, 127.0.0.3, ... as their source address, speak SMTP
over implicit TLS (the `submissions` listener) or STARTTLS (`submission`), and
send AUTH PLAIN or AUTH LOGIN with a new wrong password each time (except the
"stuffers", which repeat one password: the guard counts that failure once, so
only the attempt budget stops them). Every AUTH that gets an answer is one
Attempt, recorded client-side with the source address and port, the listener,
mechanism, user, reply code and how long the answer took: the test holds the
audit log to exactly these. Meanwhile the legitimate user logs in from
127.0.0.1 on fresh connections and every login is timed.

Only the standard library is used; one thread per attacker (the sockets block,
the GIL is released while they wait). The attack runs in its own process
(`python3 guard_attack.py`, driven by AttackProcess) so that the attackers'
threads do not hold the GIL while the legitimate user's logins are timed:

    stdin:  one JSON line {"ports": {...}, "attackers": [{...}], "max_failures": N},
            later "stop" (or EOF)
    stdout: "progress N" every 0.25 s, then one "result {JSON}" line
"""
import base64
import calendar
import dataclasses
import itertools
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time

HOST = "127.0.0.1"
# Distinctive passwords: grep finds them in logs, files and core dumps.
ATTACK_PW = "Attack-Pw-{n}-zq"
ATTACK_PW_RE = re.compile(rb"Attack-Pw-[0-9A-Za-z]+-zq")
ATTACK_PW_PREFIX = b"Attack-Pw-"


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Closed(Exception):
    """The server closed the connection (or it broke) before a full reply."""


@dataclasses.dataclass
class Attempt:
    ip: str
    port: int             # client's source port: the audit line's "port"
    listener: str         # "submission" or "submissions"
    mech: str             # "PLAIN" or "LOGIN"
    user: str
    code: int             # 235, 535, 454 (or 0: no answer)
    seconds: float        # AUTH sent -> final answer
    sent_at: float        # time.time() when AUTH was sent
    tls: str = ""
    b64: tuple = ()       # base64 strings sent that carry the password (leak search)
    conn: str = ""        # which connection (unique across processes)


def plain_response(user, password):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()


class Conn:
    """One SMTP session from a chosen source address, TLS up before AUTH."""

    serial = itertools.count(1)

    def __init__(self, ports, listener, source_ip, timeout=20.0, ctx=None):
        self.id = f"{os.getpid()}.{next(Conn.serial)}"
        self.listener = listener
        self.source_ip = source_ip
        self.timeout = timeout
        self.buf = b""
        self.failures = 0
        t0 = time.monotonic()
        self.sock = socket.create_connection((HOST, ports[listener]), timeout=timeout,
                                             source_address=(source_ip, 0))
        self.port = self.sock.getsockname()[1]
        self.t_tcp = time.monotonic() - t0
        ctx = ctx or tls_context()
        try:
            if listener == "submissions":
                self.sock = ctx.wrap_socket(self.sock, server_hostname="mx.example.test")
                self.expect(220)
                self.command("EHLO attacker.example.net", 250)
            else:
                self.expect(220)
                self.command("EHLO attacker.example.net", 250)
                self.command("STARTTLS", 220)
                self.buf = b""
                self.sock = ctx.wrap_socket(self.sock, server_hostname="mx.example.test")
                self.command("EHLO attacker.example.net", 250)
        except BaseException:
            self.close()
            raise
        self.tls = self.sock.version()
        self.t_setup = time.monotonic() - t0     # TCP, greeting, EHLO, TLS, EHLO

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, line):
        try:
            self.sock.sendall(line.encode() + b"\r\n")
        except (OSError, ssl.SSLError) as e:
            raise Closed(str(e)) from e

    def line(self):
        while b"\r\n" not in self.buf:
            try:
                data = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError) as e:
                raise Closed(str(e)) from e
            except socket.timeout as e:
                raise Closed("timeout waiting for a reply") from e
            if not data:
                raise Closed("connection closed")
            self.buf += data
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln.decode("utf-8", "replace")

    def reply(self):
        """(code, [texts]) of one possibly multi-line reply."""
        texts = []
        while True:
            ln = self.line()
            if len(ln) < 3 or not ln[:3].isdigit():
                raise AssertionError(f"malformed reply line {ln!r}")
            texts.append(ln[4:])
            if len(ln) == 3 or ln[3] == " ":
                return int(ln[:3]), texts

    def expect(self, code):
        got, texts = self.reply()
        if got != code:
            raise AssertionError(f"expected {code}, got {got} {texts}")
        return texts

    def command(self, line, code):
        self.send(line)
        return self.expect(code)

    def auth(self, mech, user, password):
        """One AUTH exchange: (final code, seconds from AUTH to answer, the base64
        strings sent that carry the password)."""
        t0 = time.monotonic()
        if mech == "PLAIN":
            resp = plain_response(user, password)
            self.send("AUTH PLAIN " + resp)
            sent = (resp,)
            code, _ = self.reply()
        else:
            u = base64.b64encode(user.encode()).decode()
            p = base64.b64encode(password.encode()).decode()
            sent = (p,)
            self.send("AUTH LOGIN")
            code, _ = self.reply()
            if code == 334:
                self.send(u)
                code, _ = self.reply()
                if code == 334:
                    self.send(p)
                    code, _ = self.reply()
        return code, time.monotonic() - t0, sent

    def quit(self):
        try:
            self.send("QUIT")
            self.reply()
        except (Closed, AssertionError):
            pass
        self.close()


class Tally:
    """Thread-safe record of the attempts and of what went wrong."""

    def __init__(self):
        self.lock = threading.Lock()
        self.attempts = []
        self.closes_421 = 0
        self.errors = []          # connections that broke other than by 421

    def add(self, a):
        with self.lock:
            self.attempts.append(a)
            return len(self.attempts)

    def count(self):
        with self.lock:
            return len(self.attempts)


@dataclasses.dataclass
class Attacker:
    ip: str
    listener: str
    mech: str
    targets: list
    stuffer: bool = False     # repeats one password


class Attack:
    """Runs attackers until stop(); each attacker is one thread, one connection at
    a time (reconnecting after 421 or a close)."""

    def __init__(self, ports, attackers, max_failures, tally=None):
        self.ports = ports
        self.attackers = attackers
        self.max_failures = max_failures
        self.tally = tally or Tally()
        self.stop_event = threading.Event()
        self.threads = []
        self.counter = 0
        self.counter_lock = threading.Lock()

    def next_n(self):
        with self.counter_lock:
            self.counter += 1
            return self.counter

    def start(self, ramp=1.0):
        """Starts the attackers spread over `ramp` seconds, as a botnet ramps up
        (and so that this process's own burst of handshakes does not starve the
        machine: it has two cores in CI)."""
        for i, a in enumerate(self.attackers):
            if i > 0:
                time.sleep(ramp / len(self.attackers))
            t = threading.Thread(target=self.run, args=(a,), daemon=True)
            t.start()
            self.threads.append(t)

    def stop(self, timeout=30):
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout)
        return not any(t.is_alive() for t in self.threads)

    def run(self, a):
        ctx = tls_context()
        k = 0
        conn = None
        stuff_pw = ATTACK_PW.format(n=f"stuff{a.ip.replace('.', '')}")
        while not self.stop_event.is_set():
            if conn is None:
                try:
                    conn = Conn(self.ports, a.listener, a.ip, ctx=ctx)
                except (Closed, OSError, AssertionError) as e:
                    with self.tally.lock:
                        self.tally.errors.append(f"{a.ip}: connect: {e}")
                    time.sleep(0.2)
                    continue
            user = a.targets[k % len(a.targets)]
            k += 1
            pw = stuff_pw if a.stuffer else ATTACK_PW.format(n=self.next_n())
            sent_at = time.time()
            try:
                code, secs, b64 = conn.auth(a.mech, user, pw)
            except (Closed, AssertionError) as e:
                # No answer: the attempt is recorded with code 0 so the test
                # can tell (it expects none of these).
                self.tally.add(Attempt(a.ip, conn.port, a.listener, a.mech, user, 0, 0.0,
                                       sent_at, conn.tls, conn=conn.id))
                with self.tally.lock:
                    self.tally.errors.append(f"{a.ip}:{conn.port}: {e}")
                conn.close()
                conn = None
                continue
            self.tally.add(Attempt(a.ip, conn.port, a.listener, a.mech, user, code, secs,
                                   sent_at, conn.tls, b64, conn.id))
            if code == 535:
                conn.failures += 1
                if conn.failures >= self.max_failures:
                    # smtp-auth.c: 535 then 421 4.7.0 and close.
                    try:
                        c, _ = conn.reply()
                    except Closed:
                        c = 0
                    with self.tally.lock:
                        if c == 421:
                            self.tally.closes_421 += 1
                        else:
                            self.tally.errors.append(f"{a.ip}:{conn.port}: expected 421, got {c}")
                    conn.close()
                    conn = None
            elif code not in (454,):
                with self.tally.lock:
                    self.tally.errors.append(f"{a.ip}:{conn.port}: unexpected {code} to AUTH")
                conn.close()
                conn = None
        if conn is not None:
            conn.quit()


class Legit:
    """The real user logging in every `interval` seconds on fresh connections from
    127.0.0.1, alternating listeners and mechanisms. Each login: Attempt + the time
    from connect to 235."""

    def __init__(self, ports, user, password, interval=0.1, tally=None):
        self.ports = ports
        self.user = user
        self.password = password
        self.interval = interval
        self.tally = tally or Tally()
        self.logins = []          # (Attempt, seconds connect -> answer)
        self.phases = []          # (TCP connect, whole set-up, AUTH) seconds per login
        self.failures = []        # descriptions of logins that did not get 235
        self.stop_event = threading.Event()
        self.thread = None

    def login_once(self, i):
        listener = "submissions" if i % 2 == 0 else "submission"
        mech = "PLAIN" if i % 4 < 2 else "LOGIN"
        t0 = time.monotonic()
        try:
            conn = Conn(self.ports, listener, HOST)
        except (Closed, OSError, AssertionError) as e:
            self.failures.append(f"login {i}: connect over {listener}: {e}")
            return
        sent_at = time.time()
        try:
            code, secs, b64 = conn.auth(mech, self.user, self.password)
        except (Closed, AssertionError) as e:
            self.tally.add(Attempt(HOST, conn.port, listener, mech, self.user, 0, 0.0, sent_at,
                                   conn.tls, conn=conn.id))
            self.failures.append(f"login {i}: {listener} {mech}: {e}")
            conn.close()
            return
        total = time.monotonic() - t0
        self.phases.append((conn.t_tcp, conn.t_setup, secs))
        a = Attempt(HOST, conn.port, listener, mech, self.user, code, secs, sent_at, conn.tls, b64,
                    conn.id)
        self.tally.add(a)
        self.logins.append((a, total))
        if code != 235:
            self.failures.append(f"login {i}: {listener} {mech} port {conn.port}: {code}")
        conn.quit()

    def run(self):
        i = 0
        while not self.stop_event.is_set():
            self.login_once(i)
            i += 1
            self.stop_event.wait(self.interval)

    def start(self):
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def stop(self):
        self.stop_event.set()
        self.thread.join(30)


BLOCK_LINE = re.compile(r"^(\S+) until (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) level (\d+)$")


def guard_list(server):
    """{network: (until as Unix seconds, level)} from `rampart guard list`."""
    out = {}
    r = server.cli("guard", "list")
    for ln in r.stdout.splitlines():
        m = BLOCK_LINE.match(ln)
        assert m, f"unexpected `rampart guard list` line {ln!r}"
        until = calendar.timegm(time.strptime(m.group(2), "%Y-%m-%dT%H:%M:%SZ"))
        out[m.group(1)] = (until, int(m.group(3)))
    return out


class BlockWatcher:
    """Polls `rampart guard list` while the attack runs; keeps every network seen."""

    def __init__(self, server, interval=0.5):
        self.server = server
        self.interval = interval
        self.seen = {}            # network -> highest level seen
        self.polls = 0
        self.errors = []
        self.stop_event = threading.Event()
        self.thread = None

    def run(self):
        while not self.stop_event.is_set():
            try:
                for net, (_, level) in guard_list(self.server).items():
                    self.seen[net] = max(level, self.seen.get(net, 0))
                self.polls += 1
            except (AssertionError, subprocess.SubprocessError) as e:
                self.errors.append(str(e))
            self.stop_event.wait(self.interval)

    def start(self):
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def stop(self):
        self.stop_event.set()
        self.thread.join(60)


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


class AttackProcess:
    """Runs an Attack in a child process (this file as a script); stop() returns
    its Tally."""

    def __init__(self, ports, attackers, max_failures):
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.progress = 0
        self.result = None
        self.done = threading.Event()
        cfg = {"ports": ports, "max_failures": max_failures,
               "attackers": [dataclasses.asdict(a) for a in attackers]}
        self.proc.stdin.write(json.dumps(cfg) + "\n")
        self.proc.stdin.flush()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for ln in self.proc.stdout:
            if ln.startswith("progress "):
                self.progress = int(ln.split()[1])
            elif ln.startswith("result "):
                self.result = json.loads(ln[len("result "):])
        self.done.set()

    def stop(self, timeout=60):
        try:
            self.proc.stdin.write("stop\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.done.wait(timeout)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.result is None:
            raise AssertionError(f"the attack process gave no result (exit {self.proc.returncode})")
        t = Tally()
        t.attempts = [Attempt(**{**a, "b64": tuple(a["b64"])}) for a in self.result["attempts"]]
        t.closes_421 = self.result["closes_421"]
        t.errors = self.result["errors"]
        return t


def main():
    cfg = json.loads(sys.stdin.readline())
    attack = Attack(cfg["ports"], [Attacker(**a) for a in cfg["attackers"]], cfg["max_failures"])
    finished = threading.Event()

    def report():
        while not finished.wait(0.25):
            print(f"progress {attack.tally.count()}", flush=True)

    threading.Thread(target=report, daemon=True).start()
    attack.start()
    sys.stdin.readline()          # "stop", or EOF when the test went away
    stopped = attack.stop()
    finished.set()
    t = attack.tally
    if not stopped:
        t.errors.append("attacker threads did not finish within 30 s")
    with t.lock:
        out = {"attempts": [dataclasses.asdict(a) for a in t.attempts],
               "closes_421": t.closes_421, "errors": t.errors}
    print("result " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
