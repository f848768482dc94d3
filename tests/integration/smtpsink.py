"""A scriptable SMTP server that stands in for "the rest of the world" when
rampartd relays mail out: it accepts what a real MX would, records everything
the client did, and can be told to fail at a chosen stage.

    port = free_port(["127.0.0.2", "127.0.0.3"])      # one port, two MX hosts
    sink = SmtpSink("127.0.0.2", port, cert=cert, key=key)
    sink.fail("rcpt", "451 4.3.0 try later", times=1)
    sink.fail("rcpt", "550 5.1.1 no such user", match="bob@remote.test")
    ... rampartd relays to remote.test (MX -> 127.0.0.2) ...
    msg, = sink.wait_for(1)
    assert msg.tls and msg.tls_version == "TLSv1.3" and msg.sni == "mx1.remote.test"
    assert msg.rcpts == ["carol@remote.test"] and msg.rcpt_params[0]["NOTIFY"] == "FAILURE"
    sink.stop()

Protocol (stdlib only; a thread per connection): RFC 5321 EHLO/HELO, MAIL, RCPT,
DATA (dot-unstuffing, §4.5.2; only CRLF.CRLF ends the data), RSET, NOOP, VRFY,
HELP, QUIT; STARTTLS (RFC 3207) when a certificate is given, TLS 1.2 or newer;
PIPELINING (RFC 2920: commands are read as they come and answered in order;
replies to a group are sent together when the input runs dry, as Postfix does);
SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), CHUNKING/BDAT
(RFC 3030), DSN (RFC 3461: NOTIFY, ORCPT, RET, ENVID recorded as sent),
ENHANCEDSTATUSCODES, AUTH PLAIN/LOGIN (RFC 4954, RFC 4616) against a credentials
dict, refused before TLS with 538 like a real server. A MAIL or RCPT parameter of
an extension that was not offered is refused with 555 (RFC 5321 §4.1.1.11), a
non-ASCII address without SMTPUTF8 with 553 5.6.7 (RFC 6531 §3.5).

Limits, so a broken client cannot hurt the test run: command lines of 4096
octets, message data kept up to max_size (the rest read and dropped, then 552),
max_rcpts recipients (then 452 4.5.3), 20 bad commands (then 421), an idle
timeout per connection, max_sessions at once.

Records: `sink.messages` (accepted messages, see Message) and `sink.sessions`
(every connection, see Session: EHLO name, TLS, SNI, TLS errors, whether the
client pipelined, sent QUIT, a transcript). Everything is guarded by one lock;
the lists returned are copies.
"""
import base64
import binascii
import itertools
import re
import select
import socket
import ssl
import threading
import time

DEFAULT_EXT = frozenset({"PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "DSN", "CHUNKING",
                         "ENHANCEDSTATUSCODES", "STARTTLS"})
STAGES = ("connect", "ehlo", "helo", "starttls", "auth", "mail", "rcpt", "data", "bdat",
          "data_end", "rset", "noop", "quit")
MAX_LINE = 4096             # command line limit (RFC 5321 §4.5.3.1.4 says 512 + extensions)
MAX_DATA_LINE = 65536       # data is read in pieces of at most this much
MAX_BAD_COMMANDS = 20
MAX_TRANSCRIPT = 2000
TLS_VERSIONS = {"TLSv1_2": ssl.TLSVersion.TLSv1_2, "TLSv1_3": ssl.TLSVersion.TLSv1_3}


def free_port(hosts=("127.0.0.1",)):
    """A TCP port that is free on every one of hosts (e.g. 127.0.0.2 and
    127.0.0.3, which rampartd reaches through relay.port)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        socks = []
        try:
            for h in hosts:
                t = socket.socket()
                socks.append(t)
                t.bind((h, port))
            return port
        except OSError:
            continue
        finally:
            for t in socks:
                t.close()
    raise RuntimeError(f"no port free on all of {hosts}")


def xtext_decode(s):
    """RFC 3461 §4 xtext: "+XX" is the octet XX in hex (ORCPT and ENVID)."""
    return re.sub(r"\+([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), s)


def format_reply(text):
    """"451 4.3.0 try later" or several lines separated by "\\n" (each with or without
    its code) -> the wire form, continuation lines with "-" (RFC 5321 §4.2.1)."""
    lines = text.split("\n")
    code = lines[0][:3]
    if not re.fullmatch(r"[2-5][0-9][0-9]", code):
        raise ValueError(f"reply {text!r} does not start with a 3-digit code")
    out = []
    for i, ln in enumerate(lines):
        body = ln[4:] if re.match(r"[2-5][0-9][0-9]( |-|$)", ln) else ln
        sep = " " if i == len(lines) - 1 else "-"
        out.append(f"{code}{sep}{body}".rstrip(" ") + "\r\n")
    return "".join(out)


class Message:
    """One accepted message. mail_from: the reverse-path ("" for <>); mail_params:
    {KEYWORD: value or True} from MAIL (SIZE, BODY, SMTPUTF8, RET, ENVID, AUTH);
    rcpts: accepted recipients in order; rcpt_params: a dict per recipient (NOTIFY,
    ORCPT); data: the message bytes after dot-unstuffing (or the BDAT chunks
    joined), CRLF line ends as sent; bdat: sent with BDAT; tls, tls_version,
    tls_cipher, sni: the TLS state of the session; peer: (ip, port); ehlo: the
    EHLO/HELO name; helo_verb: "EHLO" or "HELO"; auth_user: who authenticated;
    session: the Session; queue_id: the id in our 250 reply."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def params_for(self, rcpt):
        """The RCPT parameters of one recipient (case-insensitive address)."""
        for a, p in zip(self.rcpts, self.rcpt_params):
            if a.lower() == rcpt.lower():
                return p
        raise KeyError(rcpt)

    @property
    def eight_bit(self):
        """True when the data has an octet above 127 (needs BODY=8BITMIME, RFC 6152)."""
        return any(b > 127 for b in self.data)

    @property
    def bare_lf(self):
        """True when the data has an LF not preceded by CR (RFC 5321 §2.3.8)."""
        return re.search(rb"(?<!\r)\n", self.data) is not None

    def __repr__(self):
        return (f"Message(from={self.mail_from!r}, rcpts={self.rcpts!r}, {len(self.data)} "
                f"octets, tls={self.tls_version}, sni={self.sni!r}, peer={self.peer})")


class Session:
    """One connection. peer; ehlo / helo_verb (the last name given); tls,
    tls_version, tls_cipher, sni once STARTTLS completed; tls_error: why the
    handshake failed (e.g. the client rejected our certificate: "... alert
    unknown ca"); starttls_leftover: octets the client pipelined after STARTTLS
    (discarded, RFC 3207 §4.2; must be 0); pipelined: commands that arrived before
    the reply to the previous one was sent; early_talker: the client spoke before
    the greeting; quit: the client sent QUIT; auth_user, auth_attempts [(mech,
    user, ok)]; rejected [(stage, address, reply)]; transcript [("C"|"S", line)]
    (AUTH responses and message data left out); messages: how many were accepted;
    closed; error: how it ended when not by QUIT (timeout, reset, a rule's drop)."""

    def __init__(self, ident, peer):
        self.id = ident
        self.peer = peer
        self.started = time.time()
        self.ehlo = None
        self.helo_verb = None
        self.tls = False
        self.tls_version = None
        self.tls_cipher = None
        self.sni = None
        self.tls_error = None
        self.starttls_leftover = 0
        self.pipelined = []
        self.early_talker = False
        self.quit = False
        self.auth_user = None
        self.auth_attempts = []
        self.rejected = []
        self.transcript = []
        self.messages = 0
        self.closed = False
        self.error = None

    def log(self, direction, text):
        if len(self.transcript) < MAX_TRANSCRIPT:
            self.transcript.append((direction, text))

    def __repr__(self):
        return (f"Session({self.id}, peer={self.peer}, ehlo={self.ehlo!r}, "
                f"tls={self.tls_version}, sni={self.sni!r}, tls_error={self.tls_error!r}, "
                f"messages={self.messages}, quit={self.quit})")


class _Rule:
    def __init__(self, stage, reply, times, match, drop, delay):
        self.stage, self.reply, self.times = stage, reply, times
        self.match, self.drop, self.delay = match, drop, delay
        self.fired = 0

    def matches(self, subject):
        if self.match is None:
            return True
        if callable(self.match):
            return bool(self.match(subject))
        if isinstance(subject, Message):       # data_end: a recipient or a substring
            return (self.match.lower() in (r.lower() for r in subject.rcpts) or
                    self.match in subject.data.decode("latin-1"))
        return str(subject).lower() == self.match.lower()


class _Closed(Exception):
    """The session ends: the peer went away, or we close it."""


class _Conn:
    """A socket with an input buffer and held replies. Replies are held until the
    input has no complete line, then sent together (RFC 2920 §3.2 server side)."""

    def __init__(self, sock, sess, stopping):
        self.sock, self.sess, self.stopping = sock, sess, stopping
        self.buf = bytearray()
        self.out = []

    def reply(self, text):
        wire = text if text.endswith("\r\n") else format_reply(text)
        for ln in wire.split("\r\n")[:-1]:
            self.sess.log("S", ln)
        self.out.append(wire.encode("utf-8"))

    def flush(self):
        if self.out:
            data = b"".join(self.out)
            self.out.clear()
            self.sock.sendall(data)

    def readable(self):
        """Input is waiting (in the kernel or inside the TLS layer)."""
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True
        p = select.poll()
        p.register(self.sock, select.POLLIN)
        return bool(p.poll(0))

    def _fill(self):
        # Held replies wait while more input is already there: that input was
        # sent before the client could see them, i.e. it was pipelined.
        if not (self.out and self.readable()):
            self.flush()
        if self.stopping.is_set():
            raise _Closed("sink stopped")
        data = self.sock.recv(65536)
        if not data:
            try:
                self.flush()
            except OSError:
                pass
            raise _Closed("peer closed the connection")
        self.buf += data

    def line(self, limit):
        """(line including LF, or a piece of limit octets without LF; held) where
        held says replies were still held when the line was taken: pipelined."""
        while True:
            i = self.buf.find(b"\n", 0, limit)
            if i >= 0 or len(self.buf) >= limit:
                n = i + 1 if i >= 0 else limit
                out = bytes(self.buf[:n])
                del self.buf[:n]
                return out, bool(self.out)
            self._fill()

    def exact(self, n, keep):
        """Reads n octets; returns the first keep of them (the rest dropped)."""
        kept = bytearray()
        while n > 0:
            if not self.buf:
                self._fill()
            take = min(n, len(self.buf))
            if len(kept) < keep:
                kept += self.buf[:min(take, keep - len(kept))]
            del self.buf[:take]
            n -= take
        return bytes(kept)


class SmtpSink:
    """An SMTP server on host:port (port 0: any free port; see .port).

    cert, key: PEM files; STARTTLS is offered only with them (and "STARTTLS" in
    ext). ext: the EHLO keywords offered, from PIPELINING, SIZE, 8BITMIME, SMTPUTF8,
    DSN, CHUNKING, ENHANCEDSTATUSCODES, STARTTLS; any other word in ext is
    advertised as it is (and its parameters are still refused); AUTH follows
    auth, not ext. hostname: the
    name in the greeting and EHLO reply. auth: {user: password} turns on AUTH PLAIN
    LOGIN, offered only inside TLS unless auth_plaintext=True; require_auth: MAIL
    without AUTH gets 530 5.7.0. max_size: SIZE advertised and enforced (552
    5.3.4); max_rcpts: then 452 4.5.3; tls_min/tls_max: "TLSv1_2" or "TLSv1_3";
    timeout: idle seconds before a connection is closed; max_sessions:
    connections at once (more get 421). Replies always carry enhanced status
    codes (RFC 3463). connections counts every connection accepted."""

    def __init__(self, host="127.0.0.1", port=0, cert=None, key=None, ext=DEFAULT_EXT,
                 hostname="mx.remote.test", auth=None, auth_plaintext=False,
                 require_auth=False, max_size=10 * 1024 * 1024, max_rcpts=100,
                 tls_min="TLSv1_2", tls_max=None, timeout=30, max_sessions=50, start=True):
        self.host, self.port = host, port
        self.ext = {e.upper() for e in ext}
        self.hostname = hostname
        self.auth = dict(auth) if auth else None
        self.auth_plaintext, self.require_auth = auth_plaintext, require_auth
        self.max_size, self.max_rcpts = max_size, max_rcpts
        self.timeout, self.max_sessions = timeout, max_sessions
        self.tls_min, self.tls_max = tls_min, tls_max
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._rules = []
        self._messages = []
        self._sessions = []
        self._active = {}           # Session -> socket
        self._threads = []
        self._ids = itertools.count(1)
        self._listener = None
        self._accept_thread = None
        self._sni = threading.local()
        self.connections = 0        # connections accepted, ever
        self.ctx = None
        if cert:
            self.set_cert(cert, key)
        if start:
            self.start()

    # ---- knobs ----
    def set_cert(self, cert, key):
        """Serve this certificate (chain) from the next STARTTLS on."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = TLS_VERSIONS[self.tls_min]
        if self.tls_max:
            ctx.maximum_version = TLS_VERSIONS[self.tls_max]
        ctx.load_cert_chain(str(cert), str(key))
        ctx.sni_callback = self._on_sni
        with self._lock:
            self.ctx = ctx

    def _on_sni(self, sslsock, name, ctx):
        self._sni.name = name            # the handshake runs in the session's thread

    def fail(self, stage, reply=None, times=None, match=None, drop=False, delay=0.0):
        """From now on answer `reply` ("451 4.3.0 try later"; "\\n" separates the
        lines of a multi-line reply) at stage instead of the normal answer.
        Stages: connect (the greeting; 421 closes, 554 refuses all but QUIT),
        ehlo, helo, starttls, auth, mail, rcpt, data (the DATA command), bdat (each
        chunk), data_end (after the final dot or BDAT LAST), rset, noop, quit.
        times: how many times the rule fires (None: always). match: only when the
        stage's subject equals it (case-insensitive): the peer IP for connect, the
        name for ehlo/helo, the mechanism for auth, the sender for mail, data and
        bdat, the recipient for rcpt; for data_end a recipient of the transaction
        or any substring of the message; or a callable(subject) -> bool (data_end
        passes the Message). drop: close
        the connection without a reply. delay: seconds to wait first. A reply
        with code 421 closes the connection after it (RFC 5321 §3.8). The first
        matching rule, in the order they were added, fires."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
        if reply is None and not drop and not delay:
            raise ValueError("fail() needs a reply, drop=True or a delay")
        if reply is not None:
            format_reply(reply)                  # check it now, not in a session thread
        with self._lock:
            self._rules.append(_Rule(stage, reply, times, match, drop, delay))

    def delay(self, stage, seconds, times=None, match=None):
        """Wait seconds before the normal answer at stage (connect delays the
        greeting): for client timeout tests. Same stages and match as fail()."""
        self.fail(stage, None, times=times, match=match, delay=seconds)

    def clear(self):
        """Forget every fail()/delay() rule."""
        with self._lock:
            self._rules.clear()

    def set_down(self, down=True):
        """down: close the listening socket (connections are refused with RST;
        sessions already open go on). up: listen again on the same port."""
        if down:
            self._close_listener()
        elif self._listener is None:
            self._listen()

    # ---- records ----
    @property
    def messages(self):
        with self._lock:
            return list(self._messages)

    @property
    def sessions(self):
        with self._lock:
            return list(self._sessions)

    def reset(self):
        """Forget the messages and sessions recorded so far (rules stay)."""
        with self._lock:
            self._messages.clear()
            self._sessions = [s for s in self._sessions if not s.closed]

    def wait_for(self, n, timeout=10):
        """Waits until at least n messages were accepted; returns them all. Fails
        with the sessions' transcripts when they do not come in time."""
        return self._wait(lambda: len(self._messages) >= n, lambda: list(self._messages),
                          timeout, f"{n} message(s)")

    def wait_sessions(self, n, timeout=10):
        """Waits until at least n sessions have ended; returns every session."""
        return self._wait(lambda: sum(s.closed for s in self._sessions) >= n,
                          lambda: list(self._sessions), timeout, f"{n} closed session(s)")

    def _wait(self, ready, result, timeout, what):
        deadline = time.monotonic() + timeout
        with self._changed:
            while not ready():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"sink {self.host}:{self.port}: expected {what}; "
                                         f"have {len(self._messages)} message(s)\n" +
                                         self._describe())
                self._changed.wait(left)
            return result()

    def _describe(self):
        out = []
        for s in self._sessions[-10:]:
            out.append(repr(s))
            out += [f"  {d}: {t}" for d, t in s.transcript[-40:]]
        return "\n".join(out)

    def transcript(self):
        """Every session's dialogue as text, for assertion messages."""
        with self._lock:
            return self._describe()

    # ---- life ----
    def start(self):
        self._listen()
        return self

    def _listen(self):
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((self.host, self.port))
        ls.listen(64)
        self.port = ls.getsockname()[1]
        ls.settimeout(0.05)             # the accept loop looks at _listener this often
        self._listener = ls
        t = threading.Thread(target=self._accept_loop, args=(ls,), daemon=True,
                             name=f"smtpsink-{self.host}:{self.port}")
        self._accept_thread = t
        t.start()

    def _close_listener(self):
        ls, t = self._listener, self._accept_thread
        self._listener = self._accept_thread = None
        if ls is not None:
            ls.close()
            t.join(5)

    def _accept_loop(self, ls):
        while self._listener is ls:
            try:
                sock, peer = ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            sock.settimeout(self.timeout)
            sess = Session(next(self._ids), peer)
            with self._lock:
                self.connections += 1
                self._sessions.append(sess)
                busy = len(self._active) >= self.max_sessions
                self._active[sess] = sock
                self._threads = [t for t in self._threads if t.is_alive()]
            t = threading.Thread(target=self._serve, args=(sock, sess, busy), daemon=True)
            with self._lock:
                self._threads.append(t)
            t.start()

    def stop(self):
        """Stop listening, end every session, wait for the threads."""
        self._stopping.set()
        self._close_listener()
        with self._lock:
            socks = list(self._active.values())
            threads = list(self._threads)
        for s in socks:
            try:
                # The plain socket call: SSLSocket.shutdown would pull the TLS
                # state from under the session thread that is reading.
                socket.socket.shutdown(s, socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # ---- one session ----
    def _serve(self, sock, sess, busy):
        conn = _Conn(sock, sess, self._stopping)
        try:
            if busy:
                conn.reply("421 4.7.0 Too many connections, try later")
                conn.flush()
            else:
                _Session(self, conn, sess).run()
        except _Closed as e:
            sess.error = sess.error or str(e)
        except Exception as e:     # noqa: BLE001 - any end is recorded, none escapes
            sess.error = f"{type(e).__name__}: {e}"
        finally:
            try:
                conn.sock.close()
            except OSError:
                pass
            with self._changed:
                sess.closed = True
                self._active.pop(sess, None)
                self._changed.notify_all()

    def _rule(self, stage, subject):
        """The first live rule for stage that matches subject (spent once)."""
        with self._lock:
            for r in self._rules:
                if r.stage == stage and (r.times is None or r.fired < r.times) \
                        and r.matches(subject):
                    r.fired += 1
                    return r
        return None

    def _record(self, msg):
        with self._changed:
            msg.queue_id = f"S{len(self._messages) + 1:05d}"
            self._messages.append(msg)
            msg.session.messages += 1
            self._changed.notify_all()
        return msg.queue_id


# Parameters each extension allows (RFC 1870, 6152, 6531, 3461, 4954 §5).
MAIL_PARAMS = {"SIZE": "SIZE", "BODY": "8BITMIME", "SMTPUTF8": "SMTPUTF8", "RET": "DSN",
               "ENVID": "DSN", "AUTH": "AUTH"}
RCPT_PARAMS = {"NOTIFY": "DSN", "ORCPT": "DSN"}
PATH_RE = re.compile(r"(FROM|TO):\s?<([^<>]*)>(.*)$", re.IGNORECASE | re.DOTALL)


class _Session:
    """The SMTP dialogue of one connection: a command table and a transaction."""

    def __init__(self, sink, conn, sess):
        self.sink, self.conn, self.sess = sink, conn, sess
        self.bad = 0
        self.refused = False        # 554 greeting: everything but QUIT gets 503
        self.reset()

    def reset(self):
        self.mail = None            # (address, params) once MAIL was accepted
        self.rcpts = []
        self.chunks = bytearray()
        self.chunked = False
        self.chunk_failed = False
        self.too_big = False

    # -- helpers --
    def offered(self, keyword):
        s = self.sink
        if keyword == "STARTTLS":
            return "STARTTLS" in s.ext and s.ctx is not None and not self.sess.tls
        if keyword == "AUTH":
            return s.auth is not None and (self.sess.tls or s.auth_plaintext)
        return keyword in s.ext and self.sess.helo_verb == "EHLO"

    def scripted(self, stage, subject=None):
        """Applies a rule: True when it answered (or raised _Closed for drop)."""
        rule = self.sink._rule(stage, subject)
        if rule is None:
            return False
        if rule.delay and self.sink._stopping.wait(rule.delay):
            raise _Closed("sink stopped")
        if rule.drop:
            self.conn.flush()
            self.sess.error = f"dropped at {stage} by a rule"
            raise _Closed(self.sess.error)
        if rule.reply is None:
            return False
        self.answer(rule.reply)
        return True

    def answer(self, reply):
        self.conn.reply(reply)
        if reply.startswith("421"):
            self.conn.flush()
            raise _Closed("closed after 421")

    def read_command(self):
        raw, held = self.conn.line(MAX_LINE)
        if not raw.endswith(b"\n"):
            while not raw.endswith(b"\n"):           # drop the rest of the long line
                raw, _ = self.conn.line(MAX_LINE)
            return None, held
        return raw.rstrip(b"\r\n").decode("utf-8", "surrogateescape"), held

    # -- the loop --
    def run(self):
        s = self.sess
        if not self.scripted("connect", s.peer[0]):
            self.conn.reply(f"220 {self.sink.hostname} ESMTP smtpsink")
        elif self.conn.out and self.conn.out[0].startswith(b"554"):
            self.refused = True         # RFC 5321 §3.1
        # RFC 5321 §3.1: the client waits for the greeting.
        s.early_talker = self.conn.readable()
        first = True
        while True:
            line, held = self.read_command()
            held, first = held and not first, False
            if line is None:
                s.log("C", "<line too long>")
                self.error("500 5.5.2 Line too long")
                continue
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            s.log("C", "AUTH " + arg.split(" ")[0] if verb == "AUTH" else line)
            if held and verb:
                s.pipelined.append(verb)
            if self.refused and verb != "QUIT":
                self.answer("503 5.5.1 Service refused; only QUIT")
                continue
            handler = getattr(self, "cmd_" + verb.lower(), None) if verb.isalpha() else None
            if handler is None:
                self.error("500 5.5.1 Command unrecognized")
                continue
            handler(arg.strip())

    def error(self, reply):
        self.bad += 1
        if self.bad > MAX_BAD_COMMANDS:
            self.answer("421 4.7.0 Too many errors")
        self.conn.reply(reply)

    # -- commands --
    def cmd_ehlo(self, arg, verb="EHLO"):
        if not arg:
            return self.error(f"501 5.5.4 {verb} needs a domain")
        if self.scripted(verb.lower(), arg):
            return
        self.sess.ehlo, self.sess.helo_verb = arg, verb
        self.reset()
        if verb == "HELO":
            return self.conn.reply(f"250 {self.sink.hostname}")
        lines = [f"250-{self.sink.hostname} greets {arg}"]
        for kw in ("PIPELINING", "8BITMIME", "SMTPUTF8", "DSN", "CHUNKING",
                   "ENHANCEDSTATUSCODES", "STARTTLS", "AUTH", "SIZE"):
            if self.offered(kw):
                lines.append({"SIZE": f"SIZE {self.sink.max_size}",
                              "AUTH": "AUTH PLAIN LOGIN"}.get(kw, kw))
        known = set(MAIL_PARAMS.values()) | DEFAULT_EXT
        lines += sorted(e for e in self.sink.ext if e not in known)
        self.conn.reply("\n".join(lines))

    def cmd_helo(self, arg):
        self.cmd_ehlo(arg, "HELO")

    def cmd_starttls(self, arg):
        if self.sess.tls:
            return self.error("503 5.5.1 TLS already active")
        if not self.offered("STARTTLS") or self.sess.helo_verb != "EHLO":
            return self.error("502 5.5.1 STARTTLS not offered")
        if arg:
            return self.error("501 5.5.4 STARTTLS takes no argument")
        if self.scripted("starttls"):
            return
        self.conn.reply("220 2.0.0 Ready to start TLS")
        self.conn.flush()
        # RFC 3207 §4.2: anything the client sent after STARTTLS is discarded.
        self.sess.starttls_leftover = len(self.conn.buf)
        self.conn.buf.clear()
        self.sink._sni.name = None
        with self.sink._lock:
            ctx = self.sink.ctx
        try:
            tls = ctx.wrap_socket(self.conn.sock, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.sess.tls_error = str(e)
            raise _Closed(f"TLS handshake failed: {e}")
        self.conn.sock = tls
        with self.sink._lock:
            self.sink._active[self.sess] = tls     # stop() shuts this one down now
        s = self.sess
        s.tls, s.tls_version, s.tls_cipher = True, tls.version(), tls.cipher()[0]
        s.sni = self.sink._sni.name
        s.ehlo = s.helo_verb = s.auth_user = None   # RFC 3207 §4.2: start again from EHLO
        self.reset()

    def cmd_auth(self, arg):
        s, sink = self.sess, self.sink
        parts = arg.split()
        if sink.auth is None:
            return self.error("502 5.5.1 AUTH not available")
        if not self.offered("AUTH"):        # RFC 4954 §6
            return self.error("538 5.7.11 Encryption required for requested authentication "
                              "mechanism")
        if s.helo_verb != "EHLO" or s.auth_user is not None or self.mail is not None:
            return self.error("503 5.5.1 AUTH not allowed now")
        if not parts or len(parts) > 2:
            return self.error("501 5.5.4 Syntax: AUTH mechanism [initial-response]")
        if parts[0].upper() not in ("PLAIN", "LOGIN"):
            return self.error("504 5.5.4 Unrecognized authentication type")
        mech = parts[0].upper()
        if self.scripted("auth", mech):
            return
        try:
            if mech == "PLAIN":
                resp = parts[1] if len(parts) > 1 else self.challenge("")
                fields = self.b64(resp).split(b"\0")
                if len(fields) != 3:
                    return self.error("501 5.5.2 Malformed PLAIN response")
                user, pw = fields[1].decode("utf-8", "replace"), fields[2].decode("utf-8",
                                                                                  "replace")
            else:
                user = self.b64(parts[1] if len(parts) > 1 else
                                self.challenge("VXNlcm5hbWU6")).decode("utf-8", "replace")
                pw = self.b64(self.challenge("UGFzc3dvcmQ6")).decode("utf-8", "replace")
        except _Cancel as e:
            return self.error(str(e))
        ok = sink.auth.get(user) == pw
        s.auth_attempts.append((mech, user, ok))
        if not ok:
            return self.error("535 5.7.8 Authentication credentials invalid")
        s.auth_user = user
        self.conn.reply("235 2.7.0 Authentication successful")

    def challenge(self, text):
        self.conn.reply(f"334 {text}".rstrip() if text else "334 ")
        line, _ = self.read_command()
        self.sess.log("C", "<auth response>")
        if line is None:
            raise _Cancel("500 5.5.6 Authentication exchange line too long")
        if line == "*":                     # RFC 4954 §4
            raise _Cancel("501 5.0.0 Authentication cancelled")
        return line

    @staticmethod
    def b64(text):
        if text == "=":
            return b""
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise _Cancel("501 5.5.2 Cannot decode response")

    def parse_path(self, arg, key):
        m = PATH_RE.match(arg)
        if not m or m.group(1).upper() != key:
            return None
        params = {}
        for p in m.group(3).split():
            k, eq, v = p.partition("=")
            params[k.upper()] = v if eq else True
        return m.group(2), params

    def check_params(self, params, table):
        """None, or the reply refusing a parameter that was not offered."""
        for k in params:
            ext = table.get(k)
            if ext is None or not self.offered(ext):
                return f"555 5.5.4 {k} parameter not recognized"
        return None

    def cmd_mail(self, arg):
        s, sink = self.sess, self.sink
        if s.helo_verb is None:
            return self.error("503 5.5.1 Say EHLO first")
        if self.mail is not None:
            return self.error("503 5.5.1 Nested MAIL command")
        if sink.require_auth and s.auth_user is None:
            return self.error("530 5.7.0 Authentication required")
        parsed = self.parse_path(arg, "FROM")
        if parsed is None:
            return self.error("501 5.5.4 Syntax: MAIL FROM:<address>")
        addr, params = parsed
        bad = self.check_params(params, MAIL_PARAMS)
        if bad:
            return self.error(bad)
        if "SIZE" in params:
            if not str(params["SIZE"]).isdigit():
                return self.error("501 5.5.4 Bad SIZE value")
            if int(params["SIZE"]) > sink.max_size:           # RFC 1870
                return self.conn.reply("552 5.3.4 Message size exceeds fixed maximum")
        if "BODY" in params and str(params["BODY"]).upper() not in ("7BIT", "8BITMIME"):
            return self.error("501 5.5.4 Bad BODY value")
        if "RET" in params and str(params["RET"]).upper() not in ("FULL", "HDRS"):
            return self.error("501 5.5.4 Bad RET value")
        if not addr.isascii() and "SMTPUTF8" not in params:
            return self.conn.reply("553 5.6.7 Non-ASCII address requires SMTPUTF8")
        if self.scripted("mail", addr):
            s.rejected.append(("mail", addr, self.conn.out[-1].decode().strip()))
            return
        self.mail = (addr, params)
        self.conn.reply("250 2.1.0 Sender OK")

    def cmd_rcpt(self, arg):
        s, sink = self.sess, self.sink
        if self.mail is None:
            return self.error("503 5.5.1 Need MAIL first")
        parsed = self.parse_path(arg, "TO")
        if parsed is None:
            return self.error("501 5.5.4 Syntax: RCPT TO:<address>")
        addr, params = parsed
        bad = self.check_params(params, RCPT_PARAMS)
        if bad:
            return self.error(bad)
        notify = str(params.get("NOTIFY", "NEVER")).upper().split(",")
        if "NOTIFY" in params and (not set(notify) <= {"SUCCESS", "FAILURE", "DELAY", "NEVER"}
                                   or ("NEVER" in notify and len(notify) > 1)):
            return self.error("501 5.5.4 Bad NOTIFY value")           # RFC 3461 §4.1
        if not addr.isascii() and "SMTPUTF8" not in self.mail[1]:
            return self.conn.reply("553 5.6.7 Non-ASCII address requires SMTPUTF8")
        if len(self.rcpts) >= sink.max_rcpts:                      # RFC 5321 §4.5.3.1.10
            s.rejected.append(("rcpt", addr, "452 4.5.3 Too many recipients"))
            return self.conn.reply("452 4.5.3 Too many recipients")
        if self.scripted("rcpt", addr):
            s.rejected.append(("rcpt", addr, self.conn.out[-1].decode().strip()))
            return
        self.rcpts.append((addr, params))
        self.conn.reply("250 2.1.5 Recipient OK")

    def cmd_data(self, arg):
        if arg:
            return self.error("501 5.5.4 DATA takes no argument")
        if self.mail is None or self.chunked:
            return self.error("503 5.5.1 Bad sequence of commands")
        if not self.rcpts:                                         # RFC 2920 §3.1
            return self.error("554 5.5.1 No valid recipients")
        if self.scripted("data", self.mail[0]):
            return
        self.conn.reply("354 End data with <CR><LF>.<CR><LF>")
        data, at_start, early = bytearray(), True, False
        while True:
            piece, held = self.conn.line(MAX_DATA_LINE)
            early = early or held
            if at_start and piece == b".\r\n":                     # RFC 5321 §4.5.2
                break
            if at_start and piece.startswith(b"."):
                piece = piece[1:]
            at_start = piece.endswith(b"\r\n")
            if len(data) + len(piece) > self.sink.max_size:
                self.too_big = True
            else:
                data += piece
        if early:
            self.sess.pipelined.append("<data before 354>")
        self.finish(bytes(data), bdat=False)

    def cmd_bdat(self, arg):
        if not self.offered("CHUNKING"):
            return self.error("500 5.5.1 Command unrecognized")
        m = re.fullmatch(r"([0-9]{1,15})( +LAST)?", arg, re.IGNORECASE)
        if not m:
            return self.error("501 5.5.4 Syntax: BDAT size [LAST]")
        size, last = int(m.group(1)), m.group(2) is not None
        room = max(0, self.sink.max_size - len(self.chunks))
        chunk = self.conn.exact(size, room)                        # RFC 3030 §2: always read
        self.sess.log("C", f"<{size} octets>")
        if self.mail is None or not self.rcpts or self.chunk_failed:
            self.chunk_failed = self.mail is not None
            return self.error("503 5.5.1 Bad sequence of commands")
        self.chunked = True
        self.too_big = self.too_big or len(chunk) < size
        self.chunks += chunk
        if self.scripted("bdat", self.mail[0]):
            self.chunk_failed = True
            return
        if not last:
            return self.conn.reply(f"250 2.0.0 {size} octets received")
        self.finish(bytes(self.chunks), bdat=True)

    def finish(self, data, bdat):
        s = self.sess
        if self.too_big:
            self.reset()
            return self.conn.reply("552 5.3.4 Message size exceeds fixed maximum")
        msg = Message(mail_from=self.mail[0], mail_params=self.mail[1],
                      rcpts=[a for a, _ in self.rcpts], rcpt_params=[p for _, p in self.rcpts],
                      data=data, bdat=bdat, tls=s.tls, tls_version=s.tls_version,
                      tls_cipher=s.tls_cipher, sni=s.sni, peer=s.peer, ehlo=s.ehlo,
                      helo_verb=s.helo_verb, auth_user=s.auth_user, session=s,
                      received=time.time(), queue_id=None)
        self.reset()
        if self.scripted("data_end", msg):
            s.rejected.append(("data_end", ",".join(msg.rcpts),
                               self.conn.out[-1].decode().strip()))
            return
        qid = self.sink._record(msg)
        self.conn.reply(f"250 2.0.0 Ok: queued as {qid}")

    def cmd_rset(self, arg):
        if self.scripted("rset"):
            return
        self.reset()
        self.conn.reply("250 2.0.0 Ok")

    def cmd_noop(self, arg):
        if not self.scripted("noop"):
            self.conn.reply("250 2.0.0 Ok")

    def cmd_vrfy(self, arg):
        self.conn.reply("252 2.5.2 Cannot VRFY user")

    def cmd_help(self, arg):
        self.conn.reply("214 2.0.0 https://www.rfc-editor.org/rfc/rfc5321")

    def cmd_quit(self, arg):
        self.sess.quit = True
        if not self.scripted("quit"):
            self.conn.reply("221 2.0.0 Bye")
        self.conn.flush()
        raise _Closed("QUIT")


class _Cancel(Exception):
    """An AUTH exchange ends with this reply."""
