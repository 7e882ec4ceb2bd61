# SPDX-License-Identifier: Apache-2.0
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


FLDIR = os.path.join(os.path.dirname(HERE), "fl")
sys.path.insert(0, FLDIR)
import makekit  # noqa: E402

SLOT = "Trust_2"
HOSTILE = os.path.join(FLDIR, "hostile.sh")
KEY = "internal-key-for-training-code"


@unittest.skipUnless(IS_ROOT, "needs root to make test users")
class TestTrainingCode(NodeTestCase):
    """The FL client under its own uid, started the cron way (flip-fl run as root)."""

    def setUp(self):
        super().setUp()
        self.users = TwoUsers()
        self.addCleanup(self.users.remove)
        self.kitdir = os.path.join(self.tmp, "fl-kit")
        self.images = os.path.join(self.tmp, "images")
        self.live = os.path.join(self.kitdir, "net-1", "services", SLOT)
        self.node.set_config(FL_KIT_DIR=self.kitdir, FL_KIT_SLOT=SLOT,
                             BASE_IMAGES_DOWNLOAD_DIR=self.images, FL_CLIENT_USER=self.users.fl,
                             TRUST_INTERNAL_SERVICE_KEY=KEY)
        open_traversal(self.tmp)
        self.assertRun(self.node.flipctl("init", "--user", self.users.node))
        self.users.chown_tree(self.node.root, self.users.node)
        os.makedirs(self.kitdir, exist_ok=True)     # flipctl init makes FL_KIT_DIR
        self.users.chown_tree(self.kitdir, self.users.node)
        tarball = makekit.write_tar(makekit.make_kit(SLOT, client_cmd=HOSTILE),
                                    os.path.join(self.tmp, "kit.tgz"))
        # installed by FL_KIT_DIR's owner, the node's user (install-kit refuses root)
        self.assertRun(self.node.run("flip-fl", "install-kit", tarball,
                                     wrap=self.users.as_user(self.users.node)))

    def tearDown(self):
        # never leave a client behind (before the node's folder goes)
        self.node.run("flip-fl", "stop", "--grace", "2")
        super().tearDown()

    def hand_over_a_copy(self):
        """an image copy as flip-serve's hand-off makes it (test_imaging_retrieval proves
        the hand-off itself): a hard link to a store file, 0440, the node's user's, in the
        client's group, in folders 0750 of that group"""
        store = os.path.join(self.node.state, "imaging", "p1", "data", "s1", "ACC1", "scans",
                             "1", "resources", "DICOM", "files")
        os.makedirs(store)
        src = os.path.join(store, "1.dcm")
        with open(src, "wb") as f:
            f.write(b"DICM original")
        self.users.chown_tree(os.path.join(self.node.state, "imaging"), self.users.node)
        copydir = os.path.join(self.images, "net-1", "hubproject", "ACC1", "scans", "1",
                               "resources", "DICOM", "files")
        os.makedirs(copydir)
        d = copydir
        while d != os.path.join(self.images, "net-1"):
            os.chown(d, self.users.node_pw.pw_uid, self.users.fl_pw.pw_gid)
            os.chmod(d, 0o750)
            d = os.path.dirname(d)
        os.chown(src, self.users.node_pw.pw_uid, self.users.fl_pw.pw_gid)
        os.chmod(src, 0o440)
        copy = os.path.join(copydir, "1.dcm")
        os.link(src, copy)
        return src, copy

    def client_log(self):
        with open(os.path.join(self.node.logdir, "fl-client.log"), errors="replace") as f:
            return f.read()

    def test_hostile_training_code_reads_no_secret_and_cannot_change_the_store(self):
        src, copy = self.hand_over_a_copy()
        upload = os.path.join(self.images, "net-1", "upload")
        self.node.set_config(FL_CLIENT_COMMAND=" ".join([
            HOSTILE, self.node.kit, self.node.state, self.node.spool, self.node.logdir, copy,
            upload, os.path.join(self.live, "transfer")]))
        p = self.node.run("flip-fl", "run")           # as root: root's crontab line
        self.assertRun(p)
        self.assertTrue(wait_for(lambda: "hostile: done" in self.client_log(), timeout=20),
                        self.client_log())
        log = self.client_log()
        for what in ("read-kit-file", "list-state-dir", "read-deid-key", "list-project-store",
                     "list-spool", "list-log-dir", "read-audit-trail", "write-image-copy",
                     "chmod-image-copy", "replace-image-copy"):
            self.assertIn("hostile: DENIED %s\n" % what, log)
        for what in ("read-image-copy", "write-upload", "write-transfer"):
            self.assertIn("hostile: ALLOWED %s\n" % what, log)
        with open(src, "rb") as f:
            self.assertEqual(f.read(), b"DICM original")
        self.assertIn("hostile: uid %d gid %d\n" % (self.users.fl_pw.pw_uid,
                                                     self.users.fl_pw.pw_gid), log)
        env = [line for line in log.splitlines() if line.startswith("hostile: env ")][0].split()
        for name in ("TRUST_API_KEY", "AES_KEY_BASE64", "DATA_ACCESS_POSTGRES_PASSWORD",
                     "CENTRAL_HUB_API_URL", "FLIP_ENV_FILE"):
            self.assertNotIn(name, env)
        for name in ("DATA_ACCESS_API_URL", "IMAGING_API_URL", "TRUST_INTERNAL_SERVICE_KEY",
                     "TRUST_INTERNAL_SERVICE_KEY_HEADER"):
            self.assertIn(name, env)
        # the supervisor did its own work as the node's user: nothing of root's was left
        for root, dirs, files in os.walk(self.node.root):
            for n in dirs + files:
                st = os.lstat(os.path.join(root, n))
                self.assertNotEqual(st.st_uid, 0, "root left %s" % os.path.join(root, n))
        pid = json.load(open(os.path.join(self.node.state, "fl", "client.json")))["pid"]
        with open("/proc/%d/status" % pid) as f:
            uids = [line.split()[1:] for line in f if line.startswith("Uid:")][0]
        self.assertEqual(set(uids), {str(self.users.fl_pw.pw_uid)})
        # stopped by root (root's crontab, or the operator), and it is gone
        self.assertRun(self.node.run("flip-fl", "stop", "--grace", "2"))
        self.assertFalse(os.path.exists("/proc/%d" % pid) and
                         open("/proc/%d/stat" % pid).read().split(") ")[1][0] != "Z")

    def test_never_root_never_the_nodes_user(self):
        for user, named in (("root", ["root"]), (self.users.node, [self.users.node])):
            self.node.set_config(FL_CLIENT_USER=user)
            p = self.node.run("flip-fl", "run")
            self.assertRun(p, 2)
            for n in named:
                self.assertIn(n, p.stderr)
        self.node.set_config(FL_CLIENT_USER=self.users.node)
        p = self.node.run("flip-fl", "run")
        self.assertIn("FL_CLIENT_USER is %s" % self.users.node, p.stderr)
        self.assertIn("node's own user %s" % self.users.node, p.stderr)
        self.node.set_config(FL_CLIENT_USER="no-such-user-here")
        self.assertRun(self.node.run("flip-fl", "run"), 2)
        self.assertFalse(os.path.exists(os.path.join(self.node.state, "fl", "client.json")) and
                         json.load(open(os.path.join(self.node.state, "fl",
                                                     "client.json"))).get("pid"))

    def test_the_nodes_user_cannot_start_the_client(self):
        """flip-fl run as the node's user cannot become the client's user: it refuses
        (under systemd the client is a unit of its own: flip-fl run --external)"""
        p = self.node.run("flip-fl", "run", wrap=self.users.as_user(self.users.node))
        self.assertRun(p, 2)
        self.assertIn("--external", p.stderr)
        p = self.node.run("flip-fl", "run", "--external", wrap=self.users.as_user(self.users.node))
        self.assertRun(p)
        # the client unit's environment file: only the client's keys, for systemd to read
        with open(os.path.join(self.node.state, "fl", "client.env")) as f:
            text = f.read()
        self.assertIn('TRUST_INTERNAL_SERVICE_KEY="%s"' % KEY, text)
        self.assertNotIn("AES_KEY_BASE64", text)
        self.assertNotIn("TRUST_API_KEY=", text)
        st = os.stat(os.path.join(self.node.state, "fl", "client.env"))
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (self.users.node_pw.pw_uid, 0o600))


if __name__ == "__main__":
    unittest.main()
