"""browser.py: the API tokens pages of keywarden-ssod in a real browser (issue 12). Headless
Chromium driven by Selenium (Debian's chromium, chromium-driver, python3-selenium), one browser
for the whole test; users sign in through the real lasso IdP: the test writes the IdP's signed
Response into a small auto-submitting HTML form (a file, as an IdP's page would post it) that
the browser posts to /saml/acs with RelayState, and the session cookie (__Host-, Secure) is kept
by Chromium on http://127.0.0.1, a potentially trustworthy origin.

Creates a token and reads its secret from the page, checks it through the validator; the
filters; the `!` marker; delete with confirmation; a Users-role user who cannot see or pick a
higher role nor see another user's tokens (also by editing the form and by posting directly); a
token name with <script> shown as text; CSRF refused without the token; the Notifications
setting; the Administrators' SSO review (delete, dismiss with a reason); a narrow screen; the
keyboard. Screenshots of each page go to $KW_SCREENSHOT_DIR when set (see doc/page.md), else
into the test's folder."""
import datetime
import html
import http.client
import json
import os
import re
import sys
import tempfile
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "ssod"))
import ssodtest as st  # noqa: E402

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMEDRIVER = os.environ.get("KW_CHROMEDRIVER", "/usr/bin/chromedriver")
EVIL = 'deploy <script>alert("x")</script> & "quotes"'


class Page:
    def __init__(self, tap, s, idp):
        self.tap = tap
        self.s = s
        self.idp = idp
        self.base = "http://127.0.0.1:%d" % s.port
        self.shots = os.environ.get("KW_SCREENSHOT_DIR") or os.path.join(s.dir, "shots")
        os.makedirs(self.shots, exist_ok=True)
        self.profile = tempfile.mkdtemp(prefix="kw-chromium-", dir=s.dir)
        o = webdriver.ChromeOptions()
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--user-data-dir=" + self.profile, "--window-size=1100,760",
                  "--no-first-run", "--disable-extensions", "--lang=en-US"):
            o.add_argument(a)
        o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=o)
        self.d.set_page_load_timeout(30)

    def quit(self):
        self.d.quit()

    def get(self, path):
        self.d.get(self.base + path)

    def path(self):
        u = urllib.parse.urlsplit(self.d.current_url)
        return u.path + ("?" + u.query if u.query else "")

    def shot(self, name):
        self.d.save_screenshot(os.path.join(self.shots, name + ".png"))

    def sign_in(self, login, groups, mail=None, next_path="/tokens"):
        """The IdP's page posts its signed Response to /saml/acs; ssod answers 303 to next."""
        self.d.delete_all_cookies()
        resp = self.idp.response(login, groups, mail)
        f = os.path.join(self.s.dir, "idp-post.html")
        with open(f, "w") as fh:
            fh.write('<!DOCTYPE html><html><body><form method="post" action="%s/saml/acs">'
                     '<input type="hidden" name="SAMLResponse" value="%s">'
                     '<input type="hidden" name="RelayState" value="%s"></form>'
                     '<script>document.forms[0].submit()</script></body></html>'
                     % (self.base, html.escape(resp), html.escape(next_path)))
        self.d.get("file://" + f)
        WebDriverWait(self.d, 60, ignored_exceptions=[WebDriverException]).until(
            lambda d: d.current_url.startswith(self.base + "/") and
            d.execute_script("return document.readyState") == "complete")

    def submit(self, el, keys=None):
        """Clicks el (or types keys into it) and waits for the next page."""
        # a mark on the old page's window: gone once the next page has loaded (a check of
        # the old element's staleness races with chromedriver during the navigation)
        self.d.execute_script("window.kwOldPage = true")
        if keys is None:
            el.click()
        else:
            el.send_keys(keys)
        WebDriverWait(self.d, 60, ignored_exceptions=[WebDriverException]).until(
            lambda d: d.execute_script("return !window.kwOldPage && "
                                       "document.readyState === 'complete'"))

    def cookie(self):
        c = self.d.get_cookie("__Host-kw_session")
        return c["value"] if c else None

    def csrf(self):
        els = self.d.find_elements(By.NAME, "csrf")
        return els[0].get_attribute("value") if els else None

    def text(self, css):
        els = self.d.find_elements(By.CSS_SELECTOR, css)
        return els[0].text if els else None

    def rows(self):
        """{token id: row text} of the tokens table."""
        out = {}
        for tr in self.d.find_elements(By.CSS_SELECTOR, "#tokens tbody tr"):
            out[int(tr.get_attribute("id").split("-")[1])] = tr
        return out

    def raw(self, method, path, fields=None, cookie=None, ctype=None):
        """A request outside the browser (a forged or edited form)."""
        c = http.client.HTTPConnection("127.0.0.1", self.s.port, timeout=20)
        h = {}
        if cookie is not None:
            h["Cookie"] = "__Host-kw_session=" + cookie
        body = None
        if fields is not None:
            body = urllib.parse.urlencode(fields)
            h["Content-Type"] = ctype or "application/x-www-form-urlencoded"
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        text = r.read().decode(errors="replace")
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        c.close()
        return r.status, hdrs, text

    def create(self, name, role=None, description="", expires=None):
        """Fills the creation form in the browser; returns the secret shown, or None."""
        self.get("/tokens/new")
        self.d.find_element(By.ID, "name").send_keys(name)
        if description:
            self.d.find_element(By.ID, "description").send_keys(description)
        if role is not None:
            Select(self.d.find_element(By.ID, "role")).select_by_value(role)
        if expires is not None:
            self.d.find_element(By.ID, "dated").click()
            # the date widget's typing order depends on the locale: set its value
            self.d.execute_script("document.getElementById('expires').value = arguments[0]",
                                  expires)
        self.submit(self.d.find_element(By.ID, "create-button"))
        els = self.d.find_elements(By.ID, "secret")
        return els[0].get_attribute("value") if els else None


def tokens_of(s):
    return {t["id"]: t for t in json.loads(s.kw("token", "list", "--as", "root", "--json").stdout)}


def audit(s):
    return [json.loads(x) for x in s.kw("audit", "export").stdout.splitlines() if x.strip()]


def day(n):
    return (datetime.datetime.utcnow() + datetime.timedelta(days=n)).strftime("%Y-%m-%d")


def main():
    tap = st.Tap()
    s = st.Ssod()
    p = None
    t0 = time.monotonic()
    try:
        s.start()
        s.start_validator()
        _, _, meta = s.request("GET", "/saml/metadata")
        idp = st.LassoIdp(s, meta)
        p = Page(tap, s, idp)
        try:
            run(tap, s, p)
            tap.ok(True, "the browser test ran to its end")
        except Exception:
            # say where, in the TAP log (make check keeps only stdout), with the page seen
            for line in traceback.format_exc().splitlines():
                print("# " + line)
            print("# at %s" % p.d.current_url)
            tap.ok(False, "the browser test ran to its end")
        p.quit()
        p = None
        rc = s.stop()
        bad = [x for x in s.log().splitlines() if "Sanitizer" in x or "runtime error" in x]
        tap.ok(rc == 0 and not bad, "keywarden-ssod ends cleanly (no sanitizer report)",
               (rc, bad[:5]))
    finally:
        if p is not None:
            p.quit()
        s.cleanup()
    print("# browser tests took %.1f s" % (time.monotonic() - t0))
    tap.done()


def run(tap, s, p):
    ok = tap.ok

    # ---- signed out ----
    p.get("/tokens")
    link = p.d.find_elements(By.ID, "signin")
    ok(link and link[0].get_attribute("href") == p.base + "/saml/login?next=/tokens",
       "signed out: the page offers the SSO sign-in, back to /tokens",
       link and link[0].get_attribute("href"))
    p.shot("signin")
    status, h, body = p.raw("GET", "/tokens")
    csp = h.get("content-security-policy", "")
    ok(status == 401 and "script-src 'self'" in csp and "style-src 'self'" in csp and
       "unsafe-inline" not in csp and "default-src 'none'" in csp and
       "form-action 'self'" in csp and h.get("cache-control") == "no-store",
       "a strict Content-Security-Policy: no inline script or style, nothing from elsewhere",
       (status, h))
    status, h, css = p.raw("GET", "/static/page.css")
    ok(status == 200 and h.get("content-type", "").startswith("text/css") and "@media" in css,
       "ssod serves its stylesheet", (status, h))
    for path in ("/saml/nothing", "/api/v1/nothing", "/scim/v2/Users", "/healthz"):
        status, h, _ = p.raw("GET", path)
        if not h.get("content-type", "").startswith("text/html") and status != 401:
            continue
        ok(False, "%s is not a page" % path, (status, h))

    # ---- ann, an Engineer: create a token, read its secret, check it ----
    p.sign_in("ann@idp.test", ["eng"], mail="ann@example.test")
    ok(p.path() == "/tokens" and p.text("#who") == "ann@idp.test" and
       p.text("#my-role") == "Engineers",
       "signed in through /saml/acs: the page names the user and her role", p.path())
    ann_cookie = p.cookie()
    ok(ann_cookie is not None and re.match(r"^\d+\$", ann_cookie),
       "Chromium keeps the __Host- Secure session cookie on http://127.0.0.1", ann_cookie)
    p.shot("tokens-empty")
    p.get("/tokens/new")
    roles = [o.get_attribute("value") for o in
             Select(p.d.find_element(By.ID, "role")).options]
    ok(roles == ["Engineers", "Purge and Prefetch only (API+Web)",
                 "Purge and Prefetch only (API)", "Users"],
       "the role list offers the user's role and those below it only", roles)
    p.shot("create")
    secret = p.create(EVIL, role="Engineers", description="CI <b>deploys</b>")
    ok(secret is not None and re.match(r"^\d+\$[A-Za-z0-9_-]{40,}$", secret),
       "the secret is shown once on the page", secret and secret[:6])
    page = p.d.page_source
    ok("it is not stored and cannot be shown again" in page and
       p.d.find_elements(By.ID, "copied"),
       "the secret page says it is not stored and offers \"OK, I've copied the token\"")
    copy = p.d.find_element(By.ID, "copy")
    ok(copy.is_displayed(), "the copy button is shown (its script ran under the CSP)")
    copy.click()
    WebDriverWait(p.d, 5).until(lambda d: d.find_element(By.ID, "copy-status").text != "")
    ok(p.text("#copy-status") in ("Copied to the clipboard.",
                                 "Select the token and copy it (Ctrl+C)."),
       "the copy button answers", p.text("#copy-status"))
    p.shot("secret")
    chk = s.check_token(secret or "0$x")
    ok(chk.returncode == 0 and "user: ann@idp.test" in chk.stdout,
       "the token from the page checks OK at the validator", (chk.stdout, chk.stderr))
    ann_id = int(secret.split("$")[0]) if secret else 0
    ev = [e for e in audit(s) if e["action"] == "token.create"]
    ok(ev and ev[-1]["actor"] == "ann@idp.test" and
       ev[-1]["details"].get("credential", "").startswith("session:"),
       "the creation is audited as the API's, with the session as credential", ev[-1:])
    try:
        p.d.switch_to.alert
        ok(False, "no script of the token's name ran")
    except NoAlertPresentException:
        ok(True, "no script of the token's name ran")
    p.submit(p.d.find_element(By.ID, "copied"))
    row = p.rows().get(ann_id)
    ok(p.path() == "/tokens" and row is not None and
       row.find_element(By.CSS_SELECTOR, ".name").text == EVIL and
       "CI <b>deploys</b>" in row.text,
       "the list shows the name with <script> and the description as text", row and row.text)
    ok(row is not None and "ann@idp.test" in row.text and "Engineers" in row.text and
       "never" in row.text and "active" in row.text and " UTC" in row.text,
       "the row: issued by, role, created (UTC), last usage, expires, status",
       row and row.text)
    ok(not p.d.find_elements(By.CSS_SELECTOR, "#tokens .mark") and
       not p.d.find_elements(By.ID, "expiring"),
       "no `!` while no token expires within 7 days")

    # the `!` marker
    soon = p.create("rotates-soon", role="Users", expires=day(3))
    later = p.create("rotates-later", role="Users", expires=day(30))
    ok(soon and later, "tokens with an expiry date are created", (soon, later))
    soon_id = int(soon.split("$")[0]) if soon else 0
    later_id = int(later.split("$")[0]) if later else 0
    p.get("/tokens")
    rows = p.rows()
    ok(soon_id in rows and rows[soon_id].find_elements(By.CSS_SELECTOR, ".mark") and
       later_id in rows and not rows[later_id].find_elements(By.CSS_SELECTOR, ".mark") and
       p.d.find_elements(By.CSS_SELECTOR, "nav a[aria-current=page] .mark") and
       p.d.find_elements(By.ID, "expiring"),
       "`!` on the section and on the token that expires within 7 days, not the others",
       {k: v.text for k, v in rows.items()})
    ok(day(3) + " 23:59 UTC" in rows[soon_id].text if soon_id in rows else False,
       "a date expires at the end of that day, shown in UTC", rows.get(soon_id) and
       rows[soon_id].text)
    p.shot("tokens")

    # keyboard only: Tab to the name field, type, Enter submits
    p.get("/tokens/new")
    body = p.d.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    for _ in range(30):
        if p.d.switch_to.active_element.get_attribute("id") == "name":
            break
        p.d.switch_to.active_element.send_keys(Keys.TAB)
    reached = p.d.switch_to.active_element.get_attribute("id") == "name"
    if reached:
        p.submit(p.d.switch_to.active_element, "keyboard-made" + Keys.ENTER)
    ok(reached and p.d.find_elements(By.ID, "secret"),
       "without a mouse: Tab reaches the form, Enter creates the token")
    kb_id = int(p.d.find_element(By.ID, "secret").get_attribute("value").split("$")[0]) \
        if p.d.find_elements(By.ID, "secret") else 0

    # a narrow screen
    p.d.set_window_size(390, 844)
    p.get("/tokens")
    wide = p.d.execute_script(
        "return document.documentElement.scrollWidth > window.innerWidth + 1")
    ok(not wide, "a narrow screen (390px): nothing scrolls sideways")
    p.shot("tokens-narrow")
    p.d.set_window_size(1100, 760)

    # delete with confirmation
    p.get("/tokens")
    p.submit(p.d.find_element(By.CSS_SELECTOR, "#token-%d a.button" % kb_id))
    ok(p.path() == "/tokens/%d/delete" % kb_id and p.text("#delete-name") == "keyboard-made",
       "Delete asks to confirm, naming the token", p.path())
    ok(tokens_of(s)[kb_id]["status"] == "active", "nothing is deleted before the confirmation")
    p.shot("delete")
    p.submit(p.d.find_element(By.ID, "confirm"))
    ok(p.path() == "/tokens?done=deleted" and p.rows()[kb_id].find_element(
        By.CSS_SELECTOR, ".status").text == "deleted" and
       tokens_of(s)[kb_id]["status"] == "deleted",
       "confirmed: the token is deleted", p.path())
    ev = [e for e in audit(s) if e["action"] == "token.delete"]
    ok(ev and ev[-1]["actor"] == "ann@idp.test" and ev[-1]["details"].get("via") == "api",
       "the deletion is audited as the API's", ev[-1:])

    # CSRF
    n = len(tokens_of(s))
    status, _, text = p.raw("POST", "/tokens/new", {"name": "forged", "role": "Users",
                                                    "expiry": "never"}, cookie=ann_cookie)
    ok(status == 403 and "CSRF" in text and len(tokens_of(s)) == n,
       "a form posted without the CSRF token: 403, nothing created", status)
    status, _, _ = p.raw("POST", "/tokens/%d/delete" % soon_id, {"csrf": "0" * 64},
                         cookie=ann_cookie)
    ok(status == 403 and tokens_of(s)[soon_id]["status"] == "active",
       "a wrong CSRF token: 403, nothing deleted", status)
    p.get("/tokens/new")
    p.d.execute_script("document.querySelector('#create input[name=csrf]').remove()")
    p.d.find_element(By.ID, "name").send_keys("no-csrf")
    p.submit(p.d.find_element(By.ID, "create-button"))
    ok("Refused" in p.d.title and len(tokens_of(s)) == n,
       "in the browser, a form whose CSRF field was removed is refused", p.d.title)
    p.shot("csrf-refused")

    # notifications
    p.get("/notifications")
    box = p.d.find_element(By.ID, "expiry_emails")
    ok(box.is_selected(), "Notifications: expiry emails are on by default")
    p.shot("notifications")
    box.click()
    p.submit(p.d.find_element(By.ID, "save"))
    ok(p.text("#done") == "Saved." and
       not p.d.find_element(By.ID, "expiry_emails").is_selected() and
       s.users()["ann@idp.test"].get("expiry_emails") is False,
       "switched off and saved in the store", s.users().get("ann@idp.test"))
    ok(p.raw("GET", "/review", cookie=ann_cookie)[0] == 403 and
       not [a for a in p.d.find_elements(By.CSS_SELECTOR, "nav a")
            if a.get_attribute("href").endswith("/review")],
       "an Engineer has no SSO review")

    # ---- sam, a Users-role user ----
    p.sign_in("sam@idp.test", ["staff"])
    sam_cookie = p.cookie()
    ok(p.text("#my-role") == "Users", "sam signs in as Users", p.text("#my-role"))
    ok(p.rows() == {}, "sam does not see ann's tokens", list(p.rows()))
    p.get("/tokens?issued_by=ann%40idp.test")
    ok(p.rows() == {}, "...not even with issued_by=ann", list(p.rows()))
    opts = [o.get_attribute("value") for o in
            Select(p.d.find_element(By.ID, "f-issued")).options]
    ok(opts == ["", "sam@idp.test"], "sam's issued-by filter offers himself only", opts)
    p.get("/tokens/new")
    roles = [o.get_attribute("value") for o in
             Select(p.d.find_element(By.ID, "role")).options]
    ok(roles == ["Users"], "sam is offered the role Users only", roles)
    n = len(tokens_of(s))
    p.d.execute_script("var o = document.createElement('option'); o.value = 'Administrators';"
                       "o.text = 'Administrators'; document.getElementById('role').add(o);")
    p.d.find_element(By.ID, "name").send_keys("escalate")
    Select(p.d.find_element(By.ID, "role")).select_by_value("Administrators")
    p.submit(p.d.find_element(By.ID, "create-button"))
    ok(p.d.find_elements(By.ID, "error") and not p.d.find_elements(By.ID, "secret") and
       len(tokens_of(s)) == n,
       "an edited form asking for Administrators is refused by the server",
       p.text("#error"))
    p.shot("refused-role")
    csrf = p.csrf()
    status, _, text = p.raw("POST", "/tokens/new", {"csrf": csrf, "name": "x",
                                                    "role": "Engineers", "expiry": "never"},
                            cookie=sam_cookie)
    ok(status == 400 and len(tokens_of(s)) == n, "posted directly: refused too", status)
    status, h, text = p.raw("POST", "/tokens/new", {"csrf": csrf, "name": "sam-cron",
                                                    "role": "Users", "expiry": "never"},
                            cookie=sam_cookie)
    m = re.search(r'id="secret"[^>]* value="(\d+\$[A-Za-z0-9_-]+)"', text)
    ok(status == 201 and h.get("cache-control") == "no-store" and m and
       s.check_token(m.group(1)).returncode == 0,
       "a form posted with the CSRF token and an allowed role: the secret, Cache-Control: "
       "no-store", (status, h))
    status, _, _ = p.raw("GET", "/tokens/%d/delete" % soon_id, cookie=sam_cookie)
    ok(status == 404, "ann's token is not found for sam", status)
    status, _, _ = p.raw("POST", "/tokens/%d/delete" % soon_id, {"csrf": csrf},
                         cookie=sam_cookie)
    ok(status == 404 and tokens_of(s)[soon_id]["status"] == "active",
       "sam cannot delete ann's token by posting", status)

    # ---- an Administrator: the whole account, filters, the SSO review ----
    p.sign_in("ann@idp.test", ["staff"])  # IdP lowers ann: a case of the rule opens
    p.sign_in("boss@idp.test", ["admins"])
    rows = p.rows()
    ok(soon_id in rows and later_id in rows, "an Administrator sees the account's tokens",
       list(rows))
    Select(p.d.find_element(By.ID, "f-issued")).select_by_value("ann@idp.test")
    Select(p.d.find_element(By.ID, "f-status")).select_by_value("active")
    p.submit(p.d.find_element(By.ID, "filter"))
    rows = p.rows()
    ok(set(rows) == {ann_id, soon_id, later_id},
       "filters: issued by ann, status active", (p.path(), list(rows)))
    Select(p.d.find_element(By.ID, "f-role")).select_by_value("Users")
    p.submit(p.d.find_element(By.ID, "filter"))
    ok(set(p.rows()) == {soon_id, later_id}, "filters: and role Users", list(p.rows()))
    p.shot("tokens-filtered")
    p.get("/tokens?status=deleted")
    ok(set(p.rows()) == {kb_id}, "filters: status deleted", list(p.rows()))
    p.get("/review")
    cases = p.d.find_elements(By.CSS_SELECTOR, "section.case")
    ok(len(cases) == 1 and "ann@idp.test" in cases[0].text and str(ann_id) in cases[0].text,
       "SSO review: ann's case with her tokens", [c.text for c in cases])
    p.shot("review")
    case_id = int(cases[0].get_attribute("id").split("-")[1]) if cases else 0
    p.submit(p.d.find_element(By.ID, "delete-%d" % ann_id))
    ok(p.path() == "/review?done=deleted" and tokens_of(s)[ann_id]["status"] == "deleted",
       "SSO review: a token deleted from the case", p.path())
    p.d.find_element(By.ID, "reason-%d" % case_id).send_keys("rotates by itself, <ok>")
    p.submit(p.d.find_element(By.ID, "dismiss-%d" % case_id))
    ev = [e for e in audit(s) if e["action"] == "sso.case_dismiss"]
    ok(p.path() == "/review?done=dismissed" and p.d.find_elements(By.ID, "no-cases") and ev and
       ev[-1]["actor"] == "boss@idp.test",
       "SSO review: the case dismissed with a reason, audited", (p.path(), ev[-1:]))
    p.shot("review-done")

    # the browser's console: no CSP violation, no script error
    # (the refused pages' 4xx statuses are logged as SEVERE resource errors: not counted)
    logs = [e for e in p.d.get_log("browser")
            if "Content Security Policy" in e["message"] or
            (e["level"] == "SEVERE" and "the server responded with a status of 4" not in
             e["message"] and "favicon" not in e["message"])]
    ok(not logs, "the console shows no CSP violation or script error", logs)
    p.submit(p.d.find_element(By.CSS_SELECTOR, "header button"))
    ok(p.d.find_elements(By.ID, "signin"), "Sign out ends the session")


if __name__ == "__main__":
    main()
