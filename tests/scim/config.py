"""config.py: [scim] bearer_token_file. Without it /scim/v2/ answers 404 (a SCIM Error) even
to the right token; a token file that others may read, or too short a token, keeps
keywarden-ssod from starting (exit 3, a configuration error), with a message that names the file and
never the token."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scimtest  # noqa: E402

st = scimtest.st


def start_fails(tap, mode, content, what):
    s = st.Ssod()
    try:
        path = os.path.join(s.dir, "scim-bearer")
        with open(path, "w") as f:
            f.write(content)
        os.chmod(path, mode)
        with open(os.path.join(s.dir, "keywarden.conf"), "a") as f:
            f.write("[scim]\nbearer_token_file = %s\n" % path)
        try:
            s.start()
            started = True
        except RuntimeError:
            started = False
        rc = s.proc.wait(15) if s.proc is not None else None
        log = s.log()
        tap.ok(not started and rc == 3 and "bearer_token_file" in log and
               content.strip() not in log,
               "%s: keywarden-ssod does not start (3), says why, not the token" % what,
               (started, rc, log[-600:]))
        s.proc = None
    finally:
        s.cleanup()


def main():
    tap = st.Tap()
    sc = scimtest.Scim(tap, enabled=False)
    try:
        sc.start()
        status, h, j, _ = sc.call("GET", "/Users")
        tap.ok(status == 404 and j["status"] == "404" and
               h.get("content-type") == "application/scim+json",
               "without [scim] bearer_token_file: 404, a SCIM Error", (status, j))
        sc.finish()
    finally:
        sc.cleanup()
    start_fails(tap, 0o644, "scim-test-bearer-0123456789abcdef\n", "a token file mode 0644")
    start_fails(tap, 0o600, "short\n", "a token of 5 characters")
    sys.exit(tap.done())


if __name__ == "__main__":
    main()
