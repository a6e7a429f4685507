"""rules.py: every role rule of tests/cli/rules.sh, run again through the REST API of
keywarden-ssod (Authorization: APIKey), with the codes of the issue, the audit events of changes
made through the API, and every answer body checked against doc/openapi.yaml."""
import datetime
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apitest  # noqa: E402

T = "/api/v1/tokens"


def main():
    tap = apitest.st.Tap()
    api = apitest.Api(tap)
    try:
        run(tap, api)
        api.finish()
    finally:
        api.cleanup()
    tap.done()


def snapshot(kw):
    """The tokens as the CLI lists them, without last use (the request that is refused still
    uses its key)."""
    rows = json.loads(kw("token", "list", "--as", "root", "--json").stdout)
    return [{k: v for k, v in t.items() if k not in ("last_used", "last_ip")} for t in rows]


def ids(j):
    return [t["id"] for t in j]


def run(tap, api):
    kw = api.kw
    for login, role in (("alice", "Administrators"), ("erin", "Engineers"), ("bob", "Users")):
        kw("user", "add", "--account", "acme", login, "--role", role)
    api.start()
    api.s.start_validator()
    key = {login: api.token(login, role, "bootstrap")
           for login, role in (("alice", "Administrators"), ("erin", "Engineers"),
                               ("bob", "Users"))}
    boot_ids = {login: int(k.split("$")[0]) for login, k in key.items()}

    # who acts
    status, _, j, _ = api.call("GET", "/api/v1/me", key["erin"])
    tap.ok(status == 200 and j["login"] == "erin" and j["role"] == "Engineers" and
           j["account"] == "acme" and j["auth"] == "apikey" and j["token_id"] == boot_ids["erin"],
           "GET /me names the token's issuer, account and role", j)

    # creation answers 201 with the token once, and its fields; Location names it
    status, h, j, _ = api.call("POST", T, key["alice"], {"name": "deploy", "description":
                                                        "CI deploys", "role": "Engineers"})
    ok = status == 201 and j is not None and "token" in j
    tap.ok(ok and j["token"].startswith("%d$" % j["id"]) and len(j["token"].split("$")[1]) == 48,
           "POST /tokens: 201 with the token text <id>$<secret>", (status, j))
    first = j if ok else {"id": 0, "token": "0$x"}
    tap.ok(ok and h.get("location") == "%s/%d" % (T, j["id"]) and j["issued_by"] == "alice" and
           j["role"] == "Engineers" and j["expires"] == "never" and j["status"] == "active",
           "201 has Location and the fields; the default expiry is never", (h, j))
    status, _, j, _ = api.call("GET", "%s/%d" % (T, first["id"]), key["alice"])
    tap.ok(status == 200 and "token" not in j and j["name"] == "deploy",
           "GET /tokens/{id} never shows the token text again", j)
    p = api.s.check_token(first["token"])
    tap.ok(p.returncode == 0, "a token made through the API checks OK at the validator",
           (p.returncode, p.stdout, p.stderr))

    # the role rules: at most the issuer's role
    status, _, j, _ = api.call("POST", T, key["erin"], {"name": "e1", "role": "Engineers"})
    tap.ok(status == 201, "engineer creates an Engineers token", (status, j))
    status, _, j, _ = api.call("POST", T, key["erin"],
                               {"name": "e2", "role": "Purge and Prefetch only (API)"})
    tap.ok(status == 201, "engineer creates a lower-role token", (status, j))
    e2 = j["id"] if status == 201 else 0
    before = snapshot(kw)
    status, _, j, _ = api.call("POST", T, key["erin"], {"name": "e3", "role": "Administrators"})
    tap.ok(status == 403 and j["error"] == "forbidden" and "above the issuer's role" in j["message"],
           "engineer cannot create an Administrators token (403)", (status, j))
    tap.ok(snapshot(kw) == before,
           "the refused creation changed nothing")
    status, _, j, _ = api.call("POST", T, key["bob"], {"name": "b0", "role": "Engineers"})
    tap.ok(status == 403, "user cannot create an Engineers token (403)", (status, j))
    status, _, j, _ = api.call("POST", T, key["bob"], {"name": "b1", "role": "Users"})
    tap.ok(status == 201, "user creates a Users token", (status, j))
    b1 = j["id"] if status == 201 else 0

    # expiry forms
    year = datetime.datetime.utcnow().year + 1
    status, _, j, _ = api.call("POST", T, key["alice"], {"name": "dated", "role": "Users",
                                                        "expires": "%d-03-04" % year})
    tap.ok(status == 201 and j["expires"] == "%d-03-04T23:59:59Z" % year,
           "a date means the end of that day, UTC", (status, j))
    status, _, j, _ = api.call("POST", T, key["alice"], {
        "name": "rfc", "role": "Users", "expires": "%d-03-04T10:00:00+02:00" % year})
    tap.ok(status == 201 and j["expires"] == "%d-03-04T08:00:00Z" % year,
           "an RFC 3339 offset is normalised to UTC", (status, j))
    status, _, j, _ = api.call("POST", T, key["alice"], {"name": "old", "role": "Users",
                                                        "expires": "2001-01-01"})
    tap.ok(status == 400 and j["error"] == "bad_request", "a past expiry is a bad request (400)",
           (status, j))
    status, _, j, _ = api.call("POST", T, key["alice"], {"name": "x", "role": "Nobody"})
    tap.ok(status == 400, "an unknown role is a bad request (400)", (status, j))

    # visibility
    status, _, all_tokens, _ = api.call("GET", T, key["alice"])
    n_all = len(kw("token", "list", "--as", "root", "--json").stdout and
                json.loads(kw("token", "list", "--as", "root", "--json").stdout))
    tap.ok(status == 200 and len(all_tokens) == n_all == 9,
           "an Administrator sees every token of the account (9)", (status, n_all, all_tokens))
    status, _, j, _ = api.call("GET", T, key["bob"])
    tap.ok(status == 200 and sorted(ids(j)) == sorted([boot_ids["bob"], b1]) and
           all(t["issued_by"] == "bob" for t in j), "a user sees only his own tokens", j)
    status, _, j, _ = api.call("GET", T + "?issued_by=erin", key["bob"])
    tap.ok(status == 403 and "only Administrators" in j["message"],
           "a user cannot list another user's tokens (403)", (status, j))
    status, _, j, _ = api.call("GET", "%s/%d" % (T, first["id"]), key["bob"])
    tap.ok(status == 404 and j["error"] == "not_found",
           "a user cannot see another user's token (404: not visible)", (status, j))

    # filters
    status, _, j, _ = api.call("GET", T + "?issued_by=erin", key["alice"])
    tap.ok(status == 200 and len(j) == 3 and all(t["issued_by"] == "erin" for t in j),
           "filter by issuer", j)
    status, _, j, _ = api.call("GET", T + "?role=Users", key["alice"])
    tap.ok(status == 200 and len(j) == 4 and all(t["role"] == "Users" for t in j),
           "filter by role", j)
    status, _, j, _ = api.call("GET", T + "?status=bogus", key["alice"])
    tap.ok(status == 400, "an unknown status is a bad request", (status, j))
    status, _, j, _ = api.call("GET", T + "?issued_by=nobody", key["alice"])
    tap.ok(status == 400, "an unknown issuer is a bad request", (status, j))
    status, _, j, _ = api.call("GET", T + "?colour=red", key["alice"])
    tap.ok(status == 400, "an unknown query parameter is a bad request", (status, j))

    # deletion
    before = snapshot(kw)
    status, _, j, _ = api.call("DELETE", "%s/%d" % (T, e2), key["bob"])
    tap.ok(status == 404, "a user cannot delete another user's token (404)", (status, j))
    tap.ok(snapshot(kw) == before,
           "the refused delete changed nothing")
    status, _, j, text = api.call("DELETE", "%s/%d" % (T, b1), key["bob"])
    tap.ok(status == 204 and text == "", "a user deletes his own token (204, no body)",
           (status, text))
    status, _, j, _ = api.call("DELETE", "%s/%d" % (T, e2), key["alice"])
    tap.ok(status == 204, "an Administrator deletes another user's token", (status, j))
    status, _, j, _ = api.call("DELETE", "%s/%d" % (T, e2), key["alice"])
    tap.ok(status == 409 and "already deleted" in j["message"],
           "a deleted token cannot be deleted again (409)", (status, j))
    status, _, j, _ = api.call("GET", T + "?status=deleted", key["alice"])
    tap.ok(status == 200 and sorted(ids(j)) == sorted([b1, e2]), "filter by status deleted", j)
    tap.ok(status == 200 and {t["id"]: t.get("deleted_by") for t in j} ==
           {b1: "bob", e2: "alice"}, "a deleted token shows who deleted it", j)
    status, _, j, _ = api.call("GET", T + "?status=active", key["alice"])
    tap.ok(status == 200 and len(j) == 7 and all(t["status"] == "active" for t in j),
           "filter by status active", j)
    status, _, j, _ = api.call("GET", "%s/%d" % (T, 999999), key["alice"])
    tap.ok(status == 404, "an unknown token is not found (404)", (status, j))
    p = api.s.check_token(first["token"])
    status, _, j, _ = api.call("DELETE", "%s/%d" % (T, first["id"]), key["alice"])
    p2 = api.s.check_token(first["token"])
    tap.ok(p.returncode == 0 and status == 204 and p2.returncode != 0,
           "a token deleted through the API stops validating at once",
           (p.stdout, status, p2.stdout))

    # the fields of token list --json, and the 7-day marker
    soon = (datetime.datetime.utcnow() + datetime.timedelta(days=3)).strftime("%Y-%m-%d")
    status, _, j, _ = api.call("POST", T, key["alice"], {"name": "soon", "role": "Users",
                                                        "expires": soon})
    tap.ok(status == 201 and j["expires_soon"] is True, "a token expiring within 7 days is marked",
           j)
    status, _, api_list, _ = api.call("GET", T + "?status=active", key["alice"])
    cli_list = json.loads(kw("token", "list", "--as", "alice", "--status", "active",
                             "--json").stdout)
    strip = lambda rows: [{k: v for k, v in t.items() if k not in ("last_used", "last_ip")}
                          for t in rows]
    tap.ok(strip(api_list) == strip(cli_list),
           "GET /tokens gives the fields and values of token list --json", (api_list, cli_list))
    status, _, j, _ = api.call("GET", "%s/%d" % (T, boot_ids["alice"]), key["alice"])
    tap.ok(status == 200 and j["last_used"] is not None and j["last_ip"] == "127.0.0.1",
           "using a token with the API records its last use and address", j)

    # the lower of the token's role and the issuer's: an Administrator's Users token
    low = api.token("alice", "Users", "low")
    status, _, j, _ = api.call("GET", "/api/v1/me", low)
    tap.ok(status == 200 and j["role"] == "Users" and j["user_role"] == "Administrators",
           "an Administrator's Users token acts as Users", j)
    status, _, j, _ = api.call("GET", T, low)
    tap.ok(status == 200 and all(t["issued_by"] == "alice" for t in j),
           "...and sees only alice's tokens, as a non-Administrator", j)
    status, _, j, _ = api.call("POST", T, low, {"name": "up", "role": "Engineers"})
    tap.ok(status == 403, "...and cannot create a token above Users (403)", (status, j))
    status, _, j, _ = api.call("DELETE", "%s/%d" % (T, boot_ids["erin"]), low)
    tap.ok(status == 404, "...and cannot delete erin's token (404)", (status, j))
    # and the issuer's current role when it is lower than the token's
    kw("user", "set", "erin", "--role", "Users")
    status, _, j, _ = api.call("GET", "/api/v1/me", key["erin"])
    tap.ok(status == 200 and j["role"] == "Users",
           "an Engineers token of a user now in Users acts as Users", j)
    status, _, j, _ = api.call("POST", T, key["erin"], {"name": "e4", "role": "Engineers"})
    tap.ok(status == 403, "...and cannot create an Engineers token", (status, j))
    kw("user", "set", "erin", "--role", "Engineers")

    # a disabled user cannot act; his tokens are listed disabled
    kw("user", "set", "erin", "--disable")
    status, h, j, _ = api.call("GET", "/api/v1/me", key["erin"])
    tap.ok(status == 401 and "www-authenticate" in h, "a disabled user cannot act (401)",
           (status, j))
    status, _, j, _ = api.call("GET", T + "?issued_by=erin&status=disabled", key["alice"])
    tap.ok(status == 200 and len(j) == 2, "a disabled issuer's tokens are listed disabled", j)
    kw("user", "set", "erin", "--enable")
    status, _, j, _ = api.call("GET", "/api/v1/me", key["erin"])
    tap.ok(status == 200, "enabled again, the user acts again", (status, j))

    # the account's limit; the error says how many expired tokens could go
    kw("account", "add", "small", "--token-limit", "4")
    kw("user", "add", "--account", "small", "sam", "--role", "Administrators")
    sam = api.token("sam", "Administrators", "bootstrap")
    api.call("POST", T, sam, {"name": "a", "role": "Users"})
    exp = (datetime.datetime.utcnow() + datetime.timedelta(seconds=2)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    status, _, j, _ = api.call("POST", T, sam, {"name": "b", "role": "Users", "expires": exp})
    expired_id = j["id"] if status == 201 else 0
    api.call("POST", T, sam, {"name": "c", "role": "Users"})
    time.sleep(3)
    status, _, j, _ = api.call("POST", T, sam, {"name": "d", "role": "Users"})
    tap.ok(status == 409 and j["error"] == "conflict" and
           "1 of them is expired and could be deleted" in j["message"],
           "creation past the limit fails (409) and says what could be deleted", (status, j))
    status, _, j, _ = api.call("DELETE", "%s/%d" % (T, expired_id), sam)
    status, _, j, _ = api.call("POST", T, sam, {"name": "d", "role": "Users"})
    tap.ok(status == 201, "deleting makes room", (status, j))
    status, _, j, _ = api.call("GET", "%s/%d" % (T, boot_ids["alice"]), sam)
    tap.ok(status == 404, "another account's token is not found", (status, j))

    # the audit log says the change came through the API, with which credential
    events = api.audit()
    mine = [e for e in events if e["action"] == "token.create" and
            e["details"].get("name") == "e1"]
    tap.ok(len(mine) == 1 and mine[0]["actor"] == "erin" and
           mine[0]["details"].get("via") == "api" and
           mine[0]["details"].get("credential") == "token:%d" % boot_ids["erin"] and
           mine[0]["details"].get("remote") == "127.0.0.1",
           "token.create through the API: actor, via api, credential and client in the audit",
           mine)
    dels = [e for e in events if e["action"] == "token.delete" and e["target"] == "token:%d" % e2]
    tap.ok(len(dels) == 1 and dels[0]["actor"] == "alice" and
           dels[0]["details"].get("via") == "api", "token.delete through the API is audited so",
           dels)
    p = kw("audit", "verify")
    tap.ok(p.returncode == 0, "the audit chain verifies", p.stdout + p.stderr)

    # no secret in the log
    log = api.s.log()
    secrets = [k.split("$")[1] for k in list(key.values()) + [first["token"], low, sam]]
    tap.ok(not any(s in log for s in secrets), "no token secret reaches ssod's log")


if __name__ == "__main__":
    main()
