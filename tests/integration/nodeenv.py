# SPDX-License-Identifier: Apache-2.0
"""nodeenv - run flip-node's programs against the hub emulator, and look at the result.

    from nodeenv import Node, NodeTestCase

    class T(NodeTestCase):
        def test_x(self):
            tid = self.hub.add_task("delete_imaging", payloads.make("delete_imaging"))
            self.assertEqual(self.node.poll().returncode, 0)
            self.assertEqual(self.node.jobs("new"), [...])

Node(tmpdir, hub, **extra_config) writes a kit file (mode 0600) holding hub.env()
plus FLIP_SPOOL_DIR / FLIP_STATE_DIR / FLIP_LOG_DIR under tmpdir, then runs the
programs with `-c KIT` in a scrubbed environment (PATH and LANG only, so nothing of
the caller's FLIP_* or proxy settings leaks in). An extra_config value of None
removes that key from the kit. Programs come from $FLIP_BIN (the test build, crash
points compiled in; default build/test/bin) or, with release=True, from
$FLIP_RELEASE_BIN (default build/bin). Every run returns a CompletedProcess
(text, captured output, 60 s timeout) and its stderr is also kept in
node.stderr_log for the secrets checks.

NodeTestCase starts the emulator (tests/hub/hubclient.Hub) in setUp in a fresh
tempfile.mkdtemp() directory, with the class attribute HUB_KWARGS passed to
Hub.start() (e.g. {"tls": True}), makes self.node, and in tearDown stops the hub
and removes the directory unless FLIP_KEEP_TMP is set (then its path is printed).
Its run_all() is one poll, exec and report run that must each exit 0; result(tid)
is the one result the hub holds for a task.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "hub"))

from hubclient import Hub  # noqa: E402

FLIP_BIN = os.path.abspath(os.environ.get("FLIP_BIN") or os.path.join(ROOT, "build", "test", "bin"))
FLIP_RELEASE_BIN = os.path.abspath(os.environ.get("FLIP_RELEASE_BIN")
                                   or os.path.join(ROOT, "build", "bin"))
# flipctl from the test build when it was built there, else from the release build
FLIPCTL = next((p for p in (os.path.join(FLIP_BIN, "flipctl"),
                            os.path.join(FLIP_RELEASE_BIN, "flipctl")) if os.path.exists(p)),
               os.path.join(FLIP_BIN, "flipctl"))
HAVE_FLIPCTL = os.path.exists(FLIPCTL)

STATES = ("tmp", "new", "cur", "out", "done", "failed", "hold")
JOB_NAME_RE = re.compile(r"^[0-9]{16}-[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")
TIMEOUT = 60

EXIT_CRASH = 99     # FLIP_CRASH_AT: crash_point() calls _exit(99)


def base_env():
    """The scrubbed environment every program runs in (plus the sanitizers' options,
    for a SAN=1 build)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    return env


class Node:
    """One flip-node installation: a kit file and its spool, state and log dirs."""

    def __init__(self, tmpdir, hub, **extra_config):
        self.root = os.path.abspath(tmpdir)
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        self.hub = hub
        self.spool = os.path.join(self.root, "spool")
        self.state = os.path.join(self.root, "state")
        self.logdir = os.path.join(self.root, "log")
        self.kit = os.path.join(self.root, "flip.env")
        self.config = dict(hub.env())
        # images and the FL kit too: flipctl init creates BASE_IMAGES_DOWNLOAD_DIR/net-1
        # and FL_KIT_DIR, and their defaults (/opt/flip/...) are outside the test's directory
        self.config.update(FLIP_SPOOL_DIR=self.spool, FLIP_STATE_DIR=self.state,
                           FLIP_LOG_DIR=self.logdir,
                           BASE_IMAGES_DOWNLOAD_DIR=os.path.join(self.root, "images"),
                           # a user every host has (the default, flip-fl, is the
                           # package's): image copies go to its group
                           FL_CLIENT_USER="nobody",
                           FL_KIT_DIR=os.path.join(self.root, "fl-kit"))
        for k, v in extra_config.items():
            if v is None:
                self.config.pop(k, None)
            else:
                self.config[k] = str(v)
        self.stderr_log = []
        self.write_kit()

    # -- the kit -----------------------------------------------------------------

    def write_kit(self, mode=0o600):
        """(Re)write the kit file from self.config with the given mode."""
        fd = os.open(self.kit, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("# flip-node kit written by tests/integration/nodeenv.py\n")
            for k, v in self.config.items():
                f.write("%s=%s\n" % (k, v))
        os.chmod(self.kit, mode)

    def set_config(self, **kw):
        """Change kit keys (None removes one) and rewrite the kit."""
        for k, v in kw.items():
            if v is None:
                self.config.pop(k, None)
            else:
                self.config[k] = str(v)
        self.write_kit()

    # -- running the programs ----------------------------------------------------

    def run(self, prog, *args, env=None, crash_at=None, release=False, timeout=TIMEOUT,
            config=True, wrap=()):
        """Run one program with -c KIT (under the command wrap, e.g. strace, if given);
        returns the CompletedProcess."""
        path = os.path.join(FLIP_RELEASE_BIN if release else FLIP_BIN, prog)
        if prog == "flipctl" and not release:
            path = FLIPCTL
        e = base_env()
        if crash_at:
            e["FLIP_CRASH_AT"] = crash_at
        e.update(env or {})
        argv = list(wrap) + [path] + (["-c", self.kit] if config else []) + list(args)
        p = subprocess.run(argv, env=e, text=True, capture_output=True, timeout=timeout,
                           cwd=self.root)
        self.stderr_log.append(p.stderr)
        self.stderr_log.append(p.stdout)
        return p

    def popen(self, prog, *args, env=None, crash_at=None):
        """Start a program in the background (stdout/stderr piped, text)."""
        e = base_env()
        if crash_at:
            e["FLIP_CRASH_AT"] = crash_at
        e.update(env or {})
        return subprocess.Popen([os.path.join(FLIP_BIN, prog), "-c", self.kit] + list(args),
                                env=e, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=self.root)

    def poll(self, *args, env=None, crash_at=None, **kw):
        return self.run("flip-poll", *args, env=env, crash_at=crash_at, **kw)

    def exec(self, *args, env=None, crash_at=None, **kw):
        return self.run("flip-exec", *args, env=env, crash_at=crash_at, **kw)

    def report(self, *args, env=None, crash_at=None, **kw):
        return self.run("flip-report", *args, env=env, crash_at=crash_at, **kw)

    def flipctl(self, *args, env=None, **kw):
        return self.run("flipctl", *args, env=env, **kw)

    def cycle(self, snapshot=False):
        """poll, exec, report once each (bodyless heartbeats unless snapshot);
        returns the three CompletedProcesses."""
        return (self.poll(*([] if snapshot else ["--no-snapshot"])), self.exec(),
                self.report())

    # -- the spool ------------------------------------------------------------------

    def state_dir(self, state):
        return os.path.join(self.spool, state)

    def jobs(self, state):
        """Sorted job directory names in one state ([] when the state dir is absent)."""
        d = self.state_dir(state)
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def find_job(self, task_id):
        """(state, name) of the job for task_id, or None; asserts it is unique."""
        found = [(st, n) for st in STATES for n in self.jobs(st)
                 if n[17:] == task_id]
        if len(found) > 1:
            raise AssertionError("task %s is in the spool %d times: %r"
                                 % (task_id, len(found), found))
        return found[0] if found else None

    def job_dir(self, name_or_id):
        """The directory of a job given its name or its task id."""
        for st in STATES:
            for n in self.jobs(st):
                if n == name_or_id or n[17:] == name_or_id:
                    return os.path.join(self.state_dir(st), n)
        raise KeyError("no job %s in %s" % (name_or_id, self.spool))

    def job_files(self, name_or_id):
        """Sorted file names in a job's directory."""
        return sorted(os.listdir(self.job_dir(name_or_id)))

    def job_json(self, name_or_id, file):
        return read_json(os.path.join(self.job_dir(name_or_id), file))

    def write_job_json(self, name_or_id, file, obj):
        """Replace a job file atomically (tests use it to make a retry due now)."""
        path = os.path.join(self.job_dir(name_or_id), file)
        tmp = path + ".test-tmp"
        with open(tmp, "w") as f:
            json.dump(obj, f)
        os.replace(tmp, path)

    def make_due(self, name_or_id=None):
        """Set next_attempt_at to 0 in state.json of one job (or of every job in out/),
        so the next flip-report tries it without waiting out the backoff."""
        names = [name_or_id] if name_or_id else self.jobs("out")
        for n in names:
            path = os.path.join(self.job_dir(n), "state.json")
            if os.path.exists(path):
                st = read_json(path)
                st["next_attempt_at"] = 0
                self.write_job_json(n, "state.json", st)

    def spool_snapshot(self):
        """{state: [job names]} for every state, plus "seq" (the seq file's text)."""
        snap = {st: self.jobs(st) for st in STATES}
        seq = os.path.join(self.spool, "seq")
        snap["seq"] = None
        if os.path.exists(seq):
            with open(seq) as f:
                snap["seq"] = f.read().strip()
        return snap

    def task_ids(self, state):
        return [n[17:] for n in self.jobs(state)]

    # -- the audit trail --------------------------------------------------------------

    def audit_path(self):
        return os.path.join(self.logdir, "audit.log")

    def audit_lines(self):
        """The raw lines of audit.log (without newlines)."""
        p = self.audit_path()
        if not os.path.exists(p):
            return []
        with open(p, encoding="utf-8") as f:
            return f.read().splitlines()

    def audit_events(self):
        return [json.loads(line) for line in self.audit_lines()]

    def all_files(self):
        """Every file path under the spool, state and log directories."""
        out = []
        for top in (self.spool, self.state, self.logdir):
            for dirpath, _dirs, files in os.walk(top):
                out.extend(os.path.join(dirpath, f) for f in files)
        return out


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def verify_audit_chain(lines):
    """Check the audit hash chain in Python; returns None when intact, else a reason.

    Each line is TEXT + ',"hash":"<h>"}' with h = sha256(TEXT + "}"); the prev of
    line k+1 is the hash of line k."""
    prev = None
    for i, line in enumerate(lines, 1):
        m = re.search(r',"hash":"([0-9a-f]{64})"\}$', line)
        if m is None:
            return "line %d has no trailing hash member" % i
        text = line[:m.start()] + "}"
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != m.group(1):
            return "line %d: hash mismatch" % i
        obj = json.loads(line)
        if obj.get("hash") != m.group(1):
            return "line %d: hash member is not the trailing one" % i
        if prev is not None and obj.get("prev") != prev:
            return "line %d: prev does not match line %d" % (i, i - 1)
        if i == 1 and obj.get("prev") != "0" * 64:
            return "line 1: prev is not 64 zeros"
        prev = m.group(1)
    return None


def failure_body(message, status_code):
    """The exact task result body of a failure with a known status code."""
    return {"success": False,
            "result": json.dumps({"error": message, "status_code": status_code})}


class NodeTestCase(unittest.TestCase):
    """Starts a hub emulator and a Node in a fresh temporary directory per test."""

    HUB_KWARGS = {}
    NODE_CONFIG = {}

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="flip-it-")
        self.hub = Hub().start(os.path.join(self.tmp, "hub"), **self.HUB_KWARGS)
        self.node = Node(os.path.join(self.tmp, "node"), self.hub, **self.NODE_CONFIG)

    def tearDown(self):
        self.hub.stop()
        if os.environ.get("FLIP_KEEP_TMP"):
            print("\nkept %s for %s" % (self.tmp, self.id()), file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers shared by the test files ----------------------------------------

    def add(self, task_type, payload=None, **kw):
        """Queue a task with a valid payload (from payloads.make) unless one is given."""
        import payloads
        if payload is None:
            payload = payloads.make(task_type, self.hub.trust_id)
        return self.hub.add_task(task_type, payload, **kw)

    def assertRun(self, p, code=0, msg=None):
        """Assert a CompletedProcess exited with code; show its stderr otherwise."""
        self.assertEqual(p.returncode, code, "%s%s exited %d, expected %d; stderr:\n%s"
                         % (msg + ": " if msg else "", p.args[0], p.returncode, code,
                            p.stderr))

    def run_until_settled(self, ids, rounds=10):
        """poll/exec/report until every id has a result on the hub (or rounds run out)."""
        for _ in range(rounds):
            self.node.poll("--no-snapshot")
            self.node.exec()
            self.node.make_due()
            self.node.report()
            if all(self.hub.task(i)["status"] in ("COMPLETED", "FAILED") for i in ids):
                return
        self.fail("tasks did not settle: %r" % {i: self.hub.task(i)["status"] for i in ids})

    def assertExactlyOnce(self, ids):
        """Every task id has exactly one result recorded on the hub."""
        for i in ids:
            t = self.hub.task(i)
            self.assertIn(t["status"], ("COMPLETED", "FAILED"), "task %s: %r" % (i, t))
            self.assertEqual(len(t["results"]), 1, "task %s results: %r" % (i, t["results"]))

    def assertSpoolSettled(self):
        """Nothing left in tmp/, new/, cur/ or out/."""
        for st in ("tmp", "new", "cur", "out"):
            self.assertEqual(self.node.jobs(st), [], "jobs left in %s/" % st)

    def run_all(self, *poll_args):
        """One flip-poll, flip-exec and flip-report run, each of which must exit 0."""
        self.assertRun(self.node.poll(*poll_args))
        self.assertRun(self.node.exec())
        self.assertRun(self.node.report())

    def result(self, tid):
        """The one result the hub holds for task tid."""
        results = self.hub.task(tid)["results"]
        self.assertEqual(len(results), 1, results)
        return results[0]

    def result_requests(self, task_id=None):
        """The hub's record of POST .../result requests (for one task when given)."""
        suffix = "/result"
        return [r for r in self.hub.requests()
                if r["method"] == "POST" and r["path"].endswith(suffix)
                and (task_id is None or r["path"] == "/api/tasks/%s/result" % task_id)]

    def pending_requests(self):
        return [r for r in self.hub.requests() if r["path"] == "/api/tasks/pending"]


def wait_for(pred, timeout=10.0, step=0.02):
    """Poll pred() until it is true; returns its last value."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > end:
            return v
        time.sleep(step)
