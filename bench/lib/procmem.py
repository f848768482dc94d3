"""Process trees, memory (RSS/PSS from smaps_rollup) and CPU time, from /proc.

A server is measured as the set of its root process and every descendant, so a
one-process-per-connection server (Postfix's smtpd) and a few-processes server
(rampartd) are summed the same way.
"""
import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid):
    """Fields after the command name of /proc/pid/stat (index 0 = state)."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    return s[s.rindex(")") + 2:].split()


def tree(root):
    """root and all its live (non-zombie) descendants."""
    parent = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = _stat_fields(int(entry))
        except (OSError, ValueError):
            continue
        if fields[0] != "Z":
            parent[int(entry)] = int(fields[1])
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in parent:
            out.append(pid)
            todo.extend(p for p, pp in parent.items() if pp == pid)
    return out


def memory(pids):
    """(Σ Rss, Σ Pss) in KiB over pids (processes that vanished count 0)."""
    rss = pss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss


def cpu_seconds(root):
    """User+system CPU of root's tree, including reaped children (cutime/cstime),
    in seconds. Children that exited since the last call are counted through their
    parent's cutime once reaped; good to a few ms over a run."""
    total = 0
    for pid in tree(root):
        try:
            f = _stat_fields(pid)
        except (OSError, ValueError):
            continue
        # utime stime cutime cstime are fields 14..17 of stat: 11..14 here.
        total += sum(int(x) for x in f[11:15])
    return total / CLK_TCK
