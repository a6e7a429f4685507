"""bench_acs.py: SSO over HTTP benchmark (not a test). Makes N Responses with a real IdP
(python3-lasso: Response and Assertion signed, RSA-SHA256, current times), then in the same run:
  - tests/bench/bench_saml on those Responses: the `ingest` path figure (verification, role
    map and kw_sso_login(), in one process, as `keywarden-ssod ingest` runs it);
  - keywarden-ssod in daemon mode on 127.0.0.1 and tests/bench/bench_acs POSTing every
    Response once to /saml/acs with CLIENTS concurrent keep-alive clients.
Prints both figures and their ratio (target: HTTP >= 0.7 x ingest).
Usage: python3 tests/bench/bench_acs.py [N=3000] [CLIENTS=8] [ROUNDS=3]  (from the build
folder, or with top_srcdir/top_builddir set)."""
import os
import re
import shutil
import subprocess
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
os.environ.setdefault("top_srcdir", os.path.join(HERE, "..", ".."))
os.environ.setdefault("top_builddir", os.getcwd())
sys.path.insert(0, os.path.join(os.environ["top_srcdir"], "tests", "ssod"))
import ssodtest as st  # noqa: E402


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    bench_saml = os.path.join(st.TOP_BUILDDIR, "tests", "bench", "bench_saml")
    bench_acs = os.path.join(st.TOP_BUILDDIR, "tests", "bench", "bench_acs")
    best_http = best_ingest = 0.0
    for r in range(rounds):
        s = st.Ssod()
        try:
            s.start()
            idp = st.LassoIdp(s, s.request("GET", "/saml/metadata")[2])
            xml_dir = os.path.join(s.dir, "xml")
            form_dir = os.path.join(s.dir, "form")
            os.mkdir(xml_dir)
            os.mkdir(form_dir)
            for i in range(n):
                b64 = idp.response("alice@example.org", ["eng"])
                with open(os.path.join(xml_dir, "r%05d.xml" % i), "w") as f:
                    f.write(st.decode(b64))
                with open(os.path.join(form_dir, "r%05d.form" % i), "w") as f:
                    f.write(urllib.parse.urlencode({"SAMLResponse": b64}))
            # As in the validator's benchmark: the server on CPU 0, the load generator on
            # CPU 1, so that the 8 client threads do not take the daemon's core; the ingest
            # path runs on CPU 0 as well.
            os.sched_setaffinity(s.proc.pid, {0})
            out = subprocess.run(["taskset", "-c", "0", bench_saml, s.meta, s.idp_crt, st.SP,
                                  st.ACS, xml_dir, "1"],
                                 stdout=subprocess.PIPE, universal_newlines=True,
                                 check=True).stdout
            m = re.search(r"^keywarden ingest path[^:]*: +(\d+) responses/s", out, re.M)
            ingest = float(m.group(1))
            res = subprocess.run(["taskset", "-c", "1", bench_acs, "127.0.0.1", str(s.port),
                                  form_dir, str(clients)], stdout=subprocess.PIPE,
                                 universal_newlines=True)
            m = re.search(r"(\d+) responses/s", res.stdout)
            http = float(m.group(1))
            print("round %d: %s" % (r + 1, res.stdout.strip()))
            print("round %d: ingest path (bench_saml): %.0f responses/s; HTTP / ingest: %.2f"
                  % (r + 1, ingest, http / ingest))
            if res.returncode != 0:
                print("round %d: some requests were not answered 200:\n%s"
                      % (r + 1, s.log()[-2000:]))
            best_http = max(best_http, http)
            best_ingest = max(best_ingest, ingest)
        finally:
            s.cleanup()
    print("best of %d rounds: HTTP %.0f responses/s (%d clients), ingest %.0f responses/s, "
          "HTTP / ingest %.2f (target >= 0.7)" % (rounds, best_http, clients, best_ingest,
                                                  best_http / best_ingest))


if __name__ == "__main__":
    shutil.which("true")
    main()
