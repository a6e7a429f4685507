"""scimtest.py: what the SCIM tests share: keywarden-ssod (tests/ssod/ssodtest.py) with
[scim] bearer_token_file set, requests over http.client as an IdP's SCIM client sends them
(Bearer token, application/scim+json), and the check of every answer body against the schema
doc/scim-schemas.json gives for it (python3-jsonschema)."""
import http.client
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "api"))
import apitest  # noqa: E402

st = apitest.st
TOP_SRCDIR = os.environ.get("top_srcdir", os.path.join(HERE, "..", ".."))
SCHEMAS = os.path.join(TOP_SRCDIR, "doc", "scim-schemas.json")
BEARER = "scim-test-bearer-0123456789abcdef"
BASE = "/scim/v2"


def schema_for(method, path, status):
    """The name in doc/scim-schemas.json of the body expected, "" for none."""
    path = path.split("?", 1)[0]
    if status >= 400:
        return "Error"
    if status == 204:
        return ""
    rest = path[len(BASE):]
    if rest in ("/ServiceProviderConfig", "/Schemas", "/ResourceTypes"):
        return rest[1:]
    if rest == "/Users" and method == "GET":
        return "UserList"
    return "User"


class Scim:
    def __init__(self, tap, extra=None, enabled=True):
        """enabled False: no [scim] section."""
        import jsonschema
        self.tap = tap
        self.api = apitest.Api(tap, extra=extra)
        self.s = self.api.s
        if enabled:
            path = os.path.join(self.s.dir, "scim-bearer")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, (BEARER + "\n").encode())
            os.close(fd)
            with open(os.path.join(self.s.dir, "keywarden.conf"), "a") as f:
                f.write("[scim]\nbearer_token_file = %s\n" % path)
        with open(SCHEMAS) as f:
            self.doc = json.load(f)
        self.jsonschema = jsonschema
        self.checked = 0
        self.bad = []

    def start(self):
        self.s.start()

    def call(self, method, path, body=None, raw=None, bearer=BEARER, ctype=None, headers=None):
        """(status, headers lower-case, parsed JSON or None, text). path is under /scim/v2."""
        c = http.client.HTTPConnection("127.0.0.1", self.s.port, timeout=20)
        h = dict(headers or {})
        if bearer is not None:
            h["Authorization"] = "Bearer " + bearer
        data = raw
        if body is not None:
            data = json.dumps(body)
        if data is not None:
            h["Content-Type"] = ctype or "application/scim+json"
        c.request(method, BASE + path, body=data, headers=h)
        r = c.getresponse()
        text = r.read().decode(errors="replace")
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        c.close()
        self._check(method, BASE + path, r.status, hdrs, text)
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        return r.status, hdrs, parsed, text

    def _check(self, method, path, status, hdrs, text):
        name = schema_for(method, path, status)
        where = "%s %s %d" % (method, path, status)
        if name == "":
            if text:
                self.bad.append("%s: a body where none belongs" % where)
            return
        if hdrs.get("content-type") != "application/scim+json":
            self.bad.append("%s: content type %s" % (where, hdrs.get("content-type")))
        try:
            data = json.loads(text)
        except ValueError as e:
            self.bad.append("%s: not JSON: %s" % (where, e))
            return
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                  "$defs": self.doc["$defs"], "$ref": "#/$defs/" + name}
        v = self.jsonschema.Draft202012Validator(schema)
        errs = [e.message for e in v.iter_errors(data)]
        if status >= 400 and data.get("status") != str(status):
            errs.append("status member %r" % data.get("status"))
        self.checked += 1
        if errs:
            self.bad.append("%s: %s: %s" % (where, "; ".join(errs[:3]), text[:200]))

    def user_id(self, login):
        status, _, j, _ = self.call("GET", '/Users?filter=userName%20eq%20%22' + login + '%22')
        if status != 200 or not j or j["totalResults"] != 1:
            return None
        return j["Resources"][0]["id"]

    def finish(self):
        self.tap.ok(not self.bad and self.checked > 0,
                    "every SCIM answer body (%d) fits its schema in doc/scim-schemas.json"
                    % self.checked, "\n".join(self.bad))

    def cleanup(self):
        self.api.cleanup()
