#!/usr/bin/python3
"""ssod_reconnect.py: keywarden-ssod on a PostgreSQL store whose connections are cut (a server
restart, an administrator's pg_terminate_backend) keeps serving (issue 15). Each worker opens
its store again before its next job, so SCIM deprovisioning, the API and sign-ins work again
at once instead of failing until ssod is restarted. A throwaway server of its own."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "scim"))
import kwpg  # noqa: E402

srv = kwpg.Server()
srv.start()
os.environ["KW_TEST_PG"] = srv.dir  # the harness gives the state folder a database there
import scimtest  # noqa: E402

t = scimtest.st.Tap()
sc = None


def cut_connections():
    """Ends every session of the test databases but ours (as a restart would)."""
    out = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-d", srv.url, "-c",
                          "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                          "WHERE datname LIKE 'kw_%' AND pid <> pg_backend_pid()"],
                         capture_output=True, text=True, timeout=60)
    return int(out.stdout.strip() or "0")


try:
    sc = scimtest.Scim(t)
    sc.start()
    status, _, j, _ = sc.call("GET", "/Users")
    t.eq(status, 200, "SCIM answers on a PostgreSQL store")
    cut = cut_connections()
    t.ok(cut >= 1, "the server ended keywarden-ssod's connections (%d)" % cut)
    answers = [sc.call("GET", "/Users")[0] for _ in range(6)]
    # four workers: each may fail the one request that finds its connection gone
    t.ok(answers[-1] == 200 and answers.count(200) >= 2,
         "and SCIM answers again without a restart of keywarden-ssod", answers)
    t.ok(all(a in (200, 500, 503) for a in answers), "a failed request is an error answer, not "
         "a hang or a dropped connection", answers)
    t.ok("connected again" in sc.s.log(), "the reconnection is logged",
         sc.s.log()[-400:])
    t.ok(sc.s.proc.poll() is None, "keywarden-ssod still runs")
except Exception:
    import traceback
    t.ok(False, "no unexpected exception", traceback.format_exc().splitlines())
finally:
    if sc is not None:
        sc.s.cleanup()
    srv.stop()
sys.exit(t.done())
