"""Small helpers the benchmarks share: a time-stamped log on stderr, a free
loopback port, the machine's busy jiffies, counting a directory's entries, and
the stop/alive/log handling of a daemon the benchmark started."""
import os
import signal
import socket
import subprocess
import sys
import time

import procmem


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
