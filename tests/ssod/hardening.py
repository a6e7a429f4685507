"""hardening.py: keywarden-ssod's HTTP listener under misuse: bodies over [sso] max_body (413,
announced or chunked), wrong methods (405 with Allow), unknown paths (404), malformed form
encoding and missing fields (400), other media types (415), slow clients (a stalled client
does not block another one, and is cut after [sso] timeout), [sso] max_connections
bounding the connections served at once, and "trickling" clients (a byte now and then, never
idle) cut at the request deadline of 3 x [sso] timeout, so that they cannot hold every
connection slot."""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ssodtest as st  # noqa: E402

MAX_BODY = 8192
TIMEOUT = 2
MAX_CONN = 4
TRICKLE_TIMEOUT = 2
TRICKLE_CONN = 2
DEADLINE = 3 * TRICKLE_TIMEOUT


def main():
    tap = st.Tap()
    s = st.Ssod({"max_body": str(MAX_BODY), "timeout": str(TIMEOUT),
                 "max_connections": str(MAX_CONN)})
    try:
        s.start()
        run(tap, s)
    finally:
        if os.environ.get("KW_KEEP"):
            print(s.log())
        s.cleanup()
    trickle(tap)
    tap.done()


def raw(s, data, wait=5.0):
    """Sends data on a new connection; returns what comes back until close or wait."""
    c = s.connect(wait)
    c.sendall(data)
    out = b""
    try:
        while True:
            b = c.recv(65536)
            if not b:
                break
            out += b
    except socket.timeout:
        pass
    c.close()
    return out


def read_to_close(sock):
    """Reads until the peer closes (True) or the socket's timeout passes (False); returns
    (what came, closed). A reset counts as closed."""
    got = b""
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return got, True
            got += data
    except ConnectionResetError:
        return got, True
    except socket.timeout:
        return got, False


def run(tap, s):
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    big = "SAMLResponse=" + "A" * (MAX_BODY + 100)
    status, hdrs, body = s.request("POST", "/saml/acs", big)
    tap.ok(status == 413, "a body over max_body (Content-Length): 413", (status, body))
    c = st.http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    try:
        c.request("POST", "/saml/acs", body=iter([b"SAMLResponse="] + [b"A" * 1000] * 20),
                  headers=dict(form, **{"Transfer-Encoding": "chunked"}), encode_chunked=True)
        r = c.getresponse()
        got = r.status
    except (OSError, st.http.client.HTTPException) as e:
        got = e
    c.close()
    tap.ok(got == 413, "a chunked body growing over max_body: 413", got)
    status, hdrs, body = s.request("POST", "/saml/acs", "SAMLResponse=" + "A" * 100)
    tap.ok(status == 400 and hdrs.get("x-keywarden-reason") == "xml",
           "a body under max_body still gets to the verifier (400 xml)", (status, hdrs))

    for method, path, allow in (("GET", "/saml/acs", "POST"), ("PUT", "/saml/slo", "POST"),
                                ("POST", "/saml/metadata", "GET, HEAD"),
                                ("DELETE", "/healthz", "GET, HEAD")):
        status, hdrs, body = s.request(method, path, "" if method != "GET" else None)
        tap.ok(status == 405 and hdrs.get("allow") == allow,
               "%s %s: 405, Allow: %s" % (method, path, allow), (status, hdrs))
    status, hdrs, body = s.request("HEAD", "/healthz")
    tap.ok(status == 200, "HEAD /healthz: 200", status)
    for path in ("/saml", "/saml/acs/", "/saml/acs/../metadata", "/x%00y"):
        status, hdrs, body = s.request("GET", path)
        tap.ok(status == 404, "GET %s: 404" % path, (status, body))
    status, hdrs, body = s.request("GET", "/")
    tap.ok(status == 303 and hdrs.get("location") == "/tokens",
           "GET /: 303 to the API tokens page (issue 12)", (status, hdrs))

    for text, what in (("SAMLResponse=%zz", "a bad percent escape"),
                       ("SAMLResponse=abc%4", "a cut percent escape"),
                       ("SAMLResponse=a%00b", "an encoded NUL"),
                       ("SAMLResponse", "a field without '='"),
                       ("SAMLResponse=a&&RelayState=b", "an empty pair"),
                       ("SAMLResponse=PHgvPg%3D%3D&SAMLResponse=PHgvPg%3D%3D", "the field twice"),
                       ("RelayState=x", "no SAMLResponse field"),
                       ("", "an empty body")):
        status, hdrs, body = s.request("POST", "/saml/acs", text)
        tap.ok(status == 400, "malformed form (%s): 400" % what, (status, body))
    status, hdrs, body = s.request("POST", "/saml/slo", "SAMLResponse=PHgvPg%3D%3D")
    tap.ok(status == 400 and "missing form field SAMLRequest" in body,
           "/saml/slo without SAMLRequest: 400", (status, body))
    status, hdrs, body = s.request("POST", "/saml/acs", "<samlp:Response/>",
                                   {"Content-Type": "text/xml"})
    tap.ok(status == 415, "a body that is not a urlencoded form: 415", (status, body))
    status, hdrs, body = s.request("POST", "/saml/acs", "SAMLResponse=x",
                                   {"Content-Type": "application/x-www-form-urlencodedX"})
    tap.ok(status == 415, "a look-alike media type: 415", (status, body))

    # ---- slow clients ----
    slow = s.connect(TIMEOUT * 4)
    slow.sendall(b"POST /saml/acs HTTP/1.1\r\nHost: x\r\nContent-Type: application/"
                 b"x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nSAMLRes")
    slow_headers = s.connect(TIMEOUT * 4)
    slow_headers.sendall(b"GET /healthz HTTP/1.1\r\nHo")
    t0 = time.monotonic()
    status, hdrs, body = s.request("GET", "/healthz", timeout=5)
    t1 = time.monotonic() - t0
    tap.ok(status == 200 and t1 < 1.0,
           "two stalled clients (mid-body, mid-headers) do not block another request "
           "(%.3f s)" % t1, (status, t1))
    status, hdrs, body = s.post("/saml/acs", {"SAMLResponse": "PHgvPg=="})
    tap.ok(status == 400, "nor a SAML POST of a third client", status)
    for sock, what in ((slow, "mid-body"), (slow_headers, "mid-headers")):
        got, closed = read_to_close(sock)
        closed_after = time.monotonic() - t0
        # cut: closed (an error answer before the close is fine), within the idle timeout
        cut = closed and (got == b"" or got.startswith(b"HTTP/1.1 4")) and \
            TIMEOUT - 0.5 <= closed_after <= TIMEOUT + 3
        tap.ok(cut, "the client stalled %s is cut after the %d s timeout (%.1f s)" %
               (what, TIMEOUT, closed_after), (closed, got, closed_after))
        sock.close()
    time.sleep(0.2)
    tap.ok("connection closed (timeout)" in s.log(),
           "the cut is logged with its peer and request", s.log()[-1500:])

    # ---- max_connections ----
    held = [s.connect(TIMEOUT * 4) for _ in range(MAX_CONN)]
    for h in held:
        h.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never end
    time.sleep(0.3)
    extra = s.connect(TIMEOUT * 4)
    extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    extra.settimeout(TIMEOUT * 0.5)
    try:
        first = extra.recv(4096)
        served_while_full = first.startswith(b"HTTP/1.1 200")
    except socket.timeout:
        served_while_full = False
    tap.ok(not served_while_full,
           "with %d connections held, one more is not served" % MAX_CONN)
    extra.close()
    for h in held:
        h.close()
    time.sleep(0.3)
    status, hdrs, body = s.request("GET", "/healthz", timeout=TIMEOUT * 3)
    tap.ok(status == 200, "once they are gone, requests are served again", status)
    tap.ok(s.proc.poll() is None, "keywarden-ssod is still running")
    rc = s.stop()
    tap.ok(rc == 0, "and stops cleanly on SIGTERM (exit 0)", rc)


def trickle(tap):
    """max_connections clients that never go idle: one sends its headers a byte at a time, one
    its body. The idle timeout never cuts them; the request deadline must."""
    s = st.Ssod({"timeout": str(TRICKLE_TIMEOUT), "max_connections": str(TRICKLE_CONN)})
    results = {}

    def trickler(name, head, byte):
        c = s.connect(30)
        t0 = time.monotonic()
        got, closed = b"", False
        try:
            c.sendall(head)
            c.settimeout(0.25)  # a byte every 0.25 s, well under the idle timeout
            while time.monotonic() - t0 < 20:
                c.send(byte)
                try:
                    data = c.recv(4096)
                except socket.timeout:
                    continue
                if not data:
                    closed = True
                    break
                got += data
        except OSError:  # reset, broken pipe
            closed = True
        results[name] = (closed, time.monotonic() - t0, got)
        c.close()

    try:
        s.start()
        threads = [threading.Thread(target=trickler, args=a) for a in (
            ("headers", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", b"a"),
            ("body", b"POST /saml/acs HTTP/1.1\r\nHost: x\r\nContent-Type: application/"
             b"x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nSAMLResponse=", b"A"))]
        for t in threads:
            t.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        status = None
        while status != 200 and time.monotonic() - t0 < DEADLINE + 8:
            try:
                status = s.request("GET", "/healthz",
                                   timeout=max(0.5, DEADLINE + 8 - (time.monotonic() - t0)))[0]
            except (OSError, st.http.client.HTTPException):
                pass
            if status != 200:
                time.sleep(0.1)  # every slot is held: a 503 comes at once
        waited = time.monotonic() - t0
        tap.ok(status == 200 and 1.0 <= waited <= DEADLINE + 3,
               "%d trickling clients hold every slot only until the %d s deadline: /healthz "
               "answered after %.1f s" % (TRICKLE_CONN, DEADLINE, waited), (status, waited))
        for t in threads:
            t.join(30)
        for name in ("headers", "body"):
            closed, after, got = results.get(name, (False, 0, b""))
            tap.ok(closed and DEADLINE - 0.5 <= after <= DEADLINE + 3 and
                   (got == b"" or got.startswith(b"HTTP/1.1 408")),
                   "the client trickling its %s is cut at the deadline (%.1f s)" % (name, after),
                   (closed, after, got))
        log = s.log()
        tap.ok("request headers not complete within %d s: 408" % DEADLINE in log and
               "request not complete within %d s; connection closed (deadline)" % DEADLINE in log,
               "both cuts are logged", log[-1500:])
        tap.ok(s.request("GET", "/healthz")[0] == 200 and s.proc.poll() is None,
               "keywarden-ssod still serves")
    finally:
        if os.environ.get("KW_KEEP"):
            print(s.log())
        s.cleanup()


if __name__ == "__main__":
    main()
