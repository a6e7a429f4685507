"""bench_saml.py: SAML verification benchmark (not a test). Makes N Responses with the test
IdP (tests/saml/idp.py: 2048-bit RSA-SHA256 Assertion signatures by xmlsec1, about 4 KB each),
then, on the same Responses and one core each:
  - tests/bench/bench_saml: keywarden (parse, verify, checks, replay cache) and a bare
    in-process xmlsec1 verification with the pinned key;
  - python3-lasso as service provider (Login.processAuthnResponseMsg + acceptSso).
Usage: python3 tests/bench/bench_saml.py [N] [SECONDS]  (from the build folder, or with
top_srcdir/top_builddir set)."""
import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRCDIR = os.environ.get("top_srcdir", os.path.join(HERE, "..", ".."))
TOP_BUILDDIR = os.environ.get("top_builddir", os.getcwd())
sys.path.insert(0, os.path.join(TOP_SRCDIR, "tests", "saml"))
import idp as idplib  # noqa: E402
import sslib  # noqa: E402

IDP = "https://idp.test/saml/metadata"
SP = "https://sp.test/saml/metadata"
ACS = "https://sp.test/saml/acs"


def lasso_rate(work, idp, sp_key, sp_crt, files, seconds):
    import lasso
    sp_meta = os.path.join(work, "sp-metadata.xml")
    with open(sp_meta, "w") as f:
        f.write('<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
                'entityID="%s"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:'
                'tc:SAML:2.0:protocol"><md:AssertionConsumerService Binding="urn:oasis:names:tc:'
                'SAML:2.0:bindings:HTTP-POST" Location="%s" index="0" isDefault="true"/>'
                '</md:SPSSODescriptor></md:EntityDescriptor>' % (SP, ACS))
    idp_meta = os.path.join(work, "idp-lasso.xml")
    sslib.write_metadata(idp_meta, IDP, [idp.crt])
    text = open(idp_meta).read().replace(
        "</md:IDPSSODescriptor>",
        '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
        'Location="https://idp.test/sso"/></md:IDPSSODescriptor>')
    open(idp_meta, "w").write(text)
    server = lasso.Server(sp_meta, sp_key, None, sp_crt)
    server.addProvider(lasso.PROVIDER_ROLE_IDP, idp_meta)
    msgs = [base64.b64encode(open(f, "rb").read()).decode() for f in files]
    best, err = 0.0, None
    for _ in range(5):  # best of 5 rounds, as bench_saml does for keywarden and xmlsec1
        done = good = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds or done == 0:
            for m in msgs:
                login = lasso.Login(server)
                try:
                    login.processAuthnResponseMsg(m)
                    login.acceptSso()
                    good += 1
                except lasso.Error as e:
                    err = err or e
                done += 1
        best = max(best, done / (time.monotonic() - t0))
    return best, good * len(msgs) // done, err


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    work = tempfile.mkdtemp(prefix="kw-bench-saml-")
    try:
        idp = idplib.Idp(work, IDP, SP, ACS)
        sp_key, sp_crt = idplib.keypair(work, "sp")
        out = os.path.join(work, "responses")
        os.mkdir(out)
        pad = "".join('<saml:Attribute Name="attr%d"><saml:AttributeValue>value number %d of '
                      'the test IdP</saml:AttributeValue></saml:Attribute>' % (i, i)
                      for i in range(8))
        files = []
        for i in range(n):
            _, a = idp.signed_assertion(attrs_extra=pad, lifetime=3600)
            _, r = idp.response(a)
            p = os.path.join(out, "r%05d.xml" % i)
            open(p, "w").write(r)
            files.append(p)
        meta = os.path.join(work, "idp-metadata.xml")
        sslib.write_metadata(meta, IDP, [idp.crt])
        bench = os.path.join(TOP_BUILDDIR, "tests", "bench", "bench_saml")
        cmd = ["taskset", "-c", "0", bench, meta, idp.crt, SP, ACS, out, str(seconds)]
        res = subprocess.run(cmd, stdout=subprocess.PIPE, universal_newlines=True, check=True)
        print(res.stdout, end="")
        # The figure compared with lasso: parse, verify, checks and replay cache, the work
        # lasso does as an SP (not the user sync of the ingest path).
        kw = float(re.search(r"^keywarden \(parse, verify, checks, replay cache\): +(\d+) ",
                             res.stdout, re.M).group(1))
        os.sched_setaffinity(0, {0})
        lrate, lgood, lerr = lasso_rate(work, idp, sp_key, sp_crt, files, seconds)
        print("python3-lasso as SP: %8.0f responses/s (%d of %d accepted%s)"
              % (lrate, lgood, len(files), "; first error: %s" % lerr if lerr else ""))
        print("keywarden (parse, verify, checks, replay cache) / python3-lasso: %.1f"
              % (kw / lrate))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
