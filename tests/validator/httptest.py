# httptest.py: helpers for the tests of the validator's HTTP check endpoint (tests/validator/
# http.py, tests/nginx/nginx.py): the daemon started with http_listen on a free loopback port
# (port 0: the daemon logs the port it got), and raw HTTP/1.1 over a socket. Stdlib only.
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vtest import Env  # noqa: E402,F401


def http_port(env, timeout=10):
    """The TCP port the daemon's HTTP endpoint listens on (from its log)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = re.search(r"HTTP check endpoint listening on (?:127\.0\.0\.1|\[::1\]):(\d+)",
                      env.log())
        if m:
            return int(m.group(1))
        time.sleep(0.02)
    raise RuntimeError("no HTTP port in the log: " + env.log())


class Response:
    def __init__(self, status, headers, body, raw_head):
        self.status = status
        self.headers = headers  # {lower-case name: value}; repeated names joined by ", "
        self.body = body
        self.raw_head = raw_head

    def h(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return "<%d %r>" % (self.status, self.headers)


class HttpConn:
    """One HTTP/1.1 connection (TCP host:port, or a Unix socket path)."""

    def __init__(self, addr, timeout=5):
        if isinstance(addr, str):
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(addr)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.s.sendall(data)

    def _fill(self):
        try:
            d = self.s.recv(65536)
        except ConnectionResetError:
            d = b""
        if not d:
            return False
        self.buf += d
        return True

    def response(self, head_only=False):
        """The next response; None at EOF before any byte of it."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                if self.buf:
                    raise RuntimeError("truncated response: %r" % self.buf)
                return None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            k = k.strip().lower()
            v = v.strip()
            headers[k] = headers[k] + ", " + v if k in headers else v
        n = 0 if head_only else int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            if not self._fill():
                break
        body, self.buf = self.buf[:n], self.buf[n:]
        return Response(status, headers, body, lines)

    def eof(self):
        """True when the server closed the connection (after what was buffered)."""
        if self.buf:
            return False
        try:
            return not self._fill()
        except socket.timeout:
            return False

    def request(self, method="GET", path="/authz", headers=None, body=b"", version="1.1",
                host="keywarden"):
        h = ["%s %s HTTP/%s" % (method, path, version)]
        if host is not None:
            h.append("Host: " + host)
        for k, v in (headers or {}).items():
            h.append("%s: %s" % (k, v))
        if body:
            h.append("Content-Length: %d" % len(body))
        data = ("\r\n".join(h) + "\r\n\r\n").encode() + body
        self.send(data)
        return self.response(head_only=(method == "HEAD"))

    def close(self):
        self.s.close()


def apikey(token):
    return {"Authorization": "APIKey " + token}


def free_port():
    """A TCP port free on 127.0.0.1 now (for programs that cannot listen on port 0 and say
    which port they got, like nginx)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
