#!/usr/bin/python3
# nginx.py: keywarden-validator's HTTP check endpoint behind a real nginx (Debian's, started
# here as a non-daemon in a temporary folder with a generated configuration: listening on a
# Unix socket, logs and pid in that folder; the package's own service is neither needed nor
# touched). auth_request guards a tiny upstream (a Python http.server in this process) that
# echoes the X-Keywarden-* headers nginx forwards to it. Valid, expired, deleted, disabled,
# malformed and missing tokens; min_role; forwarded headers (and that a client cannot forge
# them); the validator stopped (nginx answers 500, or 503 where configured, never 200); a
# delete seen by the very next request through nginx; upstream keepalive to the validator.
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "validator"))
from httptest import HttpConn, apikey, http_port  # noqa: E402
from vtest import Env, Tap, wait_for  # noqa: E402

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx")
                                  else None)

CONF = """
worker_processes 1;
%(user)s
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log info;
events { worker_connections 256; }
http {
    access_log %(dir)s/access.log;
    client_body_temp_path %(dir)s/tmp/body;
    proxy_temp_path %(dir)s/tmp/proxy;
    fastcgi_temp_path %(dir)s/tmp/fastcgi;
    uwsgi_temp_path %(dir)s/tmp/uwsgi;
    scgi_temp_path %(dir)s/tmp/scgi;

    upstream keywarden {
        server 127.0.0.1:%(vport)d;
        keepalive 8;
    }
    upstream app {
        server 127.0.0.1:%(uport)d;
    }
    server {
        listen unix:%(dir)s/nginx.sock;

        # The check: the original request's Authorization goes along (nginx passes the
        # headers of the original request to the subrequest), never its body.
        location = /_keywarden {
            internal;
            proxy_pass http://keywarden/authz;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location = /_keywarden_admin {
            internal;
            proxy_pass http://keywarden/authz;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Keywarden-Min-Role "Administrators";
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }

        location /api/ {
            auth_request /_keywarden;
            auth_request_set $kw_token_id $upstream_http_x_keywarden_token_id;
            auth_request_set $kw_account $upstream_http_x_keywarden_account;
            auth_request_set $kw_user $upstream_http_x_keywarden_user;
            auth_request_set $kw_role $upstream_http_x_keywarden_role;
            proxy_set_header X-Keywarden-Token-Id $kw_token_id;
            proxy_set_header X-Keywarden-Account $kw_account;
            proxy_set_header X-Keywarden-User $kw_user;
            proxy_set_header X-Keywarden-Role $kw_role;
            proxy_set_header Authorization "";
            proxy_pass http://app;
        }
        # The same, but a validator that cannot answer is a 503 to the client.
        location /api503/ {
            auth_request /_keywarden;
            error_page 500 = @keywarden_down;
            proxy_pass http://app;
        }
        location @keywarden_down {
            return 503;
        }
        location /admin/ {
            auth_request /_keywarden_admin;
            proxy_pass http://app;
        }
    }
}
"""


class Upstream(http.server.BaseHTTPRequestHandler):
    """Echoes the request path and its X-Keywarden-* and Authorization headers as JSON."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        seen = {k.lower(): v for k, v in self.headers.items()
                if k.lower().startswith("x-keywarden-") or k.lower() == "authorization"}
        body = json.dumps({"path": self.path, "headers": seen}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args):
        pass


t = Tap()
env = Env("[validator]\nhttp_listen = 127.0.0.1:0\ntrusted_proxies = 127.0.0.1\n")
nginx = None
upstream = None
ndir = os.path.join(env.tmp, "nginx")


def nginx_log():
    try:
        with open(os.path.join(ndir, "error.log")) as f:
            return f.read()[-3000:]
    except OSError:
        return ""


def get(path, headers=None, method="GET"):
    c = HttpConn(os.path.join(ndir, "nginx.sock"))
    try:
        return c.request(method=method, path=path, headers=headers)
    finally:
        c.close()


def echoed(r):
    return json.loads(r.body)["headers"] if r.status == 200 else None


try:
    if not t.ok(NGINX is not None, "nginx is installed (install-deps.sh: nginx-light)"):
        raise SystemExit(t.done())
    env.setup_users()
    env.kw("user", "add", "--account", "acme", "carol", "--role", "Administrators")
    good = env.token("alice", "good")
    good_id = good.split("$")[0]
    admin = env.token("carol", "admin", role="Administrators")
    env.start()
    vport = http_port(env)

    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    os.makedirs(os.path.join(ndir, "tmp"))
    user = "user root root;" if os.getuid() == 0 else ""
    with open(os.path.join(ndir, "nginx.conf"), "w") as f:
        f.write(CONF % {"dir": ndir, "vport": vport, "uport": upstream.server_address[1],
                        "user": user})
    nginx = subprocess.Popen([NGINX, "-p", ndir, "-c", os.path.join(ndir, "nginx.conf"),
                              "-e", os.path.join(ndir, "error.log"), "-g", "daemon off;"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    up = wait_for(lambda: os.path.exists(os.path.join(ndir, "nginx.sock"))
                  and get("/api/x") is not None, timeout=10)
    if not t.ok(up and nginx.poll() is None, "nginx starts with the generated configuration",
                nginx_log()):
        raise SystemExit(t.done())

    # --- valid token: passed, with the headers forwarded ---
    r = get("/api/items", apikey(good))
    h = echoed(r)
    t.eq(r.status, 200, "valid token through auth_request: 200 from the upstream")
    t.eq(h and (h.get("x-keywarden-token-id"), h.get("x-keywarden-account"),
                h.get("x-keywarden-user"), h.get("x-keywarden-role")),
         (good_id, "acme", "alice", "Engineers"),
         "the upstream receives X-Keywarden-Token-Id, -Account, -User, -Role")
    t.ok(h is not None and "authorization" not in h,
         "the token itself is not passed on to the upstream (proxy_set_header Authorization)",
         h)
    r = get("/api/items", dict(apikey(good), **{"X-Keywarden-User": "mallory",
                                                 "X-Keywarden-Role": "Administrators"}))
    h = echoed(r)
    t.eq(h and (h.get("x-keywarden-user"), h.get("x-keywarden-role")), ("alice", "Engineers"),
         "a client cannot forge X-Keywarden-* headers: nginx sets them from the answer")
    r = get("/api/items", apikey(good), method="POST")
    t.eq(r.status, 200, "POST through auth_request: 200")

    # --- refused tokens ---
    exp = env.token("alice", "exp", expires=time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                          time.gmtime(time.time() + 2)))
    dele = env.token("alice", "del")
    env.kw("token", "delete", "--as", "alice", dele.split("$")[0])
    bobtok = env.token("bob", "bobs", role="Users")
    env.kw("user", "set", "bob", "--disable")
    wait_for(lambda: get("/api/x", apikey(exp)).status == 401, timeout=6)
    for tok, what in ((exp, "expired"), (dele, "deleted"), (bobtok, "disabled"),
                      (good[:-4] + "AAAA", "malformed (bad checksum)"),
                      ("not-a-token", "malformed")):
        r = get("/api/x", apikey(tok))
        t.eq((r.status, r.h("WWW-Authenticate")), (401, "APIKey"),
             "%s token: 401 with WWW-Authenticate from the validator" % what)
    r = get("/api/x")
    t.eq(r.status, 401, "no token: 401")
    r = get("/api/x", {"Authorization": "Bearer abc.def.ghi"})
    t.eq(r.status, 401, "a Bearer credential that is no access token of ours: 401")

    # --- min_role ---
    r = get("/admin/x", apikey(good))
    t.eq(r.status, 403, "an Engineers token on a location requiring Administrators: 403")
    r = get("/admin/x", apikey(admin))
    t.eq(r.status, 200, "an Administrators token there: 200")

    # --- a delete is seen by the very next request ---
    victim = env.token("alice", "victim")
    t.eq(get("/api/x", apikey(victim)).status, 200, "a token about to be deleted: 200")
    env.kw("token", "delete", "--as", "alice", victim.split("$")[0])
    t.eq(get("/api/x", apikey(victim)).status, 401,
         "deleted: the very next request through nginx is 401")

    # --- keepalive to the validator: several checks, one upstream connection ---
    for _ in range(5):
        get("/api/x", apikey(good))
    conns = env.log().count("(HTTP): peer address")
    checks = env.log().count("HTTP peer 127.0.0.1 connection")
    t.ok(1 <= conns <= 3 and checks >= 20,
         "nginx reuses its upstream keepalive connections to the validator (%d connections "
         "for %d checks)" % (conns, checks), env.log()[-2000:])

    # --- the validator stopped ---
    t.eq(env.stop(), 0, "validator stopped")
    r = get("/api/x", apikey(good))
    t.eq(r.status, 500, "validator down: nginx answers 500 (the default), never 200")
    r = get("/api503/x", apikey(good))
    t.eq(r.status, 503, "validator down, error_page 500 = 503: 503, never 200")
    t.ok(nginx.poll() is None, "nginx still runs")
    # Back on the same port (the daemon listens with SO_REUSEADDR).
    env.write_conf("[validator]\nhttp_listen = 127.0.0.1:%d\ntrusted_proxies = 127.0.0.1\n"
                   % vport)
    env.start()
    ok = wait_for(lambda: get("/api/x", apikey(good)).status == 200, timeout=10)
    t.ok(ok, "validator back: 200 again")
    t.ok(good.split("$")[1] not in env.log(), "no secret in the validator's log")
    t.ok(good.split("$")[1] not in nginx_log(), "no secret in nginx's error log")
except SystemExit:
    pass
except Exception:  # noqa: BLE001
    t.ok(False, "test ran to the end", traceback.format_exc(), env.log(), nginx_log())
finally:
    if nginx is not None and nginx.poll() is None:
        nginx.terminate()
        try:
            nginx.wait(10)
        except subprocess.TimeoutExpired:
            nginx.kill()
            nginx.wait()
    if upstream is not None:
        upstream.shutdown()
    env.close()
sys.exit(t.done())
