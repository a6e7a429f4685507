"""apitest.py: what the REST API tests share: keywarden-ssod started by tests/ssod/ssodtest.py,
JSON requests over http.client, and the check of every answer body against the schema that
doc/openapi.yaml gives for its path, method and status (python3-jsonschema, Draft 2020-12, the
dialect of OpenAPI 3.1). An answer whose status the document does not list fails the check."""
import http.client
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "ssod"))
import ssodtest as st  # noqa: E402,F401

TOP_SRCDIR = os.environ.get("top_srcdir", os.path.join(HERE, "..", ".."))
OPENAPI = os.path.join(TOP_SRCDIR, "doc", "openapi.yaml")


def load_openapi():
    import yaml
    with open(OPENAPI) as f:
        return yaml.safe_load(f)


class Schemas:
    """The answer schemas of doc/openapi.yaml, by (path template, method, status)."""

    def __init__(self):
        import jsonschema
        self.jsonschema = jsonschema
        self.doc = load_openapi()
        self.base = self.doc["servers"][0]["url"]
        self.checked = 0

    def _resolve(self, node):
        while "$ref" in node:
            parts = node["$ref"].lstrip("#/").split("/")
            node = self.doc
            for p in parts:
                node = node[p]
        return node

    def _template(self, path):
        path = path.split("?", 1)[0]
        if not path.startswith(self.base):
            return None
        rest = path[len(self.base):]
        for tmpl in self.doc["paths"]:
            rx = "^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(tmpl)) + "$"
            if re.match(rx, rest):
                return tmpl
        return None

    def check(self, method, path, status, body):
        """None when the body fits its schema, else the reason. A path or method that the
        document does not list must be answered 404 or 405 with an Error (as it says)."""
        tmpl = self._template(path)
        op = self.doc["paths"][tmpl].get(method.lower()) if tmpl is not None else None
        if op is None:
            if status not in (404, 405):
                return "%s %s is not in openapi.yaml and not answered 404/405" % (method, path)
            resp = self.doc["components"]["responses"]["NotFound"]
        else:
            resp = op["responses"].get(str(status))
        if resp is None:
            return "status %d of %s %s is not in openapi.yaml" % (status, method, tmpl)
        resp = self._resolve(resp)
        content = resp.get("content")
        if content is None:
            return None if body in ("", None) else "a body where none is documented"
        schema = dict(content["application/json"]["schema"])
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["components"] = self.doc["components"]
        try:
            data = json.loads(body)
        except ValueError as e:
            return "not JSON: %s" % e
        v = self.jsonschema.Draft202012Validator(schema)
        errors = sorted(v.iter_errors(data), key=str)
        self.checked += 1
        return None if not errors else "; ".join(e.message for e in errors[:3])


class Api:
    """An Ssod with the API's helpers; every answer is checked against openapi.yaml."""

    def __init__(self, tap, extra=None):
        self.tap = tap
        self.s = st.Ssod(extra=extra)
        self.schemas = Schemas()
        self.bad_schema = []

    def start(self):
        self.s.start()

    def kw(self, *args, **kw):
        return self.s.kw(*args, **kw)

    def call(self, method, path, token=None, body=None, headers=None, raw=None):
        """Returns (status, headers lower-case, parsed JSON or None, raw body text)."""
        c = http.client.HTTPConnection("127.0.0.1", self.s.port, timeout=20)
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = "APIKey " + token
        data = raw
        if body is not None:
            data = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        text = r.read().decode(errors="replace")
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        c.close()
        why = self.schemas.check(method, path, r.status, text)
        if why is not None:
            self.bad_schema.append("%s %s %d: %s: %s" % (method, path, r.status, why, text[:200]))
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        return r.status, hdrs, parsed, text

    def token(self, login, role, name="t"):
        """A permanent token made with the CLI (the bootstrap: the API needs one to act)."""
        return self.kw("token", "create", "--as", login, "--name", name, "--role",
                       role).stdout.strip()

    def audit(self):
        p = self.kw("audit", "export")
        return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]

    def finish(self):
        self.tap.ok(not self.bad_schema and self.schemas.checked > 0,
                    "every answer body (%d) fits its schema in doc/openapi.yaml"
                    % self.schemas.checked, "\n".join(self.bad_schema))

    def cleanup(self):
        self.s.cleanup()
