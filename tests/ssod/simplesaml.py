"""simplesaml.py: Debian's SimpleSAMLphp as a real SAML IdP for the tests, served by PHP's
built-in web server (`php -S 127.0.0.1:0`) from a temporary folder that holds its generated
config, its signing key and the SP's metadata (converted by SimpleSAMLphp's own metadata
parser, as an admin's metarefresh would). Users sign in without a form (exampleauth's
StaticSource), so a test drives the IdP with plain HTTP requests and a cookie jar."""
import html
import http.cookiejar
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

SSP = "/usr/share/simplesamlphp"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class SimpleSamlIdp:
    def __init__(self, sp_metadata, entity_id, key, crt, attributes, nameid_format=None,
                 encrypt=False, sign_response=True, sign_assertion=True, extra_sp=None):
        self.dir = tempfile.mkdtemp(prefix="kw-ssp-")
        self.entity_id = entity_id
        for sub in ("config", "metadata", "cert", "log", "data", "tmp", "sessions"):
            os.mkdir(os.path.join(self.dir, sub))
        shutil.copy(key, os.path.join(self.dir, "cert", "idp.key"))
        shutil.copy(crt, os.path.join(self.dir, "cert", "idp.crt"))
        d = self.dir
        php = lambda v: "'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'"  # noqa: E731
        with open(os.path.join(d, "config", "config.php"), "w") as f:
            f.write("""<?php
$config = [
    'baseurlpath' => '/',
    'certdir' => %s, 'loggingdir' => %s, 'datadir' => %s, 'tempdir' => %s,
    'metadatadir' => %s,
    'secretsalt' => 'keywarden-test-salt', 'auth.adminpassword' => 'not-used-here',
    'technicalcontact_name' => 'test', 'technicalcontact_email' => 'na@example.org',
    'timezone' => 'UTC', 'logging.level' => 7, 'logging.handler' => 'file',
    'logging.logfile' => 'simplesamlphp.log',
    'enable.saml20-idp' => true, 'admin.protectmetadata' => false,
    'module.enable' => ['exampleauth' => true, 'core' => true, 'saml' => true,
                        'admin' => true],
    'store.type' => 'phpsession', 'session.phpsession.savepath' => %s,
    'session.cookie.secure' => false,
    'metadata.sources' => [['type' => 'flatfile']],
];
""" % (php(d + "/cert/"), php(d + "/log/"), php(d + "/data/"), php(d + "/tmp"),
                php(d + "/metadata/"), php(d + "/sessions")))
        attrs = ", ".join("%s => [%s]" % (php(k), ", ".join(php(x) for x in v))
                          for k, v in attributes.items())
        with open(os.path.join(d, "config", "authsources.php"), "w") as f:
            f.write("<?php\n$config = ['admin' => ['core:AdminPassword'],\n"
                    "    'static' => ['exampleauth:StaticSource', %s]];\n" % attrs)
        hosted = {"host": "__DEFAULT__", "privatekey": "idp.key", "certificate": "idp.crt",
                  "auth": "static"}
        with open(os.path.join(d, "metadata", "saml20-idp-hosted.php"), "w") as f:
            f.write("<?php\n$metadata[%s] = [%s];\n" % (php(entity_id), ", ".join(
                "%s => %s" % (php(k), php(v)) for k, v in hosted.items())))
        spmeta = os.path.join(d, "sp-metadata.xml")
        with open(spmeta, "w") as f:
            f.write(sp_metadata)
        overrides = {"saml20.sign.response": sign_response,
                     "saml20.sign.assertion": sign_assertion,
                     "assertion.encryption": encrypt}
        if nameid_format:
            overrides["NameIDFormat"] = nameid_format
        overrides.update(extra_sp or {})
        conv = os.path.join(d, "convert.php")
        with open(conv, "w") as f:
            f.write("""<?php
require '%s/lib/_autoload.php';
$entities = \\SimpleSAML\\Metadata\\SAMLParser::parseDescriptorsString(file_get_contents($argv[1]));
$out = "<?php\\n";
foreach ($entities as $e) {
    $m = $e->getMetadata20SP();
    if ($m === null) continue;
    $m = array_merge($m, json_decode($argv[2], true));
    $out .= '$metadata[' . var_export($m['entityid'], true) . '] = ' . var_export($m, true) . ";\\n";
}
echo $out;
""" % SSP)
        import json
        env = dict(os.environ, SIMPLESAMLPHP_CONFIG_DIR=os.path.join(d, "config"))
        p = subprocess.run(["php", conv, spmeta, json.dumps(overrides)], capture_output=True,
                           text=True, env=env, timeout=60)
        if p.returncode != 0 or "$metadata[" not in p.stdout:
            raise RuntimeError("SimpleSAMLphp cannot read the SP metadata: %s %s" % (
                p.stdout, p.stderr))
        self.sp_remote = p.stdout
        with open(os.path.join(d, "metadata", "saml20-sp-remote.php"), "w") as f:
            f.write(p.stdout)
        self.errf = open(os.path.join(d, "php-server.log"), "w")
        self.proc = subprocess.Popen(
            ["php", "-d", "session.save_path=" + os.path.join(d, "sessions"), "-S",
             "127.0.0.1:0", "-t", SSP + "/www"], stdout=self.errf, stderr=subprocess.STDOUT,
            env=env, cwd=d)
        self.port = None
        end = time.time() + 20
        while time.time() < end and self.port is None:
            with open(os.path.join(d, "php-server.log")) as f:
                m = re.search(r"Development Server \(http://127\.0\.0\.1:(\d+)\) started",
                              f.read())
            if m:
                self.port = int(m.group(1))
            elif self.proc.poll() is not None:
                break
            else:
                time.sleep(0.05)
        if self.port is None:
            self.stop()
            raise RuntimeError("php -S did not start: " + self.log())
        self.base = "http://127.0.0.1:%d" % self.port
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, url):
        """(status, body) of a GET that follows the IdP's own redirects."""
        if url.startswith("/"):
            url = self.base + url
        try:
            with self.opener.open(url, timeout=60) as r:
                return r.status, r.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def metadata(self):
        status, body = self.get("/saml2/idp/metadata.php?output=xhtml")
        status, body = self.get("/saml2/idp/metadata.php")
        if status != 200:
            raise RuntimeError("IdP metadata: %d %s" % (status, body[:500]))
        return body

    @staticmethod
    def form_response(page):
        """The SAMLResponse of the HTTP-POST form page the IdP answers, or None."""
        m = re.search(r'name="SAMLResponse"\s+value="([^"]+)"', page)
        return html.unescape(m.group(1)) if m else None

    def idp_initiated(self, sp_entity_id):
        status, page = self.get("/saml2/idp/SSOService.php?spentityid=" +
                                urllib.parse.quote(sp_entity_id, safe=""))
        return self.form_response(page), page

    def sp_initiated(self, location):
        """Follows keywarden's redirect (its host is the IdP's SSO URL from the metadata)."""
        u = urllib.parse.urlsplit(location)
        status, page = self.get(self.base + u.path + "?" + u.query)
        return self.form_response(page), page

    def log(self):
        out = []
        for p in (os.path.join(self.dir, "php-server.log"),
                  os.path.join(self.dir, "log", "simplesamlphp.log")):
            try:
                with open(p, errors="replace") as f:
                    out.append(f.read())
            except OSError:
                pass
        return "\n".join(out)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.errf.close()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
