"""bench_hostile.py: keywarden-ssod under hostile XML (issue 10), a benchmark, not a test.
Prints (1) the time one POST /saml/acs of the issue's repro takes (one element with 25000
attributes, base64, 233 KB), (2) the latency of GET /healthz while CLIENTS clients post it
again and again, and how many of those requests were answered meanwhile.
Usage: python3 tests/bench/bench_hostile.py [CLIENTS=10] [SECONDS=10]  (from the build
folder, or with top_srcdir/top_builddir set)."""
import os
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
os.environ.setdefault("top_srcdir", os.path.join(HERE, "..", ".."))
os.environ.setdefault("top_builddir", os.getcwd())
sys.path.insert(0, os.path.join(os.environ["top_srcdir"], "tests", "ssod"))
import ssodtest as st  # noqa: E402
import flood  # noqa: E402


def main():
    clients = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    body = flood.form(flood.hostile_xml(flood.HOSTILE_ATTRS))
    s = st.Ssod()
    try:
        s.start()
        one = []
        for _ in range(3):
            t0 = time.monotonic()
            status = flood.post(s, body, timeout=600)[0]
            one.append(time.monotonic() - t0)
        print("one hostile POST (%d attributes, %d bytes): %s s each, answered %d" %
              (flood.HOSTILE_ATTRS, len(body), ", ".join("%.3f" % t for t in one), status))
        stop = threading.Event()
        answered = []

        def flooder():
            while not stop.is_set():
                try:
                    answered.append(flood.post(s, body, timeout=600)[0])
                except (OSError, st.http.client.HTTPException):
                    answered.append(None)

        threads = [threading.Thread(target=flooder) for _ in range(clients)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        lat, t_end = [], time.monotonic() + seconds
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            try:
                ok = s.request("GET", "/healthz", timeout=600)[0] == 200
            except (OSError, st.http.client.HTTPException):
                ok = False
            lat.append((time.monotonic() - t0, ok))
            time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join(600)
        times = sorted(x for x, _ in lat)
        print("GET /healthz during a flood of %d clients for %.0f s: %d requests (%d answered "
              "200), median %.3f s, max %.3f s; %d hostile POSTs answered meanwhile" %
              (clients, seconds, len(lat), sum(ok for _, ok in lat), statistics.median(times),
               times[-1], len(answered)))
    finally:
        s.cleanup()


if __name__ == "__main__":
    main()
