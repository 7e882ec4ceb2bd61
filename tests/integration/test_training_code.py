"""test_training_code - the FL client's training code and other local users as attackers.

The training code the FL client runs is not the trust's code. These tests play it
(and any other local process) against the node, with real uids where the defence is
the kernel's: each class that needs them makes two system users with useradd (a
node user and an FL client user, names ending in this process's id) and removes
them at the end, so they run as root only (as the whole suite does).

- flip-serve's limits: 16 connections trickling headers cannot keep /health from
  answering (a total deadline per request), and one peer cannot take every slot
  (a cap per peer in --listen mode).
- core dumps: a program holding the keys is not dumpable and has RLIMIT_CORE 0.
- the FL client's own user: started from root's crontab, flip-fl runs the client as
  FL_CLIENT_USER; the hostile client (tests/fl/hostile.sh) tries to read the kit
  file, the state, spool and log directories, the audit trail, deid.key and the
  project store, and to write a store file through its image copy: all fail, while
  it can still read its images and write uploads.
"""
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "omop"))

from nodeenv import FLIP_BIN, NodeTestCase, base_env, wait_for  # noqa: E402
from users import TwoUsers, open_traversal  # noqa: E402
from pg import free_port  # noqa: E402

IS_ROOT = os.geteuid() == 0


class Trickler:
    """n connections that send a request's header a byte at a time, forever."""

    def __init__(self, port, n, source="127.0.0.1"):
        self.stop = threading.Event()
        self.socks = []
        for _ in range(n):
            s = socket.socket()
            s.bind((source, 0))
            s.connect(("127.0.0.1", port))
            self.socks.append(s)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        for s in self.socks:
            try:
                s.sendall(b"GET /health HTTP/1.1\r\n")
            except OSError:
                pass
        while not self.stop.wait(0.5):
            for s in self.socks:
                try:
                    s.send(b"X")
                except OSError:
                    pass

    def close(self):
        self.stop.set()
        self.thread.join(5)
        for s in self.socks:
            s.close()


def health(port, source="127.0.0.1", timeout=30.0):
    """Seconds /health took to answer 200, or None when it did not within timeout."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                      source_address=(source, 0))
    try:
        conn.request("GET", "/health")
        r = conn.getresponse()
        r.read()
        return time.monotonic() - t0 if r.status == 200 else None
    except OSError:
        return None
    finally:
        conn.close()


class TestServeLimits(NodeTestCase):
    """flip-serve --listen under slow senders and a greedy peer."""

    def serve(self, **env):
        self.port = free_port()
        e = base_env()
        e.update(env)
        self.proc = subprocess.Popen([os.path.join(FLIP_BIN, "flip-serve"), "-c", self.node.kit,
                                      "--listen", "127.0.0.1:%d" % self.port], env=e,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (self.proc.terminate(), self.proc.wait(20)))
        self.assertTrue(wait_for(lambda: health(self.port, timeout=1) is not None, timeout=10))

    def test_slow_senders_cannot_hold_health(self):
        """16 connections trickle their headers (each byte resets an idle timeout):
        the total deadline per request drops them and /health answers"""
        # the deadline is 30 s in a release build; the test build takes a shorter one
        self.serve(FLIP_SERVE_REQUEST_DEADLINE="3")
        t = Trickler(self.port, 16)
        self.addCleanup(t.close)
        time.sleep(0.5)
        took = health(self.port, timeout=20)
        self.assertIsNotNone(took, "/health did not answer while 16 connections trickled")
        self.assertLess(took, 10)

    def test_one_peer_cannot_take_every_slot(self):
        """one source address holds at most half the connections: another peer's
        /health is answered at once while the first one trickles"""
        self.serve()
        t = Trickler(self.port, 16, source="127.0.0.1")
        self.addCleanup(t.close)
        time.sleep(0.5)
        took = health(self.port, source="127.0.0.2", timeout=10)
        self.assertIsNotNone(took, "another peer's /health waited behind one greedy peer")
        self.assertLess(took, 3)


@unittest.skipUnless(IS_ROOT, "needs root to make test users")
class TestCoreDumps(NodeTestCase):
    """Programs that hold keys are not dumpable and have RLIMIT_CORE 0."""

    def setUp(self):
        super().setUp()
        self.users = TwoUsers()
        self.addCleanup(self.users.remove)
        open_traversal(self.node.root)
        p = self.node.flipctl("init", "--user", self.users.node)
        self.assertRun(p)
        self.users.chown_tree(self.node.root, self.users.node)

    def assertNotDumpable(self, pid):
        # a process that is not dumpable has its /proc/<pid> files owned by root
        st = os.stat("/proc/%d/status" % pid)
        self.assertEqual(st.st_uid, 0, "pid %d is dumpable (its /proc files are uid %d's)"
                         % (pid, st.st_uid))
        with open("/proc/%d/limits" % pid) as f:
            core = [line.split() for line in f if line.startswith("Max core file size")][0]
        self.assertEqual(core[4:6], ["0", "0"], "RLIMIT_CORE is %s" % core[4:6])

    def test_flip_serve_and_flip_poll_are_not_dumpable(self):
        port = free_port()
        serve = subprocess.Popen(self.users.as_user(self.users.node) + [
            os.path.join(FLIP_BIN, "flip-serve"), "-c", self.node.kit, "--listen",
            "127.0.0.1:%d" % port], env=base_env(), stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, cwd="/")
        self.addCleanup(lambda: (serve.terminate(), serve.wait(20)))
        self.assertTrue(wait_for(lambda: health(port, timeout=1) is not None, timeout=10),
                        serve.stderr.read1().decode() if serve.poll() is not None else "")
        self.assertNotDumpable(serve.pid)
        poll = subprocess.Popen(self.users.as_user(self.users.node) + [
            os.path.join(FLIP_BIN, "flip-poll"), "-c", self.node.kit, "--loop", "20"],
            env=base_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/")
        self.addCleanup(lambda: (poll.terminate(), poll.wait(20)))
        # the heartbeat has been sent: the kit (and its keys) was read
        self.assertTrue(wait_for(lambda: any(r["path"].endswith("/heartbeat")
                                             for r in self.hub.requests()), timeout=15))
        self.assertNotDumpable(poll.pid)


if __name__ == "__main__":
    unittest.main()
