"""A real DNS server for integration tests: `unbound` on a free loopback port,
serving static local zones, so Rampart's libunbound resolver (dns.resolver /
--resolver HOST@PORT) has something to ask that never leaves the machine.

    u = Unbound(tmpdir, {"example.test": [("@", "TXT", '"v=spf1 -all"'),
                                          ("mail", "A", "192.0.2.1")]})
    ... rampart dns query mail.example.test A --resolver u.addr ...
    u.stop()

zones maps a zone name to its records: (name, type, rdata) or (name, ttl, type,
rdata) tuples, where name is "@" (the apex), relative to the zone, or absolute
with a final dot, and rdata is in master-file form ('"two" "strings"' for TXT;
names in CNAME, PTR, NS and MX data relative to the zone unless they end in ".");
or raw strings, used as they are as an unbound local-data line
('x.example.test. 60 IN A 192.0.2.9'). A zone whose records are the string
"refuse" is an always_refuse zone (every query gets REFUSED).

auth_zones (optional) maps a zone name to a master file that unbound serves
itself with `auth-zone:` (for-downstream and for-upstream), RRSIG, NSEC and
DNSKEY records included as they are in the file: a DNSSEC-signed zone for
validation tests. The server itself does not validate (module-config stays
"iterator"): whatever the file holds is given out, broken signatures too.

Works as root in a container: no chroot, no user switch, no syslog, no remote
control; the log and the pid file stay in tmpdir.
"""
import os
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port for unbound")


def _quote(s):
    """A value for unbound.conf: single quotes keep the double quotes of TXT."""
    if "'" in s:
        raise ValueError(f"unbound.conf cannot carry a single quote: {s!r}")
    return f"'{s}'"


def _owner(name, zone):
    if name == "@":
        return zone + "."
    if name.endswith("."):
        return name
    return f"{name}.{zone}."


def _rdata(rtype, rdata, zone):
    """Names in CNAME, PTR, NS and MX data relative to the zone, as in a master
    file (unbound.conf has no $ORIGIN: it would take "mail" as "mail.")."""
    rtype = rtype.upper()
    if rtype in ("CNAME", "PTR", "NS"):
        return _owner(rdata.strip(), zone)
    if rtype == "MX":
        pref, host = rdata.split()
        return f"{pref} {host if host == '.' else _owner(host, zone)}"
    return rdata


def query_packet(name, qtype=1, ident=0x5253):
    """A minimal DNS query (RFC 1035 §4.1) with RD set."""
    q = b"".join(bytes([len(label)]) + label.encode() for label in name.strip(".").split(".")
                 if label)
    return struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) + q + b"\0" + \
        struct.pack(">HH", qtype, 1)


class Unbound:
    def __init__(self, tmpdir, zones, ttl=300, start=True, auth_zones=None):
        self.dir = Path(tmpdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.addr = f"127.0.0.1@{self.port}"
        self.conf = self.dir / "unbound.conf"
        self.logfile = self.dir / "unbound.log"
        self.pidfile = self.dir / "unbound.pid"
        self.proc = None
        lines = [
            "server:",
            f"    interface: 127.0.0.1@{self.port}",
            f"    port: {self.port}",
            "    do-ip4: yes",
            "    do-ip6: no",
            "    do-udp: yes",
            "    do-tcp: yes",
            "    do-daemonize: no",
            '    chroot: ""',
            '    username: ""',
            f'    directory: "{self.dir}"',
            "    use-syslog: no",
            f'    logfile: "{self.logfile}"',
            f'    pidfile: "{self.pidfile}"',
            "    verbosity: 1",
            "    num-threads: 1",
            '    module-config: "iterator"',
            "    access-control: 127.0.0.0/8 allow",
            "    do-not-query-localhost: no",
            # The tests' names are under .test, .example and the like (RFC 6761).
            '    local-zone: "test." nodefault',
            "    harden-glue: no",
            "    minimal-responses: yes",
            "remote-control:",
            "    control-enable: no",
        ]
        server = lines[:lines.index("remote-control:")]
        rest = lines[len(server):]
        for zone, records in zones.items():
            zone = zone.rstrip(".")
            if records == "refuse":
                server.append(f'    local-zone: "{zone}." always_refuse')
                continue
            server.append(f'    local-zone: "{zone}." static')
            for rec in records:
                if isinstance(rec, str):
                    server.append(f"    local-data: {_quote(rec)}")
                    continue
                if len(rec) == 3:
                    name, rtype, rdata = rec
                    rttl = ttl
                else:
                    name, rttl, rtype, rdata = rec
                rdata = _rdata(rtype, rdata, zone)
                server.append("    local-data: " +
                              _quote(f"{_owner(name, zone)} {rttl} IN {rtype} {rdata}"))
        # RFC 4035 §3.1: an authoritative answer to a DO query carries the RRSIGs.
        for zone, zonefile in (auth_zones or {}).items():
            rest += ["auth-zone:",
                     f'    name: "{zone.rstrip(".")}."',
                     f'    zonefile: "{zonefile}"',
                     "    for-downstream: yes",
                     "    for-upstream: yes",
                     "    fallback-enabled: no"]
        self.conf.write_text("\n".join(server + rest) + "\n")
        if start:
            self.start()

    def start(self, timeout=15):
        checkconf = shutil.which("unbound-checkconf") or "/usr/sbin/unbound-checkconf"
        if os.path.exists(checkconf):
            check = subprocess.run([checkconf, str(self.conf)], capture_output=True, text=True)
            if check.returncode != 0:
                raise AssertionError(f"unbound.conf is not valid:\n{check.stdout}{check.stderr}")
        # Its own output (before the log file is open) goes to a file: a pipe
        # nobody reads could fill and stop it.
        self.out = open(self.dir / "unbound.out", "ab")
        self.proc = subprocess.Popen([UNBOUND, "-d", "-c", str(self.conf)],
                                     stdout=self.out, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                out = (self.dir / "unbound.out").read_text(errors="replace")
                self.stop()
                raise AssertionError(f"unbound exited at start-up:\n{out}{self.log_text()}")
            if self.answers():
                return self
            time.sleep(0.05)
        self.stop()
        raise AssertionError("unbound did not answer:\n" + self.log_text())

    def answers(self):
        """True once the server answers a query (any RCODE) on UDP."""
        pkt = query_packet("ready.invalid")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            try:
                s.sendto(pkt, ("127.0.0.1", self.port))
                data, _ = s.recvfrom(4096)
            except OSError:
                return False
        return len(data) >= 12 and data[:2] == pkt[:2]

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        self.proc = None

    def log_text(self):
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
