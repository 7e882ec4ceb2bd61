# SPDX-License-Identifier: Apache-2.0
"""test_doctor - `flipctl doctor` against real services, healthy and broken.

One class holds a throwaway PostgreSQL with the OMOP fixture and FLIP's read-only
roles, and an Orthanc; each test gets a hub emulator and a node (NodeTestCase).
The healthy node has every part configured, an FL kit installed whose server
target is a listening loopback port, and must get "ok" on every line and exit 0.
Each broken variant changes one thing and must get a FAIL line for that check, with
what to do, and exit 1; what is not configured is "--" and does not fail. No
secret of the kit file may appear in doctor's output.
"""
import os
import re
import shutil
import socket
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "omop"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "pacs"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fl"))

import makekit  # noqa: E402
from nodeenv import NodeTestCase  # noqa: E402
from orthanc import Orthanc  # noqa: E402
from pg import Postgres, free_port  # noqa: E402

SLOT = "Trust_2"
LINE = re.compile(r"^(ok|FAIL|--)\s+(\S+)\s+(.*)$")


class TestDoctor(NodeTestCase):
    @classmethod
    def setUpClass(cls):
        cls.svc = tempfile.mkdtemp(prefix="flip-doctor-")
        cls.pg = Postgres(os.path.join(cls.svc, "pg"))
        cls.pg.start()
        # a database with the CDM but no vocabulary; then the fixture's, which stays
        # the default (pg.env() names the last one set up)
        cls.pg.setup_omop(db="novocab")
        cls.pg.setup_omop(fixture_sql_path=os.path.join(HERE, "..", "omop", "fixture.sql"))
        cls.pacs = Orthanc(os.path.join(cls.svc, "orthanc"))
        cls.pacs.start()
        # the "FL server": a listening socket that accepts and does nothing else
        cls.fl_server = socket.socket()
        cls.fl_server.bind(("127.0.0.1", 0))
        cls.fl_server.listen(8)
        cls.kits = os.path.join(cls.svc, "kits")
        os.makedirs(cls.kits)
        port = cls.fl_server.getsockname()[1]
        cls.good_kit = makekit.write_tar(
            makekit.make_kit(SLOT, server="127.0.0.1:%d" % port),
            os.path.join(cls.kits, "good.tgz"))
        cls.closed_port = free_port()
        cls.unreachable_kit = makekit.write_tar(
            makekit.make_kit(SLOT, server="127.0.0.1:%d" % cls.closed_port),
            os.path.join(cls.kits, "unreachable.tgz"))

    @classmethod
    def tearDownClass(cls):
        cls.fl_server.close()
        cls.pacs.stop()
        cls.pg.stop()
        shutil.rmtree(cls.svc, ignore_errors=True)

    def setUp(self):
        super().setUp()
        # the FL client's image folder comes from flipctl init (doctor's fl-kit check
        # fails without it)
        self.node.set_config(**self.pg.env(), **self.pacs.env(),
                             FL_KIT_DIR=os.path.join(self.node.root, "fl-kit"),
                             FL_KIT_SLOT=SLOT, FL_SERVER_PORT="8002")
        self.assertRun(self.node.flipctl("init"))
        net = os.path.join(self.node.root, "images", "net-1")
        self.assertEqual(oct(os.stat(net).st_mode & 0o777), "0o750")

    def install(self, tarball):
        self.assertRun(self.node.run("flip-fl", "install-kit", tarball))

    def doctor(self, code):
        p = self.node.flipctl("doctor")
        self.assertEqual(p.returncode, code, p.stdout + p.stderr)
        lines = {}
        for line in p.stdout.splitlines():
            m = LINE.match(line)
            self.assertIsNotNone(m, "not a report line: %r" % line)
            lines.setdefault(m.group(2), []).append((m.group(1), m.group(3)))
        for secret in (self.hub.api_key, self.hub.aes_key_b64, self.node.config.get(
                "TRUST_API_KEY"), self.pg.password):
            if secret:
                self.assertNotIn(secret, p.stdout + p.stderr)
        return lines

    def verdicts(self, lines, check):
        return [v for v, _ in lines.get(check, [])]

    def text(self, lines, check):
        return " ".join(t for _, t in lines.get(check, []))

    # -- the tests ------------------------------------------------------------------

    def test_healthy_node_is_ok_on_every_line(self):
        self.install(self.good_kit)
        lines = self.doctor(0)
        self.assertEqual(self.verdicts(lines, "hub-tls"), ["--"])   # loopback http
        for check in ("config", "directory", "disk", "hub", "aes-key", "omop", "omop-role",
                      "omop-schema", "omop-vocab", "pacs", "fl-kit", "fl-server"):
            self.assertIn(check, lines, lines)
            self.assertEqual(set(self.verdicts(lines, check)), {"ok"}, (check, lines[check]))
        self.assertRegex(self.text(lines, "disk"), r"% free")   # deploy-on-prem.md step 5
        self.assertIn("read-only", self.text(lines, "omop-role"))
        self.assertIn("C-ECHO to %s@" % self.pacs.aet, self.text(lines, "pacs"))
        self.assertIn("slot %s verified" % SLOT, self.text(lines, "fl-kit"))
        self.assertIn("reachable", self.text(lines, "fl-server"))

    def test_unconfigured_parts_are_not_failures(self):
        self.node.set_config(OMOP_DB_HOST=None, PACS_HOST=None, FL_KIT_SLOT=None)
        lines = self.doctor(0)
        for check in ("omop", "pacs", "fl-kit"):
            self.assertEqual(self.verdicts(lines, check), ["--"], lines)
        self.assertNotIn("fl-server", lines)

    def test_no_kit_installed_yet_is_not_a_failure(self):
        lines = self.doctor(0)
        self.assertEqual(self.verdicts(lines, "fl-kit"), ["--"])
        self.assertIn("install-kit", self.text(lines, "fl-kit"))

    def test_a_role_that_can_write_fails(self):
        # the node's login role given one write privilege, for this test only
        self.pg.psql('GRANT INSERT ON omop.person TO "%s"' % self.pg.user)
        try:
            lines = self.doctor(1)
        finally:
            self.pg.psql('REVOKE INSERT ON omop.person FROM "%s"' % self.pg.user)
        self.assertEqual(self.verdicts(lines, "omop"), ["ok"])
        self.assertEqual(self.verdicts(lines, "omop-role"), ["FAIL"])
        self.assertIn("SELECT on omop only", self.text(lines, "omop-role"))

    def test_wrong_password_fails_the_login(self):
        self.node.set_config(DATA_ACCESS_POSTGRES_PASSWORD="not-the-password-9d2e")
        lines = self.doctor(1)
        self.assertEqual(self.verdicts(lines, "omop"), ["FAIL"])
        self.assertNotIn("omop-role", lines)

    def test_missing_schema_and_empty_vocabulary_fail(self):
        self.node.set_config(OMOP_POSTGRES_DB="postgres")
        lines = self.doctor(1)
        self.assertEqual(self.verdicts(lines, "omop-schema"), ["FAIL"])
        self.assertIn("no schema omop", self.text(lines, "omop-schema"))
        self.node.set_config(OMOP_POSTGRES_DB="novocab")
        lines = self.doctor(1)
        self.assertEqual(self.verdicts(lines, "omop-schema"), ["ok"])
        self.assertEqual(self.verdicts(lines, "omop-vocab"), ["FAIL"])
        # the schema without image_occurrence (FLIP's accession_id lives there)
        self.pg.psql("ALTER TABLE omop.image_occurrence RENAME TO image_occurrence_old",
                     db="novocab")
        lines = self.doctor(1)
        self.assertEqual(self.verdicts(lines, "omop-schema"), ["FAIL"])
        self.assertIn("GRANT SELECT", self.text(lines, "omop-schema"))

    def test_pacs_down_or_rejecting_fails_with_what_to_do(self):
        self.node.set_config(PACS_DICOM_PORT=str(free_port()))
        lines = self.doctor(1)
        self.assertEqual(self.verdicts(lines, "pacs"), ["FAIL"])
        self.assertIn("firewall", self.text(lines, "pacs"))
        self.node.set_config(**dict(self.pacs.env(), FLIP_AETITLE="STRANGER"))
        lines = self.doctor(1)
        self.assertEqual(self.verdicts(lines, "pacs"), ["FAIL"])
        self.assertIn("register AE title STRANGER", self.text(lines, "pacs"))

    def test_unreachable_fl_server_and_a_broken_kit_fail(self):
        self.install(self.unreachable_kit)
        lines = self.doctor(1)
        self.assertEqual(self.verdicts(lines, "fl-kit"), ["ok"])
        self.assertIn("FAIL", self.verdicts(lines, "fl-server"))
        self.assertIn("127.0.0.1:%d" % self.closed_port, self.text(lines, "fl-server"))
        self.assertIn("firewall", self.text(lines, "fl-server"))
        # the kit's port is not FL_SERVER_PORT: said, not failed
        self.assertIn("not FL_SERVER_PORT 8002", self.text(lines, "fl-server"))
        # a live kit file edited after installation breaks its signature
        live = os.path.join(self.node.root, "fl-kit", "net-1", "services", SLOT)
        with open(os.path.join(live, "startup", "start.sh"), "a") as f:
            f.write("# edited\n")
        lines = self.doctor(1)
        self.assertIn("FAIL", self.verdicts(lines, "fl-kit"))

    def test_a_wrong_api_key_fails_the_hub_check(self):
        self.node.set_config(TRUST_API_KEY="wrong-key-" + "0" * 32)
        lines = self.doctor(1)
        self.assertEqual(self.verdicts(lines, "hub"), ["FAIL"])
        self.assertNotIn("aes-key", lines)


class TestDoctorTLS(NodeTestCase):
    """The hub over HTTPS (the emulator's self-signed certificate, valid 2 days,
    trusted through FLIP_CA_BUNDLE): the certificate's end is reported, and its
    nearness said; without the CA the hub line fails."""

    HUB_KWARGS = {"tls": True}

    def setUp(self):
        super().setUp()
        self.assertRun(self.node.flipctl("init"))

    def test_hub_certificate_end_is_reported(self):
        p = self.node.flipctl("doctor")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        line = [x for x in p.stdout.splitlines() if x.split()[1:2] == ["hub-tls"]]
        self.assertEqual(len(line), 1, p.stdout)
        self.assertRegex(line[0], r"^ok\s+hub-tls\s+certificate verified, valid until "
                         r"\d{4}-\d\d-\d\d \d\d:\d\d UTC \([12] days\): ends soon")

    def test_untrusted_certificate_fails_the_hub_line(self):
        self.node.set_config(FLIP_CA_BUNDLE=None)
        p = self.node.flipctl("doctor")
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertRegex(p.stdout, r"(?m)^FAIL\s+hub\s+.*(?i:certificate|ssl|tls)")
        self.assertNotIn("hub-tls", p.stdout)


if __name__ == "__main__":
    unittest.main()
