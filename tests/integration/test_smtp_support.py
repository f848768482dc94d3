"""Shared helpers for the test_smtp_*.py integration tests (and a self-test of them).

SMTPRaw is a byte-exact SMTP client over a plain socket (optionally TLS): it
writes exactly what a test gives it and parses replies (RFC 5321 §4.2, multi-line
replies with "-" continuation) so a test can pipeline, smuggle and misbehave.
"""
import email.parser
import email.policy
import re
import socket
import ssl
import time

from conftest import client_tls_context

HOST = "127.0.0.1"


class Reply:
    def __init__(self, code, lines):
        self.code = code
        self.lines = lines            # text after "NNN-" / "NNN " of each line

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def enhanced(self):
        """The RFC 2034 enhanced status code at the start of the text, or None."""
        m = re.match(r"([245])\.(\d{1,3})\.(\d{1,3})\b", self.lines[0] if self.lines else "")
        return m.group(0) if m else None

    def __repr__(self):
        return f"Reply({self.code}, {self.lines!r})"


def parse_reply_lines(raw_lines):
    """Turns the lines of one reply (bytes, without CRLF) into a Reply."""
    code = None
    texts = []
    for i, ln in enumerate(raw_lines):
        s = ln.decode("utf-8", "replace")
        if len(s) < 3 or not s[:3].isdigit():
            raise AssertionError(f"malformed reply line {s!r}")
        if code is None:
            code = int(s[:3])
        elif int(s[:3]) != code:
            raise AssertionError(f"reply code changed inside a multi-line reply: {raw_lines!r}")
        last = len(s) == 3 or s[3] == " "
        if not last and s[3] != "-":
            raise AssertionError(f"malformed reply line {s!r}")
        if last != (i == len(raw_lines) - 1):
            raise AssertionError(f"reply continuation wrong: {raw_lines!r}")
        texts.append(s[4:])
    return Reply(code, texts)


class SMTPRaw:
    """A socket-level SMTP client: exact bytes out, parsed replies in."""

    def __init__(self, port, tls=False, timeout=5.0, greet=True):
        self.timeout = timeout
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self._buf = b""
        self._pos = 0           # start of the unread part of _buf (no quadratic copies)
        self.eof = False
        if tls:
            self.sock = client_tls_context().wrap_socket(self.sock, server_hostname="mx.example.test")
        self.greeting = self.reply() if greet else None

    # -- input --
    def _fill(self, timeout=None):
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            data = b""
        if not data:
            self.eof = True
            raise EOFError("server closed the connection")
        self._buf = self._buf[self._pos:] + data
        self._pos = 0

    @property
    def buf(self):
        """What has been received and not read yet."""
        return self._buf[self._pos:]

    def line(self, timeout=None):
        while True:
            i = self._buf.find(b"\r\n", self._pos)
            if i >= 0:
                break
            self._fill(timeout)
        ln = self._buf[self._pos:i]
        self._pos = i + 2
        return ln

    def reply(self, timeout=None):
        lines = [self.line(timeout)]
        while len(lines[-1]) > 3 and lines[-1][3:4] == b"-":
            lines.append(self.line(timeout))
        return parse_reply_lines(lines)

    def replies(self, n, timeout=None):
        return [self.reply(timeout) for _ in range(n)]

    def silent(self, wait=0.5):
        """True if the server sends nothing (and does not close) within wait seconds."""
        if self._pos < len(self._buf):
            return False
        try:
            self._fill(wait)
        except (socket.timeout, TimeoutError):
            return True
        except EOFError:
            return False
        return False

    def closed(self, timeout=5.0):
        """True when the server closes the connection within timeout (pending data is skipped)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                self._fill(max(0.05, deadline - time.time()))
            except EOFError:
                return True
            except (socket.timeout, TimeoutError):
                return False
            except OSError:
                return True
        return False

    # -- output --
    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def cmd(self, line, timeout=None):
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.reply(timeout)

    def ehlo(self, name="client.example.net"):
        r = self.cmd(f"EHLO {name}")
        assert r.code == 250, r
        return r

    def starttls(self):
        r = self.cmd("STARTTLS")
        assert r.code == 220, r
        assert not self.buf, f"data after the 220 of STARTTLS: {self.buf!r}"
        self.sock = client_tls_context().wrap_socket(self.sock, server_hostname="mx.example.test")
        return r

    def quit(self):
        try:
            r = self.cmd("QUIT")
            assert r.code == 221, r
        finally:
            self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def queued_id(reply):
    """The spool id from "250 2.0.0 Ok: queued as ID"."""
    assert reply.code == 250, reply
    m = re.search(r"queued as (\S+)", reply.text)
    assert m, reply
    return m.group(1)


def message(subject, body="Hello.\r\n", frm="sender@client.example.net",
            to="alice@example.test", extra=""):
    """A small RFC 5322 message (str, CRLF line ends), body not dot-stuffed."""
    return (f"From: <{frm}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@client.example.net>\r\n{extra}\r\n{body}")


def dot_stuff(data: bytes) -> bytes:
    """RFC 5321 §4.5.2 transparency, plus the terminator."""
    out = b"\r\n".join((b"." + ln if ln.startswith(b".") else ln) for ln in data.split(b"\r\n"))
    if not out.endswith(b"\r\n"):
        out += b"\r\n"
    return out + b".\r\n"


def parse_message(raw: bytes):
    return email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw)


def body_of(raw: bytes) -> bytes:
    """The body of a stored message: what follows the first empty line."""
    i = raw.find(b"\r\n\r\n")
    if i >= 0:
        return raw[i + 4:]
    i = raw.find(b"\n\n")
    assert i >= 0, raw[:400]
    return raw[i + 2:]


def settle(server, timeout=10):
    """Waits until the queue is empty (everything that got 250 was delivered)."""
    assert server.queue_empty(timeout), "queue did not drain:\n" + server.log_text()[-3000:]


def spool_files(server, sub):
    d = server.spool / sub
    if not d.exists():
        return []
    return [p for p in d.rglob("*") if p.is_file()]


def all_messages(server):
    """Every file under any Maildir/new or Maildir/tmp of the mail store."""
    if not server.mail.exists():
        return []
    return [p for p in server.mail.rglob("*") if p.is_file() and p.parent.name in ("new", "tmp", "cur")]


# -- self-test of the reply parser (no server needed) --

def test_parse_reply_lines_multiline():
    r = parse_reply_lines([b"250-mx.example.test", b"250-PIPELINING", b"250 DSN"])
    assert r.code == 250 and r.lines == ["mx.example.test", "PIPELINING", "DSN"]
    assert parse_reply_lines([b"550 5.1.1 <x@y>: no"]).enhanced == "5.1.1"


def test_dot_stuff():
    assert dot_stuff(b"a\r\n.b\r\n..c\r\n.\r\n") == b"a\r\n..b\r\n...c\r\n..\r\n.\r\n"
