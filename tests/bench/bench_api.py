"""bench_api.py: REST API benchmark (not a test). Starts keywarden-ssod on 127.0.0.1 (an account
with a token limit large enough for the run, an Administrator and its API key), then in the
same run, with CLIENTS keep-alive clients each (tests/bench/bench_api):
  - GET /healthz             the floor of the HTTP stack (answered by the HTTP thread);
  - GET /api/v1/tokens       authentication (HMAC, lookup, last use) and a listing of TOKENS;
  - POST /api/v1/tokens      authentication and a creation (one transaction, FULL sync, audit).
The daemon runs on CPU 0 and the load generator on CPU 1, as in the other benchmarks.
Usage: python3 tests/bench/bench_api.py [CLIENTS=8] [SECONDS=5] [TOKENS=20]  (from the build
folder, or with top_srcdir/top_builddir set)."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
os.environ.setdefault("top_srcdir", os.path.join(HERE, "..", ".."))
os.environ.setdefault("top_builddir", os.getcwd())
sys.path.insert(0, os.path.join(os.environ["top_srcdir"], "tests", "ssod"))
import ssodtest as st  # noqa: E402


def main():
    clients = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    tokens = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    tool = os.path.join(st.TOP_BUILDDIR, "tests", "bench", "bench_api")
    s = st.Ssod()
    try:
        s.kw("account", "add", "bench", "--token-limit", "100000")
        s.kw("user", "add", "--account", "bench", "ben", "--role", "Administrators")
        key = s.kw("token", "create", "--as", "ben", "--name", "bench",
                   "--role", "Administrators").stdout.strip()
        for i in range(tokens - 1):
            s.kw("token", "create", "--as", "ben", "--name", "t%d" % i, "--role", "Users")
        s.start()
        os.sched_setaffinity(s.proc.pid, {0})
        runs = [("GET", "/healthz", "-", "-"),
                ("GET", "/api/v1/tokens", "APIKey " + key, "-"),
                ("POST", "/api/v1/tokens", "APIKey " + key,
                 '{"name": "bench", "role": "Users", "expires": "never"}')]
        for method, path, auth, body in runs:
            out = subprocess.run(["taskset", "-c", "1", tool, "127.0.0.1", str(s.port), method,
                                  path, auth, body, str(clients), str(seconds)],
                                 capture_output=True, text=True, check=True)
            print(out.stdout.strip(), flush=True)
    finally:
        s.cleanup()


if __name__ == "__main__":
    main()
