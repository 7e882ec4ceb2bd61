# SPDX-License-Identifier: Apache-2.0
"""test_config - the kit file: refusals at start-up and the environment override.

Each refusal must be exit 2 with a message naming the key (or the file and the
mode to set), before the node says anything to the hub: the emulator's request log
stays empty, so nothing is fetched (and nothing claimed). Covered: a kit readable by
others (0644: "chmod 600"), an AES key of 16 bytes (the message says 16), a missing
CENTRAL_HUB_API_URL, a missing TRUST_API_KEY, COHORT_QUERY_THRESHOLD=0; and the
accepted cases: mode 0640, and process environment values overriding the file.
"""

import base64
import os
import unittest

from nodeenv import NodeTestCase


class TestConfigRefusals(NodeTestCase):

    def assertRefused(self, *needles, progs=("flip-poll",)):
        """Every prog exits 2 naming each needle, and the hub heard nothing."""
        tid = self.add("delete_imaging")
        for prog in progs:
            p = self.node.run(prog)
            self.assertRun(p, 2, prog)
            for n in needles:
                self.assertIn(n, p.stderr, prog)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1,
                             "one line saying what is wrong: %r" % p.stderr)
        self.assertEqual(self.hub.requests(), [])
        self.assertEqual(self.hub.task(tid)["status"], "PENDING")
        snap = self.node.spool_snapshot()
        self.assertEqual([v for k, v in snap.items() if k != "seq" and v], [])
        return p

    def test_kit_readable_by_others(self):
        self.node.write_kit(mode=0o644)
        p = self.assertRefused("chmod 600", self.node.kit,
                               progs=("flip-poll", "flip-exec", "flip-report"))
        self.assertNotIn(self.hub.api_key, p.stderr)

    def test_kit_writable_by_group(self):
        self.node.write_kit(mode=0o660)
        self.assertRefused("chmod 600", self.node.kit)

    def test_kit_0640_is_accepted(self):
        self.node.write_kit(mode=0o640)
        self.assertRun(self.node.poll())

    def test_aes_key_of_16_bytes(self):
        short = base64.b64encode(os.urandom(16)).decode()
        self.node.set_config(AES_KEY_BASE64=short)
        p = self.assertRefused("AES_KEY_BASE64", "16", self.node.kit,
                               progs=("flip-poll", "flip-exec", "flip-report"))
        self.assertNotIn(short, p.stderr)

    def test_aes_key_not_base64(self):
        self.node.set_config(AES_KEY_BASE64="not*base64")
        self.assertRefused("AES_KEY_BASE64")

    def test_missing_hub_url(self):
        self.node.set_config(CENTRAL_HUB_API_URL=None)
        self.assertRefused("CENTRAL_HUB_API_URL", progs=("flip-poll", "flip-report"))
        # flip-exec never talks to the hub: it does not need the URL
        self.assertRun(self.node.exec())

    def test_missing_api_key(self):
        self.node.set_config(TRUST_API_KEY=None)
        self.assertRefused("TRUST_API_KEY", progs=("flip-poll", "flip-report"))

    def test_cohort_threshold_zero(self):
        self.node.set_config(COHORT_QUERY_THRESHOLD=0)
        self.assertRefused("COHORT_QUERY_THRESHOLD", self.node.kit,
                           progs=("flip-poll", "flip-exec", "flip-report"))

    def test_bad_poll_interval_and_url_scheme(self):
        for key, value in (("POLL_INTERVAL_SECONDS", "0"), ("POLL_INTERVAL_SECONDS", "five"),
                           ("CENTRAL_HUB_API_URL", "ftp://127.0.0.1/api"),
                           ("EXPECTED_TRUST_ID", "not-a-uuid")):
            with self.subTest(key=key, value=value):
                self.node.set_config(**{key: value})
                self.assertRefused(key, self.node.kit)
                self.node.set_config(**{key: self.hub.env().get(key)})

    def test_missing_kit_file_named_with_c(self):
        os.unlink(self.node.kit)
        p = self.node.poll()
        self.assertRun(p, 2)
        self.assertIn(self.node.kit, p.stderr)
        self.assertEqual(self.hub.requests(), [])


class TestEnvironmentOverride(NodeTestCase):

    def test_environment_overrides_the_file(self):
        tid = self.add("delete_imaging")
        # the file points at a wrong key and a dead hub; the environment fixes both
        self.node.set_config(TRUST_API_KEY="wrong-key",
                             CENTRAL_HUB_API_URL="http://127.0.0.1:9/api")
        env = {"TRUST_API_KEY": self.hub.api_key, "CENTRAL_HUB_API_URL": self.hub.url}
        self.assertRun(self.node.poll(env=env))
        self.assertEqual(self.node.task_ids("new"), [tid])
        # an empty value in the environment counts as unset: the file's applies
        p = self.node.poll(env={"TRUST_API_KEY": "", "CENTRAL_HUB_API_URL": self.hub.url})
        self.assertRun(p, 1)
        self.assertIn("401", p.stderr)


if __name__ == "__main__":
    unittest.main()
