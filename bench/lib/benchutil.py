"""Small helpers the benchmarks share: a time-stamped log on stderr, a free
loopback port, the machine's busy jiffies, counting a directory's entries, the
stop/alive/log handling of a daemon the benchmark started, and running
Rampart's daemon and CLI."""
import os
import signal
import socket
import subprocess
import sys
import time

import procmem


class BenchError(Exception):
    """A benchmark cannot go on: printed, and the run fails."""


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def cpu_busy():
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(f) - f[3] - f[4], sum(f)


def count_files(d):
    try:
        with os.scandir(d) as it:
            return sum(1 for _ in it)
    except FileNotFoundError:
        return 0


class Daemon:
    """What a benchmark does with a daemon it started: self.proc (Popen) and
    self.logfile (Path) are set by the subclass."""
    proc = None
    logfile = None

    def stop(self):
        """SIGTERM, then SIGKILL to the whole process tree after 20 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            for pid in procmem.tree(self.proc.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            self.proc.wait()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=2000):
        try:
            return self.logfile.read_text(errors="replace")[-n:]
        except OSError:
            return ""


class RampartDaemon(Daemon):
    """rampartd and the rampart CLI of a build directory, for one config file:
    self.build, self.config and self.logfile are set by the subclass."""
    build = None
    config = None

    def cli(self, *args, input=None, config=None, timeout=120):
        r = subprocess.run([str(self.build / "rampart"), "-c", str(config or self.config), *args],
                           input=input, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise BenchError(f"rampart {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def version(self):
        try:
            return self.cli("version").strip()
        except BenchError:
            return "rampart"

    def spawn(self):
        """Starts rampartd -d on self.config, its output appended to self.logfile;
        returns the log's length before it started."""
        with open(self.logfile, "ab") as out:
            since = out.tell()
            self.proc = subprocess.Popen([str(self.build / "rampartd"), "-d", "-c",
                                          str(self.config)],
                                         stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)
        return since
