"""openapi.py: doc/openapi.yaml is a well-formed OpenAPI 3.1 document. Always: it is YAML, says
openapi 3.1.x, every schema under components is a valid JSON Schema (Draft 2020-12, the dialect
of OpenAPI 3.1, checked by python3-jsonschema), every $ref resolves, every operation lists its
answers and every path parameter is declared; and it names every endpoint that ssod/api.c
routes. And it is validated against the OpenAPI 3.1 specification by the npm package
@seriousme/openapi-schema-validator, which install-deps.sh installs under .ci/npm (when it
cannot be found there, that one result is a TAP SKIP, never a pass)."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apitest  # noqa: E402


def refs(node, out):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                out.append(v)
            else:
                refs(v, out)
    elif isinstance(node, list):
        for v in node:
            refs(v, out)
    return out


def main():
    import jsonschema
    tap = apitest.st.Tap()
    doc = apitest.load_openapi()
    tap.ok(re.match(r"^3\.1\.\d+$", str(doc.get("openapi", ""))) is not None,
           "openapi: 3.1.x", doc.get("openapi"))
    bad = []
    for name, schema in doc["components"]["schemas"].items():
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            bad.append("%s: %s" % (name, e.message))
    tap.ok(not bad, "every component schema is valid JSON Schema 2020-12", "\n".join(bad))
    unresolved = []
    for r in refs(doc, []):
        node = doc
        try:
            for part in r.lstrip("#/").split("/"):
                node = node[part]
        except (KeyError, TypeError):
            unresolved.append(r)
    tap.ok(r and not unresolved, "every $ref resolves", unresolved)
    problems = []
    for path, item in doc["paths"].items():
        declared = {p["name"] for p in item.get("parameters", []) if p.get("in") == "path"}
        for method, op in item.items():
            if method == "parameters":
                continue
            if not op.get("responses"):
                problems.append("%s %s has no responses" % (method, path))
            names = declared | {p["name"] for p in op.get("parameters", []) if p.get("in") == "path"}
            for var in re.findall(r"{([^}]+)}", path):
                if var not in names:
                    problems.append("%s %s: path parameter %s undeclared" % (method, path, var))
    tap.ok(not problems, "every operation lists answers and declares its path parameters",
           problems)
    src = open(os.path.join(apitest.TOP_SRCDIR, "ssod", "api.c")).read()
    routed = set(re.findall(r'API_V1 "(/[a-z/]+)"', src)) | {"/tokens/{id}"}
    tap.ok(routed <= set(doc["paths"]), "every routed endpoint is described",
           (routed, list(doc["paths"])))
    cli = os.path.join(apitest.TOP_SRCDIR, ".ci", "npm", "node_modules", ".bin", "validate-api")
    if not os.path.exists(cli):
        print("ok %d - validated against the OpenAPI 3.1 specification # SKIP "
              "@seriousme/openapi-schema-validator is not installed (./install-deps.sh)"
              % (tap.n + 1), flush=True)
        tap.n += 1
    else:
        p = subprocess.run(["node", cli, os.path.join(apitest.TOP_SRCDIR, "doc", "openapi.yaml")],
                           capture_output=True, text=True, timeout=120)
        tap.ok(p.returncode == 0 and '"valid": true' in p.stdout,
               "validated against the OpenAPI 3.1 specification "
               "(@seriousme/openapi-schema-validator)", p.stdout[-1500:] + p.stderr[-500:])
    tap.done()


if __name__ == "__main__":
    main()
