"""A small HTTPS server for the MTA-STS tests: serves fixed answers per path,
counts the requests, and records the Host header and the TLS SNI name each
client sent (RFC 8461 §3.3: the policy is fetched from
https://mta-sts.<domain>/.well-known/mta-sts.txt, the certificate must be valid
for that name, 3xx redirects are not followed and the media type is text/plain).

    ca = TestCA(tmpdir)
    cert, key = ca.issue(["mta-sts.remote.test"])
    web = HttpsServer("127.0.0.4", 0, cert, key,
                      routes={STS_PATH: (200, "text/plain", sts_policy("enforce",
                                                                       ["mx1.remote.test"]))})
    ... rampartd fetches the policy (its MTA-STS port setting points at web.port) ...
    assert web.count(STS_PATH) == 1 and web.requests[0].sni == "mta-sts.remote.test"
    web.stop()

Stdlib only (http.server, ssl), a thread per connection; the TLS handshake runs
in that thread, so a stalled client holds up nobody else. HTTP/1.1 answers with
Content-Length (or chunked) and "Connection: close". GET and HEAD only.
"""
import http.server
import ssl
import sys
import threading
import time

STS_PATH = "/.well-known/mta-sts.txt"


def sts_policy(mode="enforce", mx=("mx1.remote.test",), max_age=86400, version="STSv1",
               eol="\r\n"):
    """An MTA-STS policy body (RFC 8461 §3.2): version, mode (enforce, testing,
    none), one mx line per pattern ("*.remote.test" allowed), max_age seconds."""
    lines = [f"version: {version}", f"mode: {mode}"] + [f"mx: {m}" for m in mx] + \
            [f"max_age: {max_age}"]
    return eol.join(lines) + eol


def sts_txt(policy_id):
    """The _mta-sts TXT rdata (RFC 8461 §3.1), quoted for Unbound: '"v=STSv1; id=..."'."""
    return f'"v=STSv1; id={policy_id};"'


class Route:
    """What one path answers: status, content_type, body (str or bytes), extra
    headers {name: value}, chunked (Transfer-Encoding: chunked instead of
    Content-Length), delay (seconds before the answer)."""

    def __init__(self, status=200, content_type="text/plain", body="", headers=None,
                 chunked=False, delay=0.0):
        self.status, self.content_type = status, content_type
        self.body = body.encode() if isinstance(body, str) else bytes(body)
        self.headers = dict(headers or {})
        self.chunked, self.delay = chunked, delay


class Request:
    """One request: method, path, host (the Host header), sni (the TLS server
    name), peer (ip, port), headers (an email.message.Message), status (what we
    answered), time."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __repr__(self):
        return f"Request({self.method} {self.path} host={self.host!r} sni={self.sni!r} " \
               f"-> {self.status})"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "httpsd/1"
    timeout = 10

    def setup(self):
        srv = self.server.owner
        srv._sni.name = None
        with srv._lock:
            ctx = srv.ctx
        self.request.settimeout(self.timeout)
        self.request = ctx.wrap_socket(self.request, server_side=True)
        self.sni = srv._sni.name
        super().setup()

    def finish(self):
        try:
            super().finish()
        finally:
            self.request.close()        # the TLS socket; the server only knows the raw one

    def log_message(self, fmt, *args):
        pass                    # the records say what happened

    def do_HEAD(self):
        self.answer(head=True)

    def do_GET(self):
        self.answer(head=False)

    def answer(self, head):
        srv = self.server.owner
        path = self.path
        with srv._lock:
            route = srv._routes.get(path)
        if route is None:
            route = Route(404, "text/plain", "not found\n")
        rec = Request(method=self.command, path=path, host=self.headers.get("Host"),
                      sni=self.sni, peer=self.client_address, headers=self.headers,
                      status=route.status, time=time.time())
        with srv._changed:
            srv._requests.append(rec)
            srv._hits[path] = srv._hits.get(path, 0) + 1
            srv._changed.notify_all()
        if route.delay and srv._stopping.wait(route.delay):
            return
        self.close_connection = True
        self.send_response(route.status)
        if route.content_type is not None:
            self.send_header("Content-Type", route.content_type)
        for k, v in route.headers.items():
            self.send_header(k, v)
        if route.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(route.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if head:
            return
        if route.chunked:
            for i in range(0, len(route.body), 16):
                piece = route.body[i:i + 16]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(route.body)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        err = sys.exc_info()[1]
        with self.owner._lock:
            self.owner.errors.append((client_address, f"{type(err).__name__}: {err}"))


class HttpsServer:
    """An HTTPS server on host:port (port 0: any free port; see .port) with cert and
    key (PEM; a chain file works). routes: {path: (status, content_type, body)}
    or {path: Route(...)}; any other path answers 404. tls_min: "TLSv1_2" or
    "TLSv1_3". Records: hits {path: count}, requests [Request], errors [(peer,
    text)] for connections that failed (a client refusing our certificate
    shows up here as an SSL alert)."""

    def __init__(self, host="127.0.0.1", port=0, cert=None, key=None, routes=None,
                 tls_min="TLSv1_2", start=True):
        self.host, self.port = host, port
        self.tls_min = tls_min
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._sni = threading.local()
        self._routes = {}
        self._hits = {}
        self._requests = []
        self.errors = []
        self._httpd = None
        self._thread = None
        self.ctx = None
        self.set_cert(cert, key)
        for path, r in (routes or {}).items():
            if isinstance(r, Route):
                self._routes[path] = r
            else:
                self.set_route(path, *r)
        if start:
            self.start()

    # ---- knobs ----
    def set_cert(self, cert, key):
        """Serve this certificate from the next connection on."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = {"TLSv1_2": ssl.TLSVersion.TLSv1_2,
                               "TLSv1_3": ssl.TLSVersion.TLSv1_3}[self.tls_min]
        ctx.load_cert_chain(str(cert), str(key))
        ctx.sni_callback = self._on_sni
        with self._lock:
            self.ctx = ctx

    def _on_sni(self, sslsock, name, ctx):
        self._sni.name = name

    def set_route(self, path, status=200, content_type="text/plain", body="", headers=None,
                  chunked=False, delay=0.0):
        """path answers status with body of content_type (None: no Content-Type
        header); see Route for the rest."""
        r = Route(status, content_type, body, headers, chunked, delay)
        with self._lock:
            self._routes[path] = r

    def redirect(self, path, location, status=301):
        """path answers a redirect to location (RFC 8461 §3.3: not to be followed)."""
        self.set_route(path, status, "text/plain", "moved\n", {"Location": location})

    def remove_route(self, path):
        """path answers 404 from now on."""
        with self._lock:
            self._routes.pop(path, None)

    # ---- records ----
    @property
    def hits(self):
        with self._lock:
            return dict(self._hits)

    def count(self, path=STS_PATH):
        """How many requests path has had."""
        with self._lock:
            return self._hits.get(path, 0)

    @property
    def requests(self):
        with self._lock:
            return list(self._requests)

    def wait_requests(self, n, path=STS_PATH, timeout=10):
        """Waits until path has had at least n requests; returns all requests."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._hits.get(path, 0) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"https {self.host}:{self.port}: {path} had "
                                         f"{self._hits.get(path, 0)} request(s), expected "
                                         f"{n}; requests {self._requests}, errors "
                                         f"{self.errors}")
                self._changed.wait(left)
            return list(self._requests)

    # ---- life ----
    def start(self):
        self._httpd = _Server((self.host, self.port), _Handler)
        self._httpd.owner = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True,
                                        name=f"httpsd-{self.host}:{self.port}")
        self._thread.start()
        return self

    def stop(self):
        """Stop listening and wait for the server thread."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(5)
            self._httpd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
