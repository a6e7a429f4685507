"""sslib.py: shared helpers of the SAML tests: TAP output, IdP metadata from a PEM
certificate, a state folder with keywarden.conf, and running keywarden-ssod (under faketime
when a clock is given)."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pg"))
import kwpg  # noqa: E402

TOP_SRCDIR = os.environ.get("top_srcdir", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
TOP_BUILDDIR = os.environ.get("top_builddir", TOP_SRCDIR)
SSOD = os.path.join(TOP_BUILDDIR, "keywarden-ssod")
KEYWARDEN = os.path.join(TOP_BUILDDIR, "keywarden")


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, text, diag=None):
        self.n += 1
        if not cond:
            self.failed += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", self.n, text), flush=True)
        if not cond and diag:
            for line in str(diag).splitlines():
                print("# " + line, flush=True)
        return cond

    def done(self):
        print("1..%d" % self.n, flush=True)
        return 1 if self.failed else 0


def pem_body(path):
    lines = open(path).read().splitlines()
    out, inside = [], False
    for line in lines:
        if line.startswith("-----BEGIN CERTIFICATE"):
            inside = True
        elif line.startswith("-----END CERTIFICATE"):
            inside = False
        elif inside:
            out.append(line.strip())
    return "".join(out)


def write_metadata(path, entity_id, cert_paths):
    kds = "".join(
        '<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>%s'
        "</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>" % pem_body(c)
        for c in cert_paths)
    from xml.sax.saxutils import quoteattr
    with open(path, "w") as f:
        f.write('<?xml version="1.0"?>\n<md:EntityDescriptor '
                'xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
                'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID=%s>'
                '<md:IDPSSODescriptor protocolSupportEnumeration='
                '"urn:oasis:names:tc:SAML:2.0:protocol">%s</md:IDPSSODescriptor>'
                "</md:EntityDescriptor>\n" % (quoteattr(entity_id), kds))


def make_state(idp_entity_id, certs, sp_entity_id, acs_url, sp_key=None, extra=None):
    d = tempfile.mkdtemp(prefix="kw-saml-")
    kwpg.use(d)  # with KW_TEST_PG: a database of its own
    meta = os.path.join(d, "idp-metadata.xml")
    write_metadata(meta, idp_entity_id, certs)
    conf = {
        "account": "acme",
        "sp_entity_id": sp_entity_id,
        "acs_url": acs_url,
        "idp_metadata": meta,
    }
    if sp_key:
        # A private key must be private (mode 0600): the corpus's copies are read-only for all.
        own = os.path.join(d, "sp_key.pem")
        with open(sp_key, "rb") as src, open(os.open(own, os.O_WRONLY | os.O_CREAT, 0o600),
                                             "wb") as dst:
            dst.write(src.read())
        conf["sp_key"] = own
    conf.update(extra or {})
    # keywarden-ssod never creates the [sso] account: the admin does, as here (before the
    # config is written: every program refuses a config with a bad value, and some tests
    # write one on purpose for ssod to refuse).
    for args in (["init"], ["account", "add", conf["account"]]):
        subprocess.run([KEYWARDEN, "--state-dir", d] + args, check=True,
                       env=kwpg.env(d, asan_env()),
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with open(os.path.join(d, "keywarden.conf"), "w") as f:
        f.write("[sso]\n")
        for k, v in conf.items():
            f.write("%s = %s\n" % (k, v))
    return d


LIBFAKETIME = next((os.path.join(d, "libfaketime.so.1") for d in (
    "/usr/lib/x86_64-linux-gnu/faketime", "/usr/lib/aarch64-linux-gnu/faketime",
    "/usr/lib/faketime") if os.path.exists(os.path.join(d, "libfaketime.so.1"))),
    "libfaketime.so.1")


def asan_env():
    env = dict(os.environ, TZ="UTC")
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
    return env


def run_ssod(state, files, when=None):
    """Returns (exit code, stdout lines, stderr). when: 'YYYY-MM-DD HH:MM:SS' UTC or None."""
    env = kwpg.env(state, asan_env())
    cmd = [SSOD, "--state-dir", state, "ingest"] + list(files)
    if when:
        # libfaketime preloaded, not the faketime wrapper: the wrapper's named semaphore per
        # pid, left behind by killed runs, makes later runs with that pid fail.
        env["LD_PRELOAD"] = (LIBFAKETIME + " " + env.get("LD_PRELOAD", "")).strip()
        env["FAKETIME"] = "@" + when
        env["DONT_FAKE_MONOTONIC"] = "1"
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                       universal_newlines=True, timeout=120)
    return p.returncode, p.stdout.splitlines(), p.stderr
