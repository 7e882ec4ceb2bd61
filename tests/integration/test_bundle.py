# SPDX-License-Identifier: Apache-2.0
"""test_bundle - `flipctl bundle`, the support tarball an operator mails to a third party.

- After every task type has run through poll, exec and report, the bundle is a
  mode 0600 .tar.gz with one folder holding README.txt, manifest.json,
  versions.json, config.json, status.json, audit-verify.json, logs/audit.log and
  the metrics; its status, versions, fingerprints and audit lines are the node's.
- Not one secret value is in any member (bytes search): the API key, the AES key
  as base64, raw and hex, the internal service key, the database password, the
  proxy password, the de-identification key raw and hex. Nor is anything of the
  task payloads (SQL, query names, e-mail addresses, project names).
- A vendor log in FLIP_LOG_DIR that leaked the API key comes out with the key
  replaced and counted; a long log is cut to its last 200 lines, a log of long
  lines to its last MiB, and the manifest says so.
- The bundle is recorded in the audit trail by size and SHA-256, the chain intact.
- Writing never replaces nor follows: a second run with the same -o fails and
  leaves the first bundle as it was; a symbolic link planted at the path (to a
  file or to nowhere) is left alone and its target untouched; no temporary stays.
- Without -o the bundle is flip-bundle-<trust>-<UTC stamp>.tar.gz in the current
  directory; when the spool cannot be opened it is still made, and status.json says
  why.
"""

import hashlib
import json
import os
import re
import stat
import tarfile
import unittest

import payloads
from nodeenv import HAVE_FLIPCTL, NodeTestCase, verify_audit_chain

INTERNAL_KEY = "internal-service-key-5f0c2a9e7d1b"
DB_PASSWORD = "pg-password-8e1d7c3b"
PROXY_PASSWORD = "proxy-password-41aa09"
MEMBERS = ("README.txt", "manifest.json", "versions.json", "config.json", "status.json",
           "audit-verify.json", "logs/audit.log")


@unittest.skipUnless(HAVE_FLIPCTL, "flipctl is not built")
class TestBundle(NodeTestCase):

    NODE_CONFIG = {"TRUST_INTERNAL_SERVICE_KEY": INTERNAL_KEY,
                   "DATA_ACCESS_POSTGRES_USER": "flip_reader",
                   "DATA_ACCESS_POSTGRES_PASSWORD": DB_PASSWORD}

    def setUp(self):
        super().setUp()
        self.out = os.path.join(self.node.root, "support")
        os.makedirs(self.out, mode=0o700)

    # -- helpers -------------------------------------------------------------------

    def run_tasks(self):
        """Every task type through poll, exec and report; returns the task ids."""
        self.assertRun(self.node.flipctl("init"))
        ids = [self.add(t) for t in payloads.TASK_TYPES]
        self.run_until_settled(ids)
        return ids

    def bundle(self, path=None, code=0, *extra):
        p = self.node.flipctl("bundle", *(["-o", path] if path else []), *extra)
        self.assertRun(p, code)
        return p

    def members(self, path):
        """{name inside the folder: bytes}; asserts one top folder and only files."""
        with tarfile.open(path, "r:gz") as tf:
            infos = tf.getmembers()
            tops = {m.name.split("/", 1)[0] for m in infos}
            self.assertEqual(len(tops), 1, tops)
            self.assertTrue(all(m.isfile() for m in infos), [m.name for m in infos])
            self.assertTrue(all(m.mode == 0o600 for m in infos))
            return {m.name.split("/", 1)[1]: tf.extractfile(m).read() for m in infos}

    def secrets(self):
        """Every secret value of this node, as bytes."""
        s = [self.hub.api_key.encode(), self.hub.aes_key_b64.encode(), self.hub.aes_key,
             self.hub.aes_key.hex().encode(), INTERNAL_KEY.encode(), DB_PASSWORD.encode(),
             PROXY_PASSWORD.encode()]
        deid = os.path.join(self.node.state, "deid.key")
        if os.path.exists(deid):
            with open(deid, "rb") as f:
                key = f.read()
            s += [key, key.hex().encode()]
        return s

    def assertNoSecret(self, files):
        for name, data in files.items():
            for s in self.secrets():
                self.assertNotIn(s, data, "a secret in %s" % name)

    def files_in(self, folder):
        return sorted(os.listdir(folder))

    # -- tests ---------------------------------------------------------------------

    def test_members_hold_no_secret_and_no_payload(self):
        ids = self.run_tasks()
        # the proxy only for the bundle: the hub is reached directly above
        self.node.set_config(HTTPS_PROXY="http://proxyuser:%s@proxy.trust.example:3128"
                             % PROXY_PASSWORD)
        path = os.path.join(self.out, "b.tar.gz")
        p = self.bundle(path)
        size = os.path.getsize(path)
        self.assertIn("%s (%d bytes" % (path, size), p.stdout)
        self.assertEqual(stat.S_IMODE(os.lstat(path).st_mode), 0o600)
        self.assertEqual(self.files_in(self.out), ["b.tar.gz"])

        files = self.members(path)
        for m in MEMBERS:
            self.assertIn(m, files)
        self.assertIn("metrics/flip-poll.prom", files)
        self.assertNoSecret(files)
        for marker in (payloads.SQL, "adults born after 1950", "ada@example.org",
                       "Project Lung 2024"):
            for name, data in files.items():
                self.assertNotIn(marker.encode(), data, "payload text in %s" % name)

        manifest = json.loads(files["manifest.json"])
        rows = {r["name"]: r for r in manifest["members"]}
        self.assertEqual(set(rows) | {"manifest.json"}, set(files))
        self.assertTrue(all(r["redacted"] == 0 for r in rows.values()), rows)
        self.assertIn("job payloads and SQL", manifest["never_included"])
        self.assertIn(b"Never included", files["README.txt"])

        cfg = json.loads(files["config.json"])
        self.assertEqual(cfg["file"], self.node.kit)
        self.assertEqual(cfg["file_mode"], "0600")
        keys = cfg["keys"]
        self.assertEqual(keys["CENTRAL_HUB_API_URL"], self.hub.url.rstrip("/"))
        self.assertEqual(keys["DATA_ACCESS_POSTGRES_USER"], "flip_reader")
        self.assertEqual(keys["FLIP_LOG_DIR"], self.node.logdir)
        self.assertEqual(keys["TRUST_API_KEY"]["fingerprint"],
                         hashlib.sha256(self.hub.api_key.encode()).hexdigest()[:12])
        self.assertEqual(keys["AES_KEY_BASE64"]["fingerprint"],
                         hashlib.sha256(self.hub.aes_key).hexdigest()[:12])
        for k in ("TRUST_API_KEY", "AES_KEY_BASE64", "TRUST_INTERNAL_SERVICE_KEY",
                  "DATA_ACCESS_POSTGRES_PASSWORD", "https_proxy"):
            self.assertEqual((keys[k]["redacted"], keys[k]["set"]), (True, True), k)
        self.assertEqual(keys["https_proxy"]["shown"], "http://proxy.trust.example:3128")

        status = json.loads(files["status.json"])
        self.assertEqual(status["spool"]["done"]["jobs"], len(ids))
        self.assertEqual(status["hub"]["reply"]["trust_name"], self.hub.trust_name)
        version = self.node.flipctl("--version").stdout.split()[-1]
        self.assertEqual(json.loads(files["versions.json"])["flip_node"], version)
        self.assertTrue(json.loads(files["audit-verify.json"])["intact"])

        # the audit lines are the trail's own, and the bundle itself is recorded
        lines = self.node.audit_lines()
        bundled = files["logs/audit.log"].decode().splitlines()
        self.assertEqual(bundled, lines[-1 - len(bundled):-1])
        last = json.loads(lines[-1])
        self.assertEqual(last["event"], "operator.bundle")
        with open(path, "rb") as f:
            data = f.read()
        self.assertEqual(last["detail"]["sha256"], hashlib.sha256(data).hexdigest())
        self.assertEqual(last["detail"]["bytes"], len(data))
        self.assertIsNone(verify_audit_chain(lines))

    def test_logs_cut_and_scrubbed(self):
        self.run_tasks()
        # a vendor client's log: 1000 lines, one of them leaking the API key
        lines = ["fl client line %04d" % i for i in range(1000)]
        lines[950] = "connecting with key %s" % self.hub.api_key
        with open(os.path.join(self.node.logdir, "fl-client.log"), "w") as f:
            f.write("\n".join(lines) + "\n")
        # long lines: the byte cap (1 MiB) cuts before the line cap
        with open(os.path.join(self.node.logdir, "wide.log"), "w") as f:
            for i in range(300):
                f.write("%04d %s\n" % (i, "w" * 8000))
        # a link in the log folder is not followed
        os.symlink(self.node.kit, os.path.join(self.node.logdir, "kit.log"))
        # the FL client's own output stays out unless asked for (it is the framework's
        # and the training code's, not held to the node's no-patient-data rule)
        path = os.path.join(self.out, "without.tar.gz")
        self.bundle(path)
        files = self.members(path)
        self.assertNotIn("logs/fl-client.log", files)
        skipped = json.loads(files["manifest.json"])["skipped"]
        why = [s["why"] for s in skipped if s["source"].endswith("/fl-client.log")]
        self.assertEqual(len(why), 1, skipped)
        self.assertIn("--with-fl-client-log", why[0])
        self.assertIn("journalctl", files["README.txt"].decode())
        path = os.path.join(self.out, "b.tar.gz")
        p = self.bundle(path, 0, "--with-fl-client-log")
        self.assertIn("1 secret value was found", p.stdout)
        files = self.members(path)
        self.assertNoSecret(files)
        self.assertNotIn("logs/kit.log", files)
        rows = {r["name"]: r for r in json.loads(files["manifest.json"])["members"]}

        fl = files["logs/fl-client.log"].decode().splitlines()
        self.assertEqual(len(fl), 200)
        self.assertEqual(fl[0], "fl client line 0800")
        self.assertEqual(fl[150], "connecting with key [REDACTED]")
        self.assertEqual((rows["logs/fl-client.log"]["cut"],
                          rows["logs/fl-client.log"]["redacted"]), (True, 1))

        wide = files["logs/wide.log"]
        self.assertLessEqual(len(wide), 1 << 20)
        self.assertTrue(wide.endswith(b"0299 " + b"w" * 8000 + b"\n"))
        self.assertTrue(all(len(x) == 8005 for x in wide.splitlines()), "a line in part")
        self.assertTrue(rows["logs/wide.log"]["cut"])
        self.assertLess(rows["logs/wide.log"]["lines"], 200)
        skipped = json.loads(files["manifest.json"])["skipped"]
        self.assertIn({"source": os.path.join(self.node.logdir, "kit.log"),
                       "why": "a symbolic link (not followed)"}, skipped)

    def test_never_overwrites(self):
        self.run_tasks()
        path = os.path.join(self.out, "b.tar.gz")
        self.bundle(path)
        with open(path, "rb") as f:
            first = f.read()
        p = self.bundle(path, code=1)
        self.assertIn("already", p.stderr)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), first)
        self.assertEqual(self.files_in(self.out), ["b.tar.gz"])

    def test_symlink_at_the_path_is_not_followed(self):
        self.run_tasks()
        victim = os.path.join(self.node.root, "victim")
        with open(victim, "w") as f:
            f.write("precious\n")
        os.chmod(victim, 0o644)
        nowhere = os.path.join(self.node.root, "nowhere.tar.gz")
        for target, name in ((victim, "to-file.tar.gz"), (nowhere, "to-nowhere.tar.gz")):
            link = os.path.join(self.out, name)
            os.symlink(target, link)
            p = self.bundle(link, code=1)
            self.assertIn("symbolic link", p.stderr)
            self.assertTrue(os.path.islink(link))
            self.assertEqual(os.readlink(link), target)
        with open(victim) as f:
            self.assertEqual(f.read(), "precious\n")
        self.assertEqual(stat.S_IMODE(os.stat(victim).st_mode), 0o644)
        self.assertFalse(os.path.exists(nowhere))
        self.assertEqual(self.files_in(self.out), ["to-file.tar.gz", "to-nowhere.tar.gz"])

    def test_default_name_in_the_current_directory(self):
        self.run_tasks()
        p = self.bundle()
        made = [f for f in os.listdir(self.node.root) if f.startswith("flip-bundle-")]
        self.assertEqual(len(made), 1, made)
        self.assertRegex(made[0], r"^flip-bundle-%s-[0-9]{8}T[0-9]{6}Z\.tar\.gz$"
                         % re.escape(self.hub.trust_name))
        self.assertTrue(p.stdout.startswith(made[0] + " ("), p.stdout)
        full = os.path.join(self.node.root, made[0])
        self.assertEqual(stat.S_IMODE(os.lstat(full).st_mode), 0o600)
        self.assertNoSecret(self.members(full))

    def test_without_a_spool(self):
        # a spool that cannot be opened: the bundle is wanted most when things are broken
        with open(self.node.spool, "w") as f:
            f.write("not a folder\n")
        path = os.path.join(self.out, "b.tar.gz")
        p = self.bundle(path)
        self.assertIn("bundling without the status", p.stderr)
        files = self.members(path)
        self.assertIn("error", json.loads(files["status.json"]))
        self.assertNoSecret(files)
        self.assertIn("config.json", files)


if __name__ == "__main__":
    unittest.main()
