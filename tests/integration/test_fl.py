# SPDX-License-Identifier: Apache-2.0
"""test_fl - flip-fl: the FL kit installed and checked, the client kept running.

Kits come from tests/fl/makekit.py (made as NVFLARE provisions them, signed by
their own root CA); the client is tests/fl/fakeclient.sh, which sub_start.sh of
the kit executes. Covered:

- install-kit: the live kit at FL_KIT_DIR/net-1/services/<slot>/ with modes set
  by rule, local/ rendered before the switch, an audit event with the tarball's
  SHA-256 and no key material, a re-install that replaces the kit whole; each
  tampered kit (edited file, missing or extra signature entry, bad signature,
  wrong slot, expired certificate, key that does not match, certificate of
  another CA) and each hostile tarball (.., absolute, links out, a write through
  a link, hard links out, device, FIFO, a huge claimed member, 10,001 entries, a
  duplicate) refused with exit 2 naming the problem, nothing written outside,
  the live kit unchanged, nothing left beside it.
- check: exit 0 and local/ rendered (GPUs and memory, logging to stdout, the
  privacy filter of FL_SITE_PRIVACY_*, from the kit file or the environment, or
  of the policy's [fl_privacy]); an edit
  of the live kit, a missing image folder, an unwritable transfer/, invalid
  privacy settings: exit 2, one line per problem; no setting removes a stale
  privacy.json; FL_SITE_PRIVACY_* with no valid setting never starts the client.
- run/stop/start/status: run starts the client once and only once, in its own
  session, without the node's secrets in its environment; a client killed with
  SIGKILL is recorded (audit, status) and restarted only after the backoff,
  which doubles; stop runs stop_fl.sh and keeps the client stopped across runs;
  a client that ignores SIGTERM is killed after the grace period; start runs it
  again; status shows the job and round from the client's log; metrics.

FLIP_FL_BACKOFF_BASE (test builds) makes the backoff fractions of a second.
"""

import base64
import hashlib
import json
import os
import pwd
import shutil
import subprocess
import signal
import stat
import sys
import tempfile
import time
import unittest

from nodeenv import Node, read_json, verify_audit_chain, wait_for
from users import open_traversal

HERE = os.path.dirname(os.path.abspath(__file__))
FLDIR = os.path.join(os.path.dirname(HERE), "fl")
sys.path.insert(0, FLDIR)
import makekit  # noqa: E402

FAKECLIENT = os.path.join(FLDIR, "fakeclient.sh")
SLOT = "Trust_2"
BACKOFF = 0.4


class NoHub:
    """flip-fl talks to no hub: the kit file needs none of its keys."""

    def env(self):
        return {}


def _mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


class FLTestCase(unittest.TestCase):
    """A node with FL keys; the good kit tarball made once for the class."""

    @classmethod
    def setUpClass(cls):
        cls.kits = tempfile.mkdtemp(prefix="flip-fl-kits-")
        cls.good_kit = makekit.make_kit(SLOT, client_cmd=FAKECLIENT)
        cls.good = makekit.write_tar(cls.good_kit, os.path.join(cls.kits, "good.tgz"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.kits, ignore_errors=True)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="flip-it-fl-")
        root = os.path.join(self.tmp, "node")
        self.kitdir = os.path.join(root, "fl-kit")
        self.images = os.path.join(root, "images")
        os.makedirs(os.path.join(self.images, "net-1"))
        # the client runs as FL_CLIENT_USER (nobody, nodeenv's): it must reach its kit
        open_traversal(root)
        self.node = Node(root, NoHub(), FL_KIT_DIR=self.kitdir, FL_KIT_SLOT=SLOT,
                         BASE_IMAGES_DOWNLOAD_DIR=self.images)
        self.live = os.path.join(self.kitdir, "net-1", "services", SLOT)
        self.services = os.path.dirname(self.live)
        self.env = {"FLIP_FL_BACKOFF_BASE": str(BACKOFF)}

    def tearDown(self):
        # never leave a client behind: stop whatever this test started
        st = os.path.join(self.node.state, "fl", "client.json")
        if os.path.exists(st):
            self.fl("stop", "--grace", "1")
        if os.environ.get("FLIP_KEEP_TMP"):
            print("\nkept %s for %s" % (self.tmp, self.id()), file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers -----------------------------------------------------------------

    def fl(self, *args, env=None, **kw):
        e = dict(self.env)
        e.update(env or {})
        return self.node.run("flip-fl", *args, env=e, **kw)

    def assertRun(self, p, code=0, msg=None):
        self.assertEqual(p.returncode, code, "%s%s exited %d, expected %d; stderr:\n%s"
                         % (msg + ": " if msg else "", " ".join(p.args[-2:]), p.returncode,
                            code, p.stderr))

    def install_good(self):
        self.assertRun(self.fl("install-kit", self.good))

    def events(self, name):
        return [e for e in self.node.audit_events() if e["event"] == name]

    def state(self):
        return read_json(os.path.join(self.node.state, "fl", "client.json"))

    def client_log(self):
        p = os.path.join(self.node.logdir, "fl-client.log")
        if not os.path.exists(p):
            return ""
        with open(p, encoding="utf-8", errors="replace") as f:
            return f.read()

    def tarball(self, name, tamper=(), **kw):
        kit = makekit.make_kit(kw.pop("slot", SLOT), client_cmd=FAKECLIENT, tamper=tamper)
        return makekit.write_tar(kit, os.path.join(self.tmp, name), **kw)

    def live_digest(self):
        """A digest of every file of the live kit's startup/ (to prove it unchanged)."""
        h = hashlib.sha256()
        d = os.path.join(self.live, "startup")
        for n in sorted(os.listdir(d)):
            with open(os.path.join(d, n), "rb") as f:
                h.update(n.encode() + b"\0" + f.read())
        return h.hexdigest()

    def leftovers(self):
        return [n for n in os.listdir(self.services) if n.startswith(".")]


class TestInstallKit(FLTestCase):

    def test_install_modes_audit_and_render(self):
        p = self.fl("install-kit", self.good,
                    env={"FL_SITE_PRIVACY_POLICY": "percentile"})
        self.assertRun(p)
        self.assertEqual(sorted(os.listdir(self.live)), ["local", "startup", "transfer"])
        # the FL client's user (FL_CLIENT_USER) reads the kit through its group; its
        # workspace (the kit folder) and transfer/ are its to write
        nobody = pwd.getpwnam("nobody").pw_gid
        for d, mode in (("", 0o1770), ("startup", 0o750), ("local", 0o750),
                        ("transfer", 0o2770)):
            self.assertEqual(_mode(os.path.join(self.live, d)), mode, d)
            self.assertEqual(os.lstat(os.path.join(self.live, d)).st_gid, nobody, d)
        s = os.path.join(self.live, "startup")
        self.assertEqual(_mode(os.path.join(s, "client.key")), 0o640)
        self.assertEqual(os.lstat(os.path.join(s, "client.key")).st_gid, nobody)
        self.assertEqual(_mode(os.path.join(s, "rootCA.pem")), 0o640)
        self.assertEqual(_mode(os.path.join(s, "signature.json")), 0o640)
        for sh in ("start.sh", "sub_start.sh", "stop_fl.sh"):
            self.assertEqual(_mode(os.path.join(s, sh)), 0o750, sh)
        self.assertEqual(_mode(os.path.join(self.live, "local", "resources.json.default")),
                         0o640)
        # local/ arrived rendered, privacy.json included
        priv = read_json(os.path.join(self.live, "local", "privacy.json"))
        self.assertEqual(priv["default_scope"], "site_default")
        self.assertTrue(os.path.exists(os.path.join(self.live, "local", "resources.json")))
        # the audit event: the tarball's fingerprint, never key material
        with open(self.good, "rb") as f:
            fp = hashlib.sha256(f.read()).hexdigest()
        ev = self.events("fl.kit.installed")
        self.assertEqual(len(ev), 1)
        self.assertEqual(ev[0]["detail"]["fingerprint"], fp)
        self.assertEqual(ev[0]["detail"]["slot"], SLOT)
        self.assertIn(fp, p.stdout)
        text = "\n".join(self.node.audit_lines()) + p.stdout + p.stderr
        key_body = self.good_kit["key_pem"].decode().splitlines()[1]
        self.assertNotIn(key_body, text)
        self.assertNotIn("PRIVATE KEY", text)
        self.assertIsNone(verify_audit_chain(self.node.audit_lines()))
        self.assertEqual(self.leftovers(), [])

    def test_reinstall_replaces_the_kit(self):
        self.install_good()
        with open(os.path.join(self.live, "transfer", "old-run.txt"), "w") as f:
            f.write("from the old kit\n")
        before = self.live_digest()
        other = self.tarball("other.tgz", prefix="")     # a flat tarball this time
        self.assertRun(self.fl("install-kit", other))
        self.assertNotEqual(self.live_digest(), before)
        self.assertFalse(os.path.exists(os.path.join(self.live, "transfer", "old-run.txt")))
        self.assertEqual(self.leftovers(), [])
        self.assertEqual(len(self.events("fl.kit.installed")), 2)
        self.assertRun(self.fl("check"))

    def test_tampered_kits_are_refused(self):
        self.install_good()
        before = self.live_digest()
        cases = {
            "edit": "startup/start.sh: signature does not verify",
            "missing-sig": "startup/signature.json: no signature for stop_fl.sh",
            "extra-sig": "signs readme.txt, which is not in startup/",
            "bad-sig": "startup/stop_fl.sh: signature does not verify",
            "wrong-slot": "the kit is for slot Trust_99, not FL_KIT_SLOT Trust_2",
            "expired": "startup/client.crt: expired on",
            "key-mismatch": "startup/client.key: not the key of client.crt",
            "other-ca": "startup/client.crt: does not chain to rootCA.pem",
        }
        for tamper, needle in cases.items():
            with self.subTest(tamper=tamper):
                p = self.fl("install-kit", self.tarball(tamper + ".tgz", [tamper]))
                self.assertRun(p, 2, tamper)
                self.assertIn(needle, p.stderr)
                self.assertEqual(self.live_digest(), before)
                self.assertEqual(self.leftovers(), [])
        refused = self.events("fl.kit.refused")
        self.assertEqual(len(refused), len(cases))
        self.assertTrue(all(e["detail"]["stage"] == "verify" for e in refused))

    def test_unsigned_kit_installs_and_runs(self):
        """NVFLARE 2.8 provisions some kits without signature.json."""
        unsigned = self.tarball("unsigned.tgz", ["unsigned"])
        p = self.fl("install-kit", unsigned)
        self.assertRun(p)
        self.assertIn("startup/signature.json: missing; the kit's files are not signed", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.live, "startup", "signature.json")))
        ev = self.events("fl.kit.installed")
        self.assertEqual((len(ev), ev[0]["detail"]["signed"]), (1, False))
        self.assertEqual(len(self.events("fl.kit.unsigned")), 1)
        self.assertRun(self.fl("check"))
        self.assertRun(self.fl("run"))
        self.assertTrue(wait_for(lambda: "Round 1 started" in self.client_log(), 10))
        # a signed kit still verifies every file it lists
        self.assertTrue(self.events("fl.kit.installed")[0]["detail"]["signed"] is False)

    def test_unsigned_kit_refused_when_signatures_are_required(self):
        self.install_good()
        before = self.live_digest()
        need = {"FL_KIT_REQUIRE_SIGNATURE": "yes"}
        p = self.fl("install-kit", self.tarball("unsigned.tgz", ["unsigned"]), env=need)
        self.assertRun(p, 2)
        self.assertIn("startup/signature.json: missing, and FL_KIT_REQUIRE_SIGNATURE is set",
                      p.stderr)
        self.assertEqual(self.live_digest(), before)
        self.assertRun(self.fl("check", env=need))     # the signed kit is fine
        self.assertTrue(self.events("fl.kit.installed")[0]["detail"]["signed"])

    def test_root_ca_pin(self):
        pin = self.good_kit["root_sha256"]
        colons = ":".join(pin[i:i + 2] for i in range(0, 64, 2)).upper()
        for value in (pin, colons):
            with self.subTest(pin=value[:8]):
                self.assertRun(self.fl("install-kit", self.good,
                                       env={"FL_KIT_ROOT_CA_SHA256": value}))
        other = "0" * 64
        p = self.fl("check", env={"FL_KIT_ROOT_CA_SHA256": other})
        self.assertRun(p, 2)
        self.assertIn("is not the one FL_KIT_ROOT_CA_SHA256 pins", p.stderr)
        # a kit made by another root (its own rootCA.pem, its own signatures) is refused
        p = self.fl("install-kit", self.tarball("stranger.tgz"),
                    env={"FL_KIT_ROOT_CA_SHA256": pin})
        self.assertRun(p, 2)
        self.assertIn("this kit was not made by the expected hub", p.stderr)
        p = self.fl("check", env={"FL_KIT_ROOT_CA_SHA256": "abc"})
        self.assertRun(p, 2)
        self.assertIn("FL_KIT_ROOT_CA_SHA256 is not a SHA-256 fingerprint", p.stderr)

    def test_expiring_certificate_warns(self):
        p = self.fl("install-kit", self.tarball("expiring.tgz", ["expiring"]))
        self.assertRun(p)
        self.assertIn("startup/client.crt: expires on", p.stderr)
        p = self.fl("check")
        self.assertRun(p)
        self.assertIn("warning", p.stderr)

    def test_hostile_tarballs_are_refused(self):
        self.install_good()
        before = self.live_digest()
        cases = {
            "dotdot": "`..` in path",
            "dotdot-inner": "`..` in path",
            "absolute": "absolute path",
            "symlink-abs": "link to an absolute path",
            "symlink-up": "link pointing up",
            "symlink-through": "through a link",
            "hardlink-abs": "hard link target: absolute path",
            "hardlink-up": "hard link target: `..` in path",
            "device": "a device, FIFO or socket",
            "fifo": "a device, FIFO or socket",
            "huge": "over the cap of 67108864 bytes per member",
            "many": "more than the cap of 10000 entries",
            "duplicate": "appears twice",
        }
        kit = makekit.make_kit(SLOT, client_cmd=FAKECLIENT)
        outside = os.path.dirname(self.tmp)
        for kind, needle in cases.items():
            with self.subTest(kind=kind):
                path = makekit.hostile_tar(kit, os.path.join(self.tmp, kind + ".tar"), kind)
                p = self.fl("install-kit", path)
                self.assertRun(p, 2, kind)
                self.assertIn(needle, p.stderr)
                self.assertEqual(self.live_digest(), before)
                self.assertEqual(self.leftovers(), [])
        for name in ("evil-dotdot.txt", "evil-inner.txt", "evil-abs.txt"):
            for d in (self.tmp, outside, self.kitdir, os.path.dirname(self.kitdir),
                      self.services, os.path.dirname(self.services)):
                self.assertFalse(os.path.exists(os.path.join(d, name)), (d, name))
        self.assertEqual(len(self.events("fl.kit.refused")), len(cases))

    def test_not_a_tarball(self):
        path = os.path.join(self.tmp, "notes.txt")
        with open(path, "w") as f:
            f.write("hello\n" * 100)
        p = self.fl("install-kit", path)
        self.assertRun(p, 2)
        self.assertIn("not a tar archive", p.stderr)
        p = self.fl("install-kit", os.path.join(self.tmp, "missing.tgz"))
        self.assertRun(p, 1)

    def test_only_the_kit_folders_owner_installs_from_stdin_too(self):
        # a .deb host: FL_KIT_DIR is the node's user's (flipctl init), and a kit
        # installed by root would be root's, which the units cannot read
        os.makedirs(self.kitdir)
        os.chown(self.kitdir, 65534, 65534)
        p = self.fl("install-kit", self.good)
        self.assertRun(p, 2)
        self.assertIn("install the kit as that user", p.stderr)
        self.assertIn("install-kit - <", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.kitdir, "net-1")))
        # and made nothing of its own on the way (the state and audit files stay the node's)
        self.assertFalse(os.path.exists(os.path.join(self.node.state, "fl")))
        # its owner can take the tarball on standard input (from a file only root reads)
        os.chown(self.kitdir, os.geteuid(), os.getegid())
        with open(self.good, "rb") as tarball:
            p = subprocess.run([os.path.join(os.environ["FLIP_BIN"], "flip-fl"), "-c",
                                self.node.kit, "install-kit", "-"], stdin=tarball,
                               capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(os.path.exists(os.path.join(self.live, "startup", "fed_client.json")))
        # a pipe is not a tarball it can hash and check as one file: refused
        with open(self.good, "rb") as tarball:
            p = subprocess.run([os.path.join(os.environ["FLIP_BIN"], "flip-fl"), "-c",
                                self.node.kit, "install-kit", "-"], input=tarball.read(),
                               capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 2, p.stderr)

    def test_slot_must_be_configured(self):
        self.node.set_config(FL_KIT_SLOT=None)
        for args in (("check",), ("run",), ("install-kit", self.good), ("status",)):
            p = self.fl(*args)
            self.assertRun(p, 2, args[0])
            self.assertIn("FL_KIT_SLOT", p.stderr)


class TestCheck(FLTestCase):

    def test_check_renders_local(self):
        self.install_good()
        self.node.set_config(NUM_AVAILABLE_GPUS=4, MEMORY_PER_GPU_IN_GIB=40)
        p = self.fl("check")
        self.assertRun(p)
        self.assertIn("kit OK", p.stdout)
        res = read_json(os.path.join(self.live, "local", "resources.json"))
        rm = [c for c in res["components"] if c["id"] == "resource_manager"][0]
        self.assertEqual(rm["args"], {"num_of_gpus": 4, "mem_per_gpu_in_GiB": 40})
        self.assertTrue(rm["path"].endswith("GPUResourceManager"))
        logc = read_json(os.path.join(self.live, "local", "log_config.json"))
        self.assertEqual(logc["handlers"]["consoleHandler"]["stream"], "ext://sys.stdout")
        for f in ("resources.json", "log_config.json"):
            self.assertEqual(_mode(os.path.join(self.live, "local", f)), 0o640)

    def test_check_finds_each_problem(self):
        self.install_good()
        with open(os.path.join(self.live, "startup", "fed_client.json"), "a") as f:
            f.write("\n")
        os.rmdir(os.path.join(self.images, "net-1"))
        os.unlink(os.path.join(self.live, "startup", "stop_fl.sh"))
        p = self.fl("check")
        self.assertRun(p, 2)
        lines = p.stderr.strip().splitlines()
        self.assertTrue(any("startup/fed_client.json: signature does not verify" in l
                            for l in lines), lines)
        self.assertTrue(any("startup/stop_fl.sh: missing" in l for l in lines), lines)
        self.assertTrue(any("signs stop_fl.sh, which is not in startup/" in l for l in lines),
                        lines)
        self.assertTrue(any("images/net-1" in l for l in lines), lines)
        self.assertEqual(len(lines), 4, lines)

    def test_transfer_must_be_a_folder(self):
        self.install_good()
        os.rmdir(os.path.join(self.live, "transfer"))
        with open(os.path.join(self.live, "transfer"), "w") as f:
            f.write("x")
        p = self.fl("check")
        self.assertRun(p, 2)
        self.assertIn("transfer: not a folder", p.stderr)

    def test_no_kit(self):
        p = self.fl("check")
        self.assertRun(p, 2)
        self.assertIn("install-kit", p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)

    def test_flower_needs_a_command(self):
        self.install_good()
        self.node.set_config(FL_BACKEND="flower")
        p = self.fl("check")
        self.assertRun(p, 2)
        self.assertIn("FL_CLIENT_COMMAND is not set", p.stderr)

    def test_privacy_settings(self):
        self.install_good()
        priv = os.path.join(self.live, "local", "privacy.json")
        p = self.fl("check", env={"FL_SITE_PRIVACY_POLICY": "svt",
                                  "FL_SITE_PRIVACY_SVT_EPSILON": "0.3"})
        self.assertRun(p)
        flt = read_json(priv)["scopes"][0]["task_result_filters"][0]
        self.assertEqual(flt["path"], "nvflare.app_common.filters.svt_privacy.SVTPrivacy")
        self.assertEqual(flt["args"]["epsilon"], 0.3)
        self.assertIn("svt (fraction=0.1, epsilon=0.3", p.stdout)
        # every invalid setting refuses, one line each, and leaves the file alone
        for env, needle in (
                ({"FL_SITE_PRIVACY_POLICY": "laplace"}, "unknown privacy preset"),
                ({"FL_SITE_PRIVACY_POLICY": "percentile", "FL_SITE_PRIVACY_PERCENTILE": "150"},
                 "FL_SITE_PRIVACY_PERCENTILE: 150 is out of range"),
                ({"FL_SITE_PRIVACY_POLICY": "svt", "FL_SITE_PRIVACY_GAMMA": "0.1"},
                 "applies to the percentile preset, not svt"),
                ({"FL_SITE_PRIVACY_GAMMA": "0.1"}, "FL_SITE_PRIVACY_POLICY is not"),
                ({"FL_SITE_PRIVACY_POLICY": "percentile", "FL_SITE_PRIVACY_GAMA": "1"},
                 "unknown privacy setting")):
            with self.subTest(env=env):
                p = self.fl("check", env=env)
                self.assertRun(p, 2)
                self.assertIn(needle, p.stderr)
                self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
                self.assertEqual(read_json(priv)["scopes"][0]["task_result_filters"][0]["path"],
                                 flt["path"])
        # no setting at all: the stale file goes
        self.assertRun(self.fl("check"))
        self.assertFalse(os.path.exists(priv))

    def test_privacy_from_the_kit_file(self):
        self.install_good()
        self.node.set_config(FL_SITE_PRIVACY_POLICY="percentile", FL_SITE_PRIVACY_PERCENTILE=20)
        self.assertRun(self.fl("check"))
        args = read_json(os.path.join(self.live, "local", "privacy.json"))[
            "scopes"][0]["task_result_filters"][0]["args"]
        self.assertEqual(args["percentile"], 20)
        # the environment overrides the file, key by key
        self.assertRun(self.fl("check", env={"FL_SITE_PRIVACY_PERCENTILE": "40"}))
        args = read_json(os.path.join(self.live, "local", "privacy.json"))[
            "scopes"][0]["task_result_filters"][0]["args"]
        self.assertEqual(args["percentile"], 40)
        p = self.fl("status")
        self.assertIn("privacy:    percentile (percentile=40, gamma=0.01)", p.stdout)
        self.node.set_config(FL_SITE_PRIVACY_SVT_TAU="1")
        p = self.fl("check")
        self.assertRun(p, 2)
        self.assertIn("FL_SITE_PRIVACY_SVT_TAU applies to the svt preset", p.stderr)

    def test_policy_overrides_environment(self):
        self.install_good()
        pol = os.path.join(self.tmp, "policy.toml")
        with open(pol, "w") as f:
            f.write('[fl_privacy]\npolicy = "percentile"\npercentile = 30\n')
        self.node.set_config(ACCESS_POLICY_FILE=pol)
        p = self.fl("check", env={"FL_SITE_PRIVACY_POLICY": "svt"})
        self.assertRun(p)
        args = read_json(os.path.join(self.live, "local", "privacy.json"))[
            "scopes"][0]["task_result_filters"][0]["args"]
        self.assertEqual(args, {"percentile": 30, "gamma": 0.01})
        with open(pol, "w") as f:
            f.write('[fl_privacy]\npolicy = "percentile"\npercentile = "30"\n')
        p = self.fl("check")
        self.assertRun(p, 2)
        self.assertIn("[fl_privacy] percentile must be a number", p.stderr)

    def test_invalid_privacy_never_starts_the_client(self):
        self.install_good()
        p = self.fl("run", env={"FL_SITE_PRIVACY_POLICY": "percentile",
                                "FL_SITE_PRIVACY_PERCENTILE": "-5"})
        self.assertRun(p, 2)
        self.assertEqual(self.events("fl.client.started"), [])
        self.assertFalse(os.path.exists(os.path.join(self.node.state, "fl", "client.json")))
        prom = os.path.join(self.node.state, "metrics", "flip-fl.prom")
        with open(prom) as f:
            text = f.read()
        self.assertIn('flip_fl_kit_check_ok{prog="flip-fl"} 0', text)
        self.assertIn('flip_fl_client_running{prog="flip-fl"} 0', text)


class TestSupervision(FLTestCase):

    def started(self):
        return self.events("fl.client.started")

    def test_run_stop_start_status(self):
        self.install_good()
        secret_env = {"TRUST_API_KEY": "s3cret-api-key",
                      "AES_KEY_BASE64": base64.b64encode(b"k" * 32).decode(),
                      "DATA_ACCESS_POSTGRES_PASSWORD": "s3cret-db"}
        p = self.fl("run", env=secret_env)
        self.assertRun(p)
        st = self.state()
        pid = st["pid"]
        self.assertGreater(pid, 0)
        self.assertEqual(len(self.started()), 1)
        # detached in its own session, in the kit's startup/, output in the log
        # the client's last line before it waits: every earlier line is in the log
        self.assertTrue(wait_for(lambda: "secrets in environment" in self.client_log(), 10))
        log = self.client_log()
        self.assertIn("cwd %s" % os.path.join(self.live, "startup"), log)
        self.assertIn("secrets in environment: end", log)
        self.assertEqual(os.getsid(pid), st["pgid"])
        self.assertNotEqual(os.getsid(pid), os.getsid(0))
        # a second run does nothing
        p = self.fl("run")
        self.assertRun(p)
        self.assertEqual(p.stderr, "")
        self.assertEqual(self.state()["pid"], pid)
        self.assertEqual(len(self.started()), 1)
        # status: running, the job and round from the log, the privacy in force
        p = self.fl("status")
        self.assertRun(p)
        self.assertIn("running, pid %d" % pid, p.stdout)
        self.assertIn("3f2c9a7e-0b1d-4c8e-9f00-1234567890ab, round 1 started", p.stdout)
        self.assertIn("privacy:    none", p.stdout)
        js = json.loads(self.fl("status", "--json").stdout)
        self.assertTrue(js["running"])
        self.assertEqual(js["progress"]["round"], 1)
        self.assertEqual(js["kit"]["slot"], SLOT)
        self.assertGreater(js["kit"]["cert_days_left"], 200)
        prom = os.path.join(self.node.state, "metrics", "flip-fl.prom")
        with open(prom) as f:
            self.assertIn('flip_fl_client_running{prog="flip-fl"} 1', f.read())

        # stop: SIGTERM, stop_fl.sh, gone; and it stays stopped
        p = self.fl("stop")
        self.assertRun(p)
        self.assertFalse(os.path.exists("/proc/%d" % pid) and
                         open("/proc/%d/stat" % pid).read().split(") ")[1][0] != "Z")
        self.assertIn("stop_fl.sh: shutdown requested", self.client_log())
        ev = self.events("fl.client.stopped")
        self.assertEqual(len(ev), 1)
        self.assertEqual(ev[0]["detail"]["pid"], pid)
        self.assertFalse(ev[0]["detail"]["forced"])
        self.assertEqual(ev[0]["detail"]["stop_script"], 0)
        self.assertRun(self.fl("run"))
        self.assertEqual(len(self.started()), 1)
        self.assertIn("stopped (flip-fl start", self.fl("status").stdout)
        # start: running again
        self.assertRun(self.fl("start"))
        self.assertEqual(len(self.started()), 2)
        self.assertNotEqual(self.state()["pid"], pid)
        self.assertIn("running", self.fl("status").stdout)
        self.assertIsNone(verify_audit_chain(self.node.audit_lines()))
        self.assertNotIn("s3cret-api-key", "\n".join(self.node.audit_lines()))

    def test_killed_client_restarts_after_backoff(self):
        self.install_good()
        self.assertRun(self.fl("run"))
        pid = self.state()["pid"]
        self.assertTrue(wait_for(lambda: "Round 1 started" in self.client_log(), 10))
        os.kill(pid, signal.SIGKILL)
        p = self.fl("run")
        self.assertRun(p)
        self.assertIn("killed by signal 9", p.stderr)
        ev = self.events("fl.client.exited")
        self.assertEqual(len(ev), 1)
        self.assertEqual(ev[0]["detail"]["pid"], pid)
        self.assertEqual(ev[0]["detail"]["status"], "signal")
        self.assertEqual(ev[0]["detail"]["signal"], 9)
        self.assertEqual(len(self.started()), 1)        # not yet: the backoff
        self.assertEqual(self.state()["backoff"], BACKOFF)
        # what the killed script had started (its sleep) is gone with it
        self.assertTrue(wait_for(lambda: not _group_alive(self.state()["pgid"]), 3))
        js = json.loads(self.fl("status", "--json").stdout)
        self.assertFalse(js["running"])
        self.assertEqual(js["last_exit"]["reason"], "exited")
        time.sleep(BACKOFF + 0.1)
        self.assertRun(self.fl("run"))
        st = self.state()
        self.assertEqual(len(self.started()), 2)
        self.assertEqual(st["restarts"], 1)
        self.assertNotEqual(st["pid"], pid)
        self.assertEqual(self.started()[1]["detail"]["restarts"], 1)
        # a second quick death doubles the backoff
        os.kill(st["pid"], signal.SIGKILL)
        self.assertRun(self.fl("run"))
        self.assertEqual(self.state()["backoff"], 2 * BACKOFF)
        self.assertEqual(len(self.started()), 2)

    def test_exit_status_recorded(self):
        self.install_good()
        self.assertRun(self.fl("run", env={"FAKE_EXIT": "3"}))
        # flip-fl makes exit.json at the start; the waiter fills it when the client ends
        exit_json = os.path.join(self.node.state, "fl", "exit.json")
        self.assertTrue(wait_for(lambda: os.path.exists(exit_json) and
                                 os.path.getsize(exit_json) > 0, 5))
        self.assertRun(self.fl("run", env={"FAKE_EXIT": "3"}))
        ev = self.events("fl.client.exited")
        self.assertEqual(len(ev), 1)
        self.assertEqual(ev[0]["detail"]["status"], "exit")
        self.assertEqual(ev[0]["detail"]["code"], 3)
        self.assertIn("last exit:  exit 3", self.fl("status").stdout)

    def test_stop_kills_a_client_that_ignores_sigterm(self):
        self.install_good()
        self.assertRun(self.fl("run", env={"FAKE_IGNORE_TERM": "1"}))
        pid = self.state()["pid"]
        pgid = self.state()["pgid"]
        self.assertTrue(wait_for(lambda: "Round 1 started" in self.client_log(), 10))
        t0 = time.monotonic()
        p = self.fl("stop", "--grace", "0.5")
        self.assertRun(p)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertFalse(_group_alive(pgid))
        ev = self.events("fl.client.stopped")
        self.assertEqual(len(ev), 1)
        self.assertTrue(ev[0]["detail"]["forced"])
        self.assertEqual(ev[0]["detail"]["pid"], pid)

    def test_reinstall_restarts_a_running_client(self):
        self.install_good()
        self.assertRun(self.fl("run"))
        pid = self.state()["pid"]
        self.assertRun(self.fl("install-kit", self.tarball("new.tgz")))
        self.assertEqual(self.events("fl.client.stopped")[0]["detail"]["reason"],
                         "kit replaced")
        st = self.state()
        self.assertNotEqual(st["pid"], pid)
        self.assertEqual(len(self.started()), 2)
        self.assertTrue(os.path.exists("/proc/%d" % st["pid"]))

    def test_client_command(self):
        self.install_good()
        self.node.set_config(FL_CLIENT_COMMAND="%s --flower" % FAKECLIENT)
        self.assertRun(self.fl("run", env={"FAKE_JOB": "flower-job-7"}))
        # the stand-in prints its lines one by one: wait for the last one that status reads
        self.assertTrue(wait_for(lambda: "Round 1 started" in self.client_log(), 10))
        self.assertIn("job:        flower-job-7, round 1 started", self.fl("status").stdout)


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # zombies count for kill(2): look for a live member
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] not in "ZX":
                return True
    return False


if __name__ == "__main__":
    unittest.main()
