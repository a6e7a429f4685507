"""errors.py: the REST API's answers to bad input and bad credentials: 401 with
WWW-Authenticate, malformed, oversize, invalid UTF-8 and deeply nested JSON, unknown members,
wrong media type and method, the throttle of failed authentications per client (429 with
Retry-After), an SSO user whose access was revoked (cannot act, while the token still checks OK
at the validator: the rule), and no secret in any answer or log line."""
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apitest  # noqa: E402

st = apitest.st
T = "/api/v1/tokens"
FAILURES = 6


def main():
    tap = st.Tap()
    api = apitest.Api(tap)
    try:
        run(tap, api)
        api.finish()
    finally:
        api.cleanup()
    tap.done()


def run(tap, api):
    with open(os.path.join(api.s.dir, "keywarden.conf"), "a") as f:
        f.write("[api]\nauth_failures = %d\nauth_window = 600\nauth_block = 600\n"
                "max_body = 1024\n" % FAILURES)
    api.start()
    key = api.token("root", "Administrators", "bootstrap")
    wrong = key[:-6] + ("AAAAAA" if not key.endswith("AAAAAA") else "BBBBBB")

    # the workers authenticate at the same time (a shared digest context once corrupted the
    # heap here): 8 clients x 40 requests, every one 200
    import threading
    results = []

    def client():
        for _ in range(40):
            results.append(api.call("GET", "/api/v1/tokens", key)[0])
    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tap.ok(len(results) == 320 and set(results) == {200} and api.s.proc.poll() is None,
           "320 concurrent authenticated requests: all 200, the daemon alive",
           sorted(set(results)))

    status, h, j, _ = api.call("GET", "/api/v1/me")
    tap.ok(status == 401 and j["error"] == "unauthenticated" and
           h.get("www-authenticate", "").startswith("APIKey"),
           "no credential: 401 with WWW-Authenticate", (status, h, j))
    status, _, j, _ = api.call("GET", "/api/v1/me", headers={"Authorization": "Basic eDp5"})
    tap.ok(status == 401, "another scheme: 401", (status, j))
    status, _, j, text = api.call("GET", "/api/v1/me", wrong)
    tap.ok(status == 401 and wrong.split("$")[1] not in text,
           "a wrong secret: 401, the secret not echoed", (status, text))
    status, _, j, _ = api.call("GET", "/api/v1/me", "apikey " + key[7:] if False else key,
                               headers={"Authorization": "apikey " + key})
    tap.ok(status == 200, "the scheme is case-insensitive", (status, j))

    status, _, j, _ = api.call("GET", "/api/v1/nothing", key)
    tap.ok(status == 404 and j["error"] == "not_found", "an unknown API path: 404 (JSON)",
           (status, j))
    status, h, j, _ = api.call("PUT", T, key, raw="{}",
                               headers={"Content-Type": "application/json"})
    tap.ok(status == 405 and h.get("allow") == "GET, POST", "a wrong method: 405 with Allow",
           (status, h, j))
    status, _, j, _ = api.call("POST", T, key, raw="name=x",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    tap.ok(status == 415, "not application/json: 415", (status, j))
    bad = [("{", "malformed JSON"), ("[]", "an array"), ('{"name":"x","role":"Users"} x',
                                                         "text after the value"),
           ('{"name":"x","role":"Users","admin":true}', "an unknown member"),
           ('{"name":1,"role":"Users"}', "a number for a string"),
           ('{"name":"x\\u0000y","role":"Users"}', "a NUL in a string"),
           ('{"name":"x\\u202ey","role":"Users"}', "a bidirectional control"),
           ('{"role":"Users"}', "no name"),
           ('{"name":"' + "n" * 101 + '","role":"Users"}', "a name over 100 characters"),
           ('{"a":{"b":{"c":{}}}}', "deep nesting"), ("", "an empty body")]
    for body, what in bad:
        status, _, j, _ = api.call("POST", T, key, raw=body,
                                   headers={"Content-Type": "application/json"})
        tap.ok(status == 400 and j["error"] == "bad_request", "%s: 400" % what, (status, j))
    raw = b'{"name":"\xff\xfe","role":"Users"}'
    status, _, j, _ = api.call("POST", T, key, raw=raw,
                               headers={"Content-Type": "application/json"})
    tap.ok(status == 400, "invalid UTF-8: 400", (status, j))
    status, _, j, _ = api.call("POST", T, key, raw="{" + " " * 2000 + "}",
                               headers={"Content-Type": "application/json"})
    tap.ok(status == 413 and j["error"] == "too_large", "a body over [api] max_body: 413",
           (status, j))
    status, _, j, _ = api.call("GET", T + "?role=" + urllib.parse.quote("\u202eUsers"), key)
    tap.ok(status == 400, "a query value with a bidirectional control: 400", (status, j))
    status, _, j, _ = api.call("GET", T + "/abc", key)
    tap.ok(status == 404, "a token id that is not a number: 404", (status, j))
    status, _, j, _ = api.call("GET", "/api/v1/me", key)
    tap.ok(status == 200, "the API still answers after all that", (status, j))

    # an SSO user whose access was revoked cannot act; the token still validates (the rule)
    api.s.start_validator()
    _, _, meta = api.s.request("GET", "/saml/metadata")
    idp = st.LassoIdp(api.s, meta)
    status, _, body = api.s.post("/saml/acs", {"SAMLResponse": idp.response("dana@idp.test",
                                                                            ["eng"])})
    tap.ok(status == 200, "an SSO user signs in", (status, body))
    dana = api.token("dana@idp.test", "Engineers", "dana")
    status, _, j, _ = api.call("GET", "/api/v1/me", dana)
    tap.ok(status == 200 and j["login"] == "dana@idp.test", "the SSO user acts with her token",
           (status, j))
    api.kw("sso", "revoke", "dana@idp.test", "--reason", "left")
    status, _, j, _ = api.call("GET", T, dana)
    tap.ok(status == 401, "after sso revoke she cannot act (401)", (status, j))
    p = api.s.check_token(dana)
    tap.ok(p.returncode == 0, "...while her token still checks OK at the validator (the rule)",
           (p.returncode, p.stdout, p.stderr))

    # the throttle: FAILURES failed authentications block the client, good key or not
    n401 = 0
    for _ in range(FAILURES - 3):  # 3 failures above already counted (wrong, Basic, dana)
        status, _, j, _ = api.call("GET", "/api/v1/me", wrong)
        n401 += status == 401
    status, h, j, _ = api.call("GET", "/api/v1/me", key)
    tap.ok(n401 == FAILURES - 3 and status == 429 and j["error"] == "rate_limited" and
           int(h.get("retry-after", "0")) > 0,
           "after %d failed authentications the client is answered 429 with Retry-After"
           % FAILURES, (n401, status, h, j))
    status, _, body = api.s.request("GET", "/healthz")
    tap.ok(status == 200, "/healthz is not throttled", status)
    tap.ok("failed API authentications" in api.s.log(), "the block is logged")

    log = api.s.log()
    tap.ok(key.split("$")[1] not in log and wrong.split("$")[1] not in log and
           dana.split("$")[1] not in log, "no secret, right or wrong, reaches the log")


if __name__ == "__main__":
    main()
