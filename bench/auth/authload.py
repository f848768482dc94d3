#!/usr/bin/python3
"""authload — SMTP AUTH load for bench/auth: logins, a password-guessing attack,
and a prober that times one legitimate user's logins.

Every login is a NEW connection: connect (from a chosen 127.x.y.z source
address), TLS (implicit on a submissions port, or STARTTLS on a submission
port), EHLO, AUTH PLAIN with an initial response (RFC 4954 §4, RFC 4616), QUIT.
The attack instead keeps TLS connections open and pipelines wrong AUTH PLAIN
attempts on them (several outstanding at a time), moving to a fresh source
address every few attempts, paced by one token bucket per process; it counts
what it sent and every reply it got, so the rate that really reached the
server can be checked. Work is spread over several processes running asyncio,
so one Python interpreter is not the limit.

Standard library only. Used by bench/auth/run.py; also usable on its own:
  authload.py login  HOST:PORT USER PASSWORD [-n 20] [--src 127.0.0.1] [--starttls]
  authload.py attack HOST:PORT [--rate 1000] [--seconds 10] [--procs 2] [--conns 64]
"""
import argparse
import asyncio
import base64
import multiprocessing
import os
import random
import resource
import ssl
import sys
import time

SERVER_NAME = "bench.localdomain"
CONNECT_TIMEOUT = 30.0


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def auth_plain(user, password):
    """AUTH PLAIN with its initial response (RFC 4616 §2: authzid NUL authcid NUL passwd)."""
    blob = b"\0" + user.encode() + b"\0" + password.encode()
    return b"AUTH PLAIN " + base64.b64encode(blob) + b"\r\n"


def percentile(values, p):
    """Nearest-rank percentile of values (p in 0..100); None when empty."""
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(-(-p * len(v) // 100)) - 1))
    return v[k]


def own_cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


# ------------------------------------------------------------------ one session

async def read_reply(reader):
    """(code, last line) of one possibly multi-line reply; code 0 on EOF."""
    while True:
        line = await reader.readline()
        if not line:
            return 0, ""
        if len(line) < 4 or line[3:4] != b"-":
            try:
                return int(line[:3]), line.decode(errors="replace").strip()
            except ValueError:
                return -1, line.decode(errors="replace").strip()


async def open_session(host, port, src, ctx, starttls):
    """A connected, TLS-protected session after EHLO: (reader, writer).
    Raises ConnectionError (with the reply) when the server refuses."""
    if starttls:
        reader, writer = await asyncio.open_connection(host, port, local_addr=(src, 0))
    else:
        reader, writer = await asyncio.open_connection(
            host, port, ssl=ctx, server_hostname=SERVER_NAME, local_addr=(src, 0))
    try:
        code, text = await read_reply(reader)
        if code != 220:
            raise ConnectionError(f"greeting {code} {text}")
        writer.write(b"EHLO bench.localdomain\r\n")
        code, text = await read_reply(reader)
        if code != 250:
            raise ConnectionError(f"EHLO {code} {text}")
        if starttls:
            writer.write(b"STARTTLS\r\n")
            code, text = await read_reply(reader)
            if code != 220:
                raise ConnectionError(f"STARTTLS {code} {text}")
            await writer.start_tls(ctx, server_hostname=SERVER_NAME)
            writer.write(b"EHLO bench.localdomain\r\n")
            code, text = await read_reply(reader)
            if code != 250:
                raise ConnectionError(f"EHLO after STARTTLS {code} {text}")
        return reader, writer
    except BaseException:
        writer.close()
        raise


async def close_session(writer):
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 2)
    except (OSError, asyncio.TimeoutError, ssl.SSLError):
        pass


async def login(host, port, src, user, password, ctx, starttls, timeout=CONNECT_TIMEOUT):
    """One login on a new connection. Returns (code, seconds to the AUTH reply from
    before connect, seconds from sending AUTH to its reply, error text or "").
    code is the AUTH reply (235 on success), or 0 when the session failed before."""
    t0 = time.monotonic()
    writer = None
    try:
        async def run():
            nonlocal writer
            reader, writer = await open_session(host, port, src, ctx, starttls)
            t1 = time.monotonic()
            writer.write(auth_plain(user, password))
            code, text = await read_reply(reader)
            t2 = time.monotonic()
            if code == 235:
                writer.write(b"QUIT\r\n")
                await read_reply(reader)
            return code, t2 - t0, t2 - t1, "" if code == 235 else text
        return await asyncio.wait_for(run(), timeout)
    except (OSError, ConnectionError, ssl.SSLError, asyncio.TimeoutError, ValueError) as e:
        return 0, time.monotonic() - t0, 0.0, f"{type(e).__name__}: {e}"
    finally:
        if writer is not None:
            await close_session(writer)


# ------------------------------------------------------------------ logins

def _login_worker(host, port, starttls, pairs, budget, clients, start_at, seconds, out):
    """Runs `clients` concurrent login loops over pairs [(src, user, password)],
    each pair used at most `budget` times, from start_at (time.time()) for
    `seconds`; puts a result dict on out."""
    ctx = tls_context()
    uses = [0] * len(pairs)
    res = {"ok": 0, "fail": {}, "lat": [], "auth_lat": [], "last": start_at, "errors": []}
    nxt = [0]

    def take():
        for _ in range(len(pairs)):
            i = nxt[0] % len(pairs)
            nxt[0] += 1
            if uses[i] < budget:
                uses[i] += 1
                return pairs[i]
        return None

    async def loop(deadline):
        while time.time() < deadline:
            p = take()
            if p is None:
                res["exhausted"] = True
                return
            code, lat, alat, err = await login(host, port, p[0], p[1], p[2], ctx, starttls)
            if code == 235 and time.time() > deadline:
                return   # finished after the end: not counted (the C client does the same)
            if code == 235:
                res["ok"] += 1
                res["lat"].append(lat)
                res["auth_lat"].append(alat)
                res["last"] = time.time()
            else:
                res["fail"][code] = res["fail"].get(code, 0) + 1
                if len(res["errors"]) < 3:
                    res["errors"].append(f"{p[0]} {p[1]}: {code} {err}")

    async def main():
        await asyncio.sleep(max(0.0, start_at - time.time()))
        deadline = start_at + seconds
        await asyncio.gather(*(loop(deadline) for _ in range(clients)))
    cpu0 = own_cpu()
    asyncio.run(main())
    res["cpu"] = own_cpu() - cpu0
    out.put(res)


def start_logins(host, port, pairs, clients, seconds, budget=50, procs=2, starttls=False,
                 start_at=None):
    """Closed-loop login throughput: `clients` concurrent clients (split over
    `procs` processes, each with its own share of pairs), every login a new TLS
    connection, from start_at for `seconds`. Returns a handle for
    finish_logins()."""
    procs = max(1, min(procs, clients, len(pairs)))
    start_at = start_at or time.time() + 0.5
    out = multiprocessing.Queue()
    ps = []
    for i in range(procs):
        n = clients // procs + (1 if i < clients % procs else 0)
        ps.append(multiprocessing.Process(
            target=_login_worker,
            args=(host, port, starttls, pairs[i::procs], budget, n, start_at, seconds, out)))
    for p in ps:
        p.start()
    return ps, out, start_at


def finish_logins(handle):
    """A dict: ok, fail {code: n}, lat and auth_lat (seconds, every success),
    start, end (time.time() of the last success), cpu (client seconds),
    exhausted (some process ran out of pairs), errors."""
    ps, out, start_at = handle
    total = {"ok": 0, "fail": {}, "lat": [], "auth_lat": [], "start": start_at,
             "end": start_at, "cpu": 0.0, "exhausted": False, "errors": []}
    for _ in ps:
        r = out.get()
        total["ok"] += r["ok"]
        for k, v in r["fail"].items():
            total["fail"][k] = total["fail"].get(k, 0) + v
        total["lat"] += r["lat"]
        total["auth_lat"] += r["auth_lat"]
        total["end"] = max(total["end"], r["last"])
        total["cpu"] += r["cpu"]
        total["exhausted"] |= r.get("exhausted", False)
        total["errors"] += r["errors"]
    for p in ps:
        p.join()
    return total


def warm_pairs(host, port, pairs, starttls=False, rate=7.0, retries=20):
    """One successful login per (src, user, password), so that each address becomes
    familiar for its user. New addresses share the server's unfamiliar hashing
    lane (auth_hash_rate, 8/s by default), so they are paced at `rate` per second
    and a 454 is retried. Returns the pairs that failed (with the reply)."""
    ctx = tls_context()
    failed = []

    async def one(i, p):
        await asyncio.sleep(i / rate)
        err = ""
        for _ in range(retries):
            code, _, _, err = await login(host, port, p[0], p[1], p[2], ctx, starttls)
            if code == 235:
                return
            if code != 454:
                break
            await asyncio.sleep(0.5 + random.random())
        failed.append((p, err))

    async def main():
        await asyncio.gather(*(one(i, p) for i, p in enumerate(pairs)))
    asyncio.run(main())
    return failed


# ------------------------------------------------------------------ the prober

def _probe_worker(host, port, starttls, src, user, password, rate, start_at, seconds, out):
    """Open loop: a login every 1/rate s from start_at, whatever the earlier ones do."""
    ctx = tls_context()
    res = {"samples": [], "cpu": 0.0}

    async def one(at):
        await asyncio.sleep(max(0.0, at - time.time()))
        code, lat, alat, err = await login(host, port, src, user, password, ctx, starttls)
        res["samples"].append((at, code, lat, alat, err))

    async def main():
        n = int(round(rate * seconds))
        await asyncio.gather(*(one(start_at + k / rate) for k in range(n)))
    cpu0 = own_cpu()
    asyncio.run(main())
    res["cpu"] = own_cpu() - cpu0
    out.put(res)


def start_probe(host, port, src, user, password, rate, start_at, seconds, starttls=False):
    """Starts the prober in its own process; returns (process, queue) — the queue
    gets {"samples": [(scheduled, code, latency, auth latency, error)], "cpu"}."""
    out = multiprocessing.Queue()
    p = multiprocessing.Process(target=_probe_worker, args=(
        host, port, starttls, src, user, password, rate, start_at, seconds, out))
    p.start()
    return p, out


# ------------------------------------------------------------------ the attack

def attack_address(k, spread):
    """The k-th attacker source address. "narrow": 127.0.0.2..254 over and over
    (one /24, shared with the legitimate user at 127.0.0.1). "wide": every 16th
    address from 127.0.0.2..254, the others 127.A.B.C with A = 1..63 varying
    fastest, then B, then C, so consecutive addresses fall in different /16s and
    /24s: a botnet's spread, which the per-prefix budgets do not catch within a
    run (127.200/16 and up are left to the login phases)."""
    if spread == "narrow" or k % 16 == 0:
        return f"127.0.0.{2 + (k // (1 if spread == 'narrow' else 16)) % 253}"
    k -= k // 16 + 1
    a, k = 1 + k % 63, k // 63
    b, k = k % 256, k // 256
    c = 1 + k % 254
    return f"127.{a}.{b}.{c}"


def attack_credentials(rng, users, domain):
    """A wrong guess: a real user (users) or an unknown name, a random password."""
    pw = "".join(rng.choice("abcdefghijkmnopqrstuvwxyz0123456789") for _ in range(12))
    r = rng.random()
    if users and r < 0.5:
        return rng.choice(users), pw
    return f"guess{rng.randrange(1_000_000)}@{domain}", pw


class Pacer:
    """Open-loop pacing shared by every task: take() returns rate times per second
    from start_at. Slots that no task was ready to use (every connection waiting
    for held replies) are lost, not sent later in a burst: the per-second counts
    of what was sent show it."""

    def __init__(self, rate, start_at):
        self.interval = 1.0 / rate
        self.next = time.monotonic() + max(0.0, start_at - time.time())

    async def take(self):
        now = time.monotonic()
        at = max(self.next, now - 0.1)   # catch up on at most 0.1 s of slots
        self.next = at + self.interval
        if at > now:
            await asyncio.sleep(at - now)


def _attack_worker(idx, nprocs, host, port, starttls, rate, conns, depth, per_conn, spread,
                   users, domain, start_at, seconds, epoch, nice, addr_base, out):
    if nice:
        os.nice(nice)
    ctx = tls_context()
    rng = random.Random(idx * 7919 + int(start_at))
    nbins = int(seconds) + 2
    st = {"sent": 0, "replies": {}, "sent_bins": [0] * nbins, "reply_bins": [0] * nbins,
          "conns": 0, "conn_fail": {}, "closed_by_server": 0,
          "errors": []}
    addr_k = [addr_base + idx]

    def bin_of(t):
        return min(nbins - 1, max(0, int(t - epoch)))

    async def one_conn(pacer, deadline):
        src = attack_address(addr_k[0], spread)
        addr_k[0] += nprocs
        try:
            reader, writer = await asyncio.wait_for(
                open_session(host, port, src, ctx, starttls), CONNECT_TIMEOUT)
        except (OSError, ConnectionError, ssl.SSLError, asyncio.TimeoutError) as e:
            key = str(e).split(" ")[0] if isinstance(e, ConnectionError) else type(e).__name__
            st["conn_fail"][key] = st["conn_fail"].get(key, 0) + 1
            await asyncio.sleep(0.05)
            return
        st["conns"] += 1
        outstanding = 0
        slot = asyncio.Event()
        done = False

        async def read_loop():
            nonlocal outstanding, done
            while True:
                code, _ = await read_reply(reader)
                if code == 0:
                    break
                if code == 221:
                    break
                if code == 421:
                    # Follows the 535 of the last allowed failure (or refuses the
                    # session): not an answer to an attempt of its own.
                    st["closed_by_server"] += 1
                    break
                st["replies"][code] = st["replies"].get(code, 0) + 1
                st["reply_bins"][bin_of(time.time())] += 1
                outstanding -= 1
                slot.set()
            done = True
            slot.set()

        rd = asyncio.ensure_future(read_loop())
        sent = 0
        try:
            while sent < per_conn and not done and time.time() < deadline:
                while outstanding >= depth and not done:
                    slot.clear()
                    await slot.wait()
                if done:
                    break
                await pacer.take()
                if done or time.time() >= deadline:
                    break
                user, pw = attack_credentials(rng, users, domain)
                writer.write(auth_plain(user, pw))
                outstanding += 1
                sent += 1
                st["sent"] += 1
                st["sent_bins"][bin_of(time.time())] += 1
            # Collect what is owed, for at most 3 s after the end (a blocked
            # answer takes guard_tarpit_max, 15 s: those are left unanswered).
            while outstanding > 0 and not done and time.time() < deadline + 3:
                slot.clear()
                try:
                    await asyncio.wait_for(slot.wait(), 1)
                except asyncio.TimeoutError:
                    pass
            if not done:
                writer.write(b"QUIT\r\n")
                await asyncio.wait_for(rd, 5)
        except (OSError, ssl.SSLError, asyncio.TimeoutError, ConnectionError) as e:
            if len(st["errors"]) < 3:
                st["errors"].append(f"{src}: {type(e).__name__}: {e}")
        finally:
            rd.cancel()
            await close_session(writer)

    async def task(pacer, deadline):
        while time.time() < deadline:
            await one_conn(pacer, deadline)

    async def main():
        # The first connections open before start_at (the caller leaves time for
        # that); sending starts at start_at.
        pacer = Pacer(rate, start_at)
        deadline = start_at + seconds
        tasks = [asyncio.ensure_future(task(pacer, deadline)) for _ in range(conns)]
        # Replies still owed 3 s after the end (tarpits, blocks) are abandoned.
        await asyncio.wait(tasks, timeout=seconds + 3 + max(0.0, start_at - time.time()))
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    cpu0 = own_cpu()
    asyncio.run(main())
    st["cpu"] = own_cpu() - cpu0
    out.put(st)


def start_attack(host, port, rate, seconds, procs=2, conns=1500, depth=1, per_conn=40,
                 spread="wide", users=(), domain="example.test", start_at=None,
                 starttls=False, nice=0, addr_base=0):
    """Starts the attack in `procs` processes; returns (processes, queue, epoch).
    Each process paces rate/procs AUTH attempts per second over conns/procs
    connections with up to `depth` pipelined attempts each, per_conn attempts per
    connection (then QUIT and a new source address). nice > 0 lowers the
    processes' CPU priority (an attack comes from elsewhere; here it shares the
    machine). addr_base: where in the attack_address() sequence to start (another
    attack in the same run should not reuse the first one's addresses). Collect
    with finish_attack()."""
    start_at = start_at or time.time() + 1 + conns / 400
    epoch = start_at
    out = multiprocessing.Queue()
    ps = []
    for i in range(procs):
        n = conns // procs + (1 if i < conns % procs else 0)
        ps.append(multiprocessing.Process(target=_attack_worker, args=(
            i, procs, host, port, starttls, rate / procs, n, depth, per_conn, spread,
            list(users), domain, start_at, seconds, epoch, nice, addr_base, out)))
    for p in ps:
        p.start()
    return ps, out, epoch


def finish_attack(ps, out):
    """Waits for the attack processes; the summed counters (bins are per second
    from the attack's start)."""
    total = None
    for _ in ps:
        st = out.get()
        if total is None:
            total = st
            continue
        total["sent"] += st["sent"]
        total["conns"] += st["conns"]
        total["closed_by_server"] += st["closed_by_server"]
        total["cpu"] += st["cpu"]
        total["errors"] += st["errors"]
        for k in ("replies", "conn_fail"):
            for c, v in st[k].items():
                total[k][c] = total[k].get(c, 0) + v
        for k in ("sent_bins", "reply_bins"):
            total[k] = [a + b for a, b in zip(total[k], st[k])]
    for p in ps:
        p.join()
    return total


# ------------------------------------------------------------------ standalone

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    lg = sub.add_parser("login", help="N logins one after another, with timings")
    lg.add_argument("target")
    lg.add_argument("user")
    lg.add_argument("password")
    lg.add_argument("-n", type=int, default=20)
    lg.add_argument("--src", default="127.0.0.1")
    lg.add_argument("--starttls", action="store_true")
    at = sub.add_parser("attack", help="wrong AUTH PLAIN attempts at a paced rate")
    at.add_argument("target")
    at.add_argument("--rate", type=float, default=1000)
    at.add_argument("--seconds", type=float, default=10)
    at.add_argument("--procs", type=int, default=2)
    at.add_argument("--conns", type=int, default=1500)
    at.add_argument("--depth", type=int, default=1)
    at.add_argument("--per-conn", type=int, default=40)
    at.add_argument("--nice", type=int, default=0)
    at.add_argument("--spread", choices=("wide", "narrow"), default="wide")
    at.add_argument("--users", default="", help="comma-separated real users to guess at")
    at.add_argument("--starttls", action="store_true")
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    port = int(port)
    if a.cmd == "login":
        ctx = tls_context()

        async def go():
            lats = []
            for _ in range(a.n):
                code, lat, alat, err = await login(host, port, a.src, a.user, a.password, ctx,
                                                   a.starttls)
                print(f"{code} total {lat * 1000:.1f} ms auth {alat * 1000:.1f} ms {err}")
                if code == 235:
                    lats.append(lat)
            return lats
        lats = asyncio.run(go())
        if lats:
            print(f"p50 {percentile(lats, 50) * 1000:.1f} ms, p99 {percentile(lats, 99) * 1000:.1f} ms")
        return 0 if len(lats) == a.n else 1
    ps, out, _ = start_attack(host, port, a.rate, a.seconds, a.procs, a.conns, a.depth,
                              a.per_conn, a.spread, [u for u in a.users.split(",") if u],
                              starttls=a.starttls, nice=a.nice)
    st = finish_attack(ps, out)
    answered = sum(st["replies"].values())
    print(f"sent {st['sent']} ({st['sent'] / a.seconds:.0f}/s), answered {answered}, "
          f"replies {st['replies']}, connections {st['conns']} (failed {st['conn_fail']}), "
          f"client CPU {st['cpu']:.1f} s")
    print("sent/s", st["sent_bins"], "\nanswered/s", st["reply_bins"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
