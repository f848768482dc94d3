#!/usr/bin/python3
"""bench/relay — relayed messages per second end to end: submission with AUTH over
TLS -> DKIM signing -> delivery over TLS to a receiving sink; Rampart, and Postfix
+ OpenDKIM + Dovecot on the same workload where they are installed.

What it does (everything on 127.0.0.1, in a temporary directory, stops by itself):
  1. starts a receiving sink (bench/lib/tlssink.py: STARTTLS, PIPELINING, counts
     every message, whether it carried a DKIM-Signature and came over TLS);
  2. starts its own rampartd: a submission listener (STARTTLS + AUTH, production
     Argon2id password), a DKIM key for example.test (rsa-2048, or several
     selectors with --selectors), relay.host = the sink with relay.tls = required;
     and, where installed and run as root, Postfix with OpenDKIM as milter and
     Dovecot for SASL (bench/lib/postfix_relay.py), relaying to the same sink;
  3. load: SESSIONS concurrent connections, each STARTTLS, EHLO, AUTH PLAIN once,
     then PER_CONN messages (2 KiB) from alice@example.test to a remote recipient
     (perf-baseline.md's submission workload (ii): K=20, 100 messages/connection).
     One unreported warm-up run per server, then RUNS measured runs alternating
     servers. "accepted" = messages / time until the load generator finished
     (every 250 came after the message was durable); "e2e" = messages / time until
     the sink had counted every one of them;
  4. checks every run: all messages at the sink, all signed, all over TLS, and the
     first message's signature verified with dkimpy against the published key;
  5. prints median [min..max] per server and the target: Rampart's e2e rate with
     signing >= Postfix's with signing (OpenDKIM), same run.
See bench/relay/README.md.
"""
import argparse
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))
import loadgen          # noqa: E402
from benchutil import BenchError, RampartDaemon, count_files, cpu_busy, free_port, log   # noqa: E402
import postfix_relay    # noqa: E402
import procmem          # noqa: E402
from tlssink import TlsSink   # noqa: E402

SRCDIR = HERE.parent.parent
HOST = "127.0.0.1"
USER = "alice@example.test"
PASSWORD = "Bench-Mark-Horse-Staple-91"
RCPT = "someone@remote.test"

# perf-baseline.md: Postfix submission, SHA512-CRYPT, K=20, 100 messages per
# connection, relay to smtp-sink in plain text, no signing. Indicative only.
BASELINE_E2E = 837


def txt_p(rdata):
    """The p= of a key record given as zone-file TXT rdata or plain text."""
    text = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', rdata)) or rdata
    m = re.search(r"p=([A-Za-z0-9+/=\s]+)", text)
    return re.sub(r"\s", "", m.group(1)) if m else ""


def dkim_check(path, keys):
    """dkimpy's verdict on every DKIM-Signature of the message in path, with keys
    {selector: (k, p)}; a list of (selector, ok) or a string saying why not."""
    try:
        import dkim
    except ImportError:
        return "dkimpy not installed (apt-get install python3-dkim)"
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        return f"no message saved ({e})"

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        sel = name.split(".", 1)[0]
        if sel not in keys:
            return None
        k, p = keys[sel]
        return f"v=DKIM1; k={k}; p={p}".encode()
    d = dkim.DKIM(data)
    out = []
    n = len([h for h in d.headers if h[0].lower() == b"dkim-signature"])
    for i in range(n):
        sel = re.search(rb"\bs=([^;\s]+)", [h for h in d.headers
                                             if h[0].lower() == b"dkim-signature"][i][1])
        try:
            ok = d.verify(idx=i, dnsfunc=dnsfunc)
        except Exception:                    # dkimpy raises on key errors
            ok = False
        out.append((sel.group(1).decode() if sel else "?", bool(ok)))
    return out


# ------------------------------------------------------------------ servers

class Rampart(RampartDaemon):
    name = "rampart"

    def __init__(self, root, build, cert, key, workers, sink_port, selectors):
        self.root, self.build = root, build
        self.state = root / "state"
        self.spool = self.state / "spool"
        self.config = root / "rampart.conf"
        self.logfile = root / "rampartd.log"
        self.selectors = selectors
        self.keys = {}
        self.proc = None
        root.mkdir(parents=True, exist_ok=True)
        self.cert, self.key, self.workers, self.sink_port = cert, key, workers, sink_port
        self.write_config()

    def write_config(self):
        """With a port free now: one picked long before may have become some
        client's ephemeral port meanwhile (the runs make many connections)."""
        self.port = free_port()
        self.config.write_text("\n".join([
            'hostname = "bench.localdomain"',
            f'state_dir = "{self.state}"',
            f'data_dir = "{SRCDIR / "data"}"',
            f'tls_cert = "{self.cert}"',
            f'tls_key = "{self.key}"',
            f"workers = {self.workers}",
            "max_connections_per_ip = 5000",
            "shutdown_grace = 2s",
            f'listener submission {{ role = submission address = "{HOST}" port = {self.port} '
            f'max_connections = 5000 }}',
            f'relay.host = "{HOST}"',
            f"relay.port = {self.sink_port}",
            'relay.tls = "required"',
            "relay.mta_sts = false",
        ]) + "\n")

    @property
    def label(self):
        return "rampart " + "+".join(self.selectors)

    def provision(self):
        self.cli("domain", "add", "example.test")
        self.cli("user", "add", USER, "--password-stdin", input=PASSWORD + "\n")
        for kind in self.selectors:
            out = self.cli("dkim", "keygen", "example.test", "--type", kind)
            m = re.search(r"^(\S+)\._domainkey\.example\.test\.\s+IN\s+TXT\s+(.*)$", out, re.M)
            if not m:
                raise BenchError(f"no key record in the output of dkim keygen: {out[:300]}")
            self.keys[m.group(1)] = (kind, txt_p(m.group(2)))

    def start(self):
        self.write_config()
        since = self.spawn()
        want = f"{len(self.selectors)} DKIM selector(s) sign"
        deadline = time.time() + 30
        while want not in self.logfile.read_text(errors="replace")[since:]:
            if self.proc.poll() is not None or time.time() > deadline:
                raise BenchError(f"rampartd did not start signing: {self.log_tail(1500)}")
            time.sleep(0.05)
        socket.create_connection((HOST, self.port), timeout=5).close()

    def cpu(self):
        return procmem.cpu_seconds(self.proc.pid)

    def queue_empty(self):
        return count_files(self.spool / "queue") == 0 and count_files(self.spool / "incoming") == 0

class PostfixStack:
    """Postfix + OpenDKIM + Dovecot, measured together."""
    name = "postfix"

    def __init__(self, root, cert, key, sink_port, hash_scheme, tls_reuse):
        self.dovecot = postfix_relay.Dovecot(root / "dovecot", USER, PASSWORD, hash_scheme)
        self.opendkim = postfix_relay.OpenDkim(root / "opendkim", free_port())
        self.postfix = postfix_relay.PostfixRelay(root / "postfix", free_port(), cert, key,
                                                  sink_port, self.dovecot, self.opendkim.port,
                                                  tls_reuse)
        self.port = self.postfix.port
        self.keys = {self.opendkim.selector: ("rsa", self.opendkim.public_key_b64())}
        self.label = "postfix+opendkim" + (" (tls reuse)" if tls_reuse else "")
        self.hash_scheme = hash_scheme

    def start(self):
        # Ports picked now: older ones may have become clients' ephemeral ports.
        self.opendkim.port = self.postfix.milter_port = free_port()
        self.opendkim.write_conf()
        self.port = self.postfix.port = free_port()
        self.dovecot.start()
        self.opendkim.start()
        self.postfix.configure()
        self.postfix.start()

    def stop(self):
        self.postfix.stop()
        self.opendkim.stop()
        self.dovecot.stop()

    def version(self):
        r = subprocess.run(["postconf", "-d", "-h", "mail_version"], capture_output=True, text=True)
        d = subprocess.run(["dovecot", "--version"], capture_output=True, text=True)
        o = subprocess.run(["opendkim", "-V"], capture_output=True, text=True)
        ov = (o.stdout.splitlines() or ["opendkim"])[0].strip()
        return (f"postfix {r.stdout.strip()}, {ov}, dovecot {d.stdout.split()[0] if d.stdout else '?'}"
                f" ({self.hash_scheme})")

    def alive(self):
        pm = self.postfix.master_pid
        return bool(pm) and pm in procmem.tree(pm) and self.opendkim.proc.poll() is None

    def cpu(self):
        return (procmem.cpu_seconds(self.postfix.master_pid)
                + procmem.cpu_seconds(self.dovecot.master_pid)
                + procmem.cpu_seconds(self.opendkim.proc.pid))

    def queue_empty(self):
        return self.postfix.queue_empty()

    def log_tail(self, n=2000):
        return (self.postfix.log_tail(n) + "\n--- opendkim\n" + self.opendkim.log_tail(n // 2)
                + "\n--- dovecot\n" + self.dovecot.log_tail(n // 2))


# ------------------------------------------------------------------ one run

def prime(srv):
    """One login and message first, as a user who has logged in before: a fresh
    Rampart treats 127.0.0.1 as unfamiliar for alice (issue 3's guard), and 20 new
    logins from an unfamiliar address at once are partly refused with 454 4.7.0."""
    ok, failed, _ = loadgen.run(HOST, srv.port, 1, 1, 256, USER, RCPT, reuse=True, procs=1,
                                starttls=True, auth=(USER, PASSWORD))
    if ok != 1:
        raise BenchError(f"{srv.label}: the first login and message failed: {srv.log_tail(1500)}")


def one_run(args, srv, sink, n, save):
    deadline = time.time() + 60
    while not srv.queue_empty() and time.time() < deadline:
        time.sleep(0.05)
    try:
        save.unlink()
    except FileNotFoundError:
        pass
    sink.counters.reset()
    os.sync()                 # one run's write-back must not land in the next
    time.sleep(0.5)
    cpu0, busy0, sink0 = srv.cpu(), cpu_busy(), sum(procmem.cpu_seconds(p) for p in sink.pids())
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    ok, failed, secs = loadgen.run(HOST, srv.port, args.sessions, n, args.size, USER, RCPT,
                                   reuse=True, starttls=True, auth=(USER, PASSWORD),
                                   per_conn=args.per_conn)
    problems = f"{failed} failed session(s); " if failed else ""
    last, last_change = -1, time.monotonic()
    while sink.messages < ok:
        now = time.monotonic()
        if sink.messages != last:
            last, last_change = sink.messages, now
        elif now - last_change > 15:
            problems += f"only {sink.messages} of {ok} accepted reached the sink; "
            break
        time.sleep(0.005)
    e2e = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    got = sink.messages
    cpu1, busy1 = srv.cpu(), cpu_busy()
    sink_cpu = sum(procmem.cpu_seconds(p) for p in sink.pids()) - sink0
    if not srv.alive():
        raise BenchError(f"{srv.label} died during the run: {srv.log_tail(1500)}")
    if sink.signed != got:
        problems += f"{got - sink.signed} of {got} arrived unsigned; "
    if sink.over_tls != got:
        problems += f"{got - sink.over_tls} of {got} arrived without TLS; "
    check = dkim_check(save, srv.keys)
    if isinstance(check, str):
        problems += f"signature not checked: {check}; "
        verified = "?"
    else:
        bad = [s for s, good in check if not good]
        if not check or bad:
            problems += f"dkimpy failed selector(s) {bad or 'none present'}; "
        verified = ",".join(f"{s}:{'pass' if good else 'FAIL'}" for s, good in check)
    return {
        "accepted": ok / secs if secs else 0.0,
        "e2e": got / e2e,
        "cpu_ms": (cpu1 - cpu0) * 1000 / max(1, got),
        "client_cpu": (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
        "sink_cpu": sink_cpu,
        "busy": 100.0 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]),
        "delivered": got,
        "verified": verified,
        "problems": problems.strip("; "),
    }


def fmt_runs(values, digits=0):
    return (f"{statistics.median(values):.{digits}f} "
            f"[{min(values):.{digits}f}..{max(values):.{digits}f}]")


def install_missing():
    need = [pkg for prog, pkg in (("postfix", "postfix"), ("dovecot", "dovecot-core"),
                                  ("opendkim", "opendkim"))
            if shutil.which(prog) is None and not Path("/usr/sbin", prog).exists()]
    if not need:
        return
    log(f"installing {' '.join(need)} with apt-get (nothing is started; private instances only)")
    subprocess.run("echo 'postfix postfix/main_mailer_type select No configuration' | "
                   "debconf-set-selections", shell=True, check=False)
    subprocess.run(["apt-get", "install", "-y", *need], check=True, stdout=subprocess.DEVNULL,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def main():
    ap = argparse.ArgumentParser(description="Relayed messages/s: submission with AUTH over "
                                 "TLS, DKIM signing, delivery over TLS; Rampart and Postfix.")
    ap.add_argument("--build", type=Path,
                    default=Path(os.environ.get("RAMPART_BUILD", SRCDIR / "build")),
                    help="build directory with rampartd and rampart (default: ../../build)")
    ap.add_argument("--runs", type=int, default=3, help="measured runs per server (3)")
    ap.add_argument("--messages", type=int, default=6000, help="messages per run (6000)")
    ap.add_argument("--warmup", type=int, default=1000, help="messages in the warm-up (1000)")
    ap.add_argument("--sessions", type=int, default=20, help="concurrent connections (20)")
    ap.add_argument("--per-conn", type=int, default=100,
                    help="messages per connection, one AUTH each (100)")
    ap.add_argument("--size", type=int, default=2048, help="body length in octets (2048)")
    ap.add_argument("--selectors", default="rsa",
                    help="Rampart's DKIM keys, comma-separated: rsa (as OpenDKIM), "
                    "ed25519,rsa (both signatures) ... (rsa)")
    ap.add_argument("--also-selectors", default="ed25519,rsa",
                    help="a second Rampart configuration measured beside it; '' = none "
                    "(ed25519,rsa)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="rampartd front processes (default: CPU cores)")
    ap.add_argument("--postfix-hash", default="SHA512-CRYPT", choices=("SHA512-CRYPT", "ARGON2ID"),
                    help="Dovecot's password scheme (SHA512-CRYPT: Postfix's best figure)")
    ap.add_argument("--postfix-tls-reuse", action="store_true",
                    help="Postfix with smtp_tls_connection_reuse = yes (not its default)")
    ap.add_argument("--sink-procs", type=int, default=2, help="sink processes (2)")
    ap.add_argument("--no-postfix", action="store_true", help="do not run Postfix")
    ap.add_argument("--install", action="store_true",
                    help="apt-get install postfix, dovecot-core and opendkim where missing")
    ap.add_argument("--time-limit", type=int, default=1200,
                    help="the whole benchmark is stopped after this many seconds (1200)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()

    if args.install and not args.no_postfix:
        install_missing()
    for prog in ("rampartd", "rampart"):
        if not (args.build / prog).exists():
            sys.exit(f"{args.build / prog} not found: build first (ninja -C build) or pass --build")

    def on_alarm(*_):
        raise BenchError(f"time limit of {args.time_limit}s reached")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(args.time_limit)

    tmp = Path(tempfile.mkdtemp(prefix="rampart-relay-", dir="/var/tmp"))
    os.chmod(tmp, 0o755)
    servers, sink, postfix_skip = [], None, None
    started = time.monotonic()
    results = {}
    try:
        cert, key = tmp / "cert.pem", tmp / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        str(key), "-out", str(cert), "-days", "7", "-subj", "/CN=bench.localdomain",
                        "-addext", "subjectAltName=DNS:bench.localdomain,IP:127.0.0.1"],
                       check=True, capture_output=True)
        save = tmp / "first-message.eml"
        sink = TlsSink(HOST, free_port(), str(cert), str(key), args.sink_procs, save=str(save))
        log(f"sink on {HOST}:{sink.port} ({args.sink_procs} processes)")

        configs = [args.selectors] + ([args.also_selectors] if args.also_selectors else [])
        for i, sel in enumerate(configs):
            ram = Rampart(tmp / f"rampart{i}", args.build.resolve(), cert, key, args.workers,
                          sink.port, [s.strip() for s in sel.split(",") if s.strip()])
            ram.provision()
            servers.append(ram)

        postfix_skip = "--no-postfix was given" if args.no_postfix else postfix_relay.available()
        if postfix_skip is None:
            pfx = PostfixStack(tmp / "postfix", cert, key, sink.port, args.postfix_hash,
                               args.postfix_tls_reuse)
            try:
                pfx.start()
                pfx.stop()        # started once to fail early; runs start it again
                servers.append(pfx)
            except (postfix_relay.PostfixError, OSError, subprocess.SubprocessError) as e:
                postfix_skip = f"setting up Postfix + OpenDKIM + Dovecot failed: {e}"
                pfx.stop()

        # One server runs at a time (the others are stopped), so none takes CPU from it.
        for srv in servers:
            srv.start()
            prime(srv)
            log(f"warm-up: {srv.label}, {args.warmup} messages")
            r = one_run(args, srv, sink, args.warmup, save)
            srv.stop()
            if r["problems"]:
                raise BenchError(f"{srv.label} failed its warm-up: {r['problems']}; "
                                 f"log: {srv.log_tail(1500)}")
        versions = {}
        for i in range(args.runs):
            for srv in servers:
                srv.start()
                prime(srv)
                versions[srv.label] = srv.version()
                r = one_run(args, srv, sink, args.messages, save)
                srv.stop()
                results.setdefault(srv.label, []).append(r)
                log(f"run {i + 1}/{args.runs} {srv.label}: accepted {r['accepted']:.0f}/s, e2e "
                    f"{r['e2e']:.0f}/s, {r['cpu_ms']:.2f} ms CPU/msg, busy {r['busy']:.0f}%, "
                    f"dkim {r['verified']}" + (f"  ({r['problems']})" if r["problems"] else ""))
        signal.alarm(0)
    except BenchError as e:
        log(f"benchmark aborted: {e}")
        raise SystemExit(2)
    finally:
        for srv in servers:
            srv.stop()
        if sink is not None:
            sink.stop()
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print()
    print("Relay throughput: submission (STARTTLS + AUTH PLAIN) -> DKIM -> relay over TLS to a sink")
    for label, v in versions.items():
        print(f"  {label}: {v}")
    print(f"{os.cpu_count()} CPUs, {args.sessions} connections x {args.per_conn} messages each "
          f"(one AUTH per connection), {args.size}-octet bodies, {args.messages} messages/run, "
          f"{args.runs} runs after a {args.warmup}-message warm-up; median [min..max]; one server "
          f"running at a time")
    print()
    hdr = (f"{'server':<30} {'accepted msg/s':<20} {'e2e msg/s':<20} {'CPU ms/msg':<18} "
           f"{'client s':<9} {'sink s':<7} {'busy %':<6}")
    print(hdr)
    print("-" * len(hdr))
    for label, rs in results.items():
        print(f"{label:<30} {fmt_runs([r['accepted'] for r in rs]):<20} "
              f"{fmt_runs([r['e2e'] for r in rs]):<20} {fmt_runs([r['cpu_ms'] for r in rs], 2):<18} "
              f"{statistics.median(r['client_cpu'] for r in rs):<9.1f} "
              f"{statistics.median(r['sink_cpu'] for r in rs):<7.1f} "
              f"{statistics.median(r['busy'] for r in rs):<6.0f}")
        for r in rs:
            if r["problems"]:
                print(f"    note: {r['problems']}")
    print()
    print("checks: every run's messages all reached the sink, signed and over TLS, and the first "
          "one's signatures were verified by dkimpy, unless a note says otherwise")
    print()
    print("target: Rampart e2e with signing >= Postfix + OpenDKIM e2e, same workload, same run")
    ours_label = servers[0].label
    ours = statistics.median(r["e2e"] for r in results[ours_label])
    pf = [label for label in results if label.startswith("postfix")]
    if pf:
        theirs = statistics.median(r["e2e"] for r in results[pf[0]])
        src = "measured now"
    else:
        theirs = BASELINE_E2E
        src = (f"perf-baseline.md, no signing and no TLS to the sink, other run: indicative only; "
               f"Postfix not run: {postfix_skip}")
    verdict = "PASS" if ours >= theirs else "FAIL"
    print(f"  {ours_label}: {ours:.0f} msg/s vs {theirs:.0f} ({src}): ratio {ours / theirs:.2f}"
          f"  {verdict}")
    for label in results:
        if label.startswith("rampart") and label != ours_label:
            v = statistics.median(r["e2e"] for r in results[label])
            print(f"  ({label}: {v:.0f} msg/s, ratio {v / theirs:.2f})")
    print(f"\n(total {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
