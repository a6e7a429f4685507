"""peergroups.py: the gid allow-list against peers with many supplementary groups (the kernel
reports them through SO_PEERGROUPS; 64 and more once overflowed a fixed buffer), and empty
allow-lists, which must be refused rather than read as "allow everyone"."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vtest import VALIDATOR, Env, Tap  # noqa: E402

ALLOWED_GID = 4242


def ask_with_groups(sock, groups):
    """In a child with these supplementary groups: connect, handshake, send one CHECK; returns
    the answer lines."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        out = b""
        try:
            import socket
            os.setgroups(groups)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(sock)
            # The server greets first; a refused peer gets ERROR right behind the greeting
            # and the connection closes, so sending could fail with EPIPE.
            while out.count(b"\n") < 1:
                chunk = s.recv(4096)
                if not chunk:
                    break
                out += chunk
            if out.count(b"\n") < 2:
                try:
                    s.sendall(b"VERSION\t1\t0\nCHECK\t1\ttoken=7$nope\n")
                except BrokenPipeError:
                    pass
            while out.count(b"\n") < 2:
                chunk = s.recv(4096)
                if not chunk:
                    break
                out += chunk
        except Exception as e:  # noqa: BLE001
            out += ("child error: %r" % e).encode()
        os.write(w, out)
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return data.decode(errors="replace").splitlines()


def main():
    tap = Tap()
    if os.getuid() != 0:
        tap.ok(False, "this test sets supplementary groups and needs root")
        return tap.done()
    env = Env("[validator]\nallow_gids = %d\n" % ALLOWED_GID)
    try:
        env.start()
        for n in (1, 63, 64, 65, 200, 1000):
            groups = [200000 + i for i in range(n - 1)] + [ALLOWED_GID]
            lines = ask_with_groups(env.sock, groups)
            tap.ok(len(lines) == 2 and lines[1] == "FAIL\t1\tcode=invalid",
                   "a peer whose %d-th supplementary group is allowed is served" % n, lines)
        lines = ask_with_groups(env.sock, [200000 + i for i in range(200)])
        tap.ok(len(lines) == 2 and lines[1] == "ERROR\treason=not_allowed",
               "a peer with 200 groups, none allowed, is refused", lines)
        tap.ok(env.alive(), "the validator is still running", env.log()[-2000:])
        rc = env.stop()
        tap.ok(rc == 0, "and stops cleanly (exit %s)" % rc, env.log()[-2000:])
        for key in ("allow_uids", "allow_gids"):
            for value in ("", ", ,"):
                env.write_conf("[validator]\n%s = %s\n" % (key, value))
                p = subprocess.run([VALIDATOR, "--state-dir", env.state], capture_output=True,
                                   text=True, timeout=10)
                tap.ok(p.returncode != 0 and "%s: empty" % key in p.stderr,
                       "an empty %s (%r) is refused at start, naming the key" % (key, value),
                       p.returncode, p.stderr)
    finally:
        env.close()
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
