# SPDX-License-Identifier: Apache-2.0
"""test_licence - the tree is Apache-2.0, and says so everywhere it should.

Checks that:

- LICENSE is the full Apache License 2.0 text (Debian's copy, byte for byte, when
  /usr/share/common-licenses/Apache-2.0 is there);
- debian/copyright is DEP-5 machine-readable, covers every file (`Files: *`) with
  `License: Apache-2.0`, and refers to Debian's common-licenses copy of the text;
- every tracked source file carries `SPDX-License-Identifier: Apache-2.0` on its
  first line, or on its second after a `#!` line (`tools/spdx.sh --check`), and no
  tracked file is of a kind tools/spdx.sh has no rule for;
- tools/spdx.sh, on a scratch copy of one file of each kind: writes the line in each
  language's comment syntax, after a shebang where there is one; keeps the file's
  mode; leaves fuzzing corpora and JSON alone; refuses a kind of file it has no rule
  for; changes nothing on a second run; and what it writes still compiles (C, C++),
  lints (man pages), parses (Python, shell) and keeps a Python module's docstring.
"""

import os
import shutil
import stat
import subprocess
import tempfile
import unittest

from nodeenv import ROOT

SPDX = "SPDX-License-Identifier: Apache-2.0"
SCRIPT = os.path.join(ROOT, "tools", "spdx.sh")
DEBIAN_TEXT = "/usr/share/common-licenses/Apache-2.0"


def run(*args, cwd=ROOT):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=300, cwd=cwd)


class LicenceFiles(unittest.TestCase):
    def test_licence_text(self):
        with open(os.path.join(ROOT, "LICENSE"), encoding="utf-8") as f:
            text = f.read()
        for words in ("Apache License", "Version 2.0, January 2004",
                      "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
                      "9. Accepting Warranty or Additional Liability.",
                      "END OF TERMS AND CONDITIONS"):
            self.assertIn(words, text)
        if os.path.isfile(DEBIAN_TEXT):
            with open(DEBIAN_TEXT, encoding="utf-8") as f:
                self.assertEqual(text, f.read())

    def test_notice_names_the_project(self):
        with open(os.path.join(ROOT, "NOTICE"), encoding="utf-8") as f:
            self.assertTrue(f.readline().startswith("flip-node"))

    def test_debian_copyright_is_dep5_apache(self):
        with open(os.path.join(ROOT, "debian", "copyright"), encoding="utf-8") as f:
            paragraphs = [p for p in f.read().split("\n\n") if p.strip()]
        fields = []
        for p in paragraphs:
            d, key = {}, None
            for line in p.splitlines():
                if line.startswith((" ", "\t")):
                    d[key] += "\n" + line.strip()
                else:
                    key, _, value = line.partition(":")
                    d[key] = value.strip()
            fields.append(d)
        self.assertEqual(fields[0].get("Format"),
                         "https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/")
        self.assertEqual(fields[0].get("Upstream-Name"), "flip-node")
        files = [d for d in fields if "Files" in d]
        self.assertEqual([d["Files"] for d in files], ["*"])
        self.assertEqual(files[0]["License"], "Apache-2.0")
        self.assertTrue(files[0].get("Copyright"))
        standalone = [d for d in fields if "License" in d and "Files" not in d]
        self.assertEqual(len(standalone), 1)
        self.assertTrue(standalone[0]["License"].startswith("Apache-2.0\n"))
        self.assertIn(DEBIAN_TEXT, standalone[0]["License"])


class SourceHeaders(unittest.TestCase):
    def test_every_tracked_source_file_has_the_identifier(self):
        if run("git", "rev-parse", "--is-inside-work-tree").returncode != 0:
            self.skipTest("not a git checkout: tools/spdx.sh --check needs git ls-files")
        p = run("sh", SCRIPT, "--check")
        self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""),
                         "run tools/spdx.sh (and commit what it changes)")


# one file of each kind: name -> (content, the identifier line expected, its line number)
SAMPLES = {
    "lib/x.c": ("/*\n * x - a module.\n */\nint x(void) { return 0; }\n", "/* %s */" % SPDX, 1),
    "lib/x.h": ("#ifndef X_H\n#define X_H\nint x(void);\n#endif\n", "/* %s */" % SPDX, 1),
    "lib/y.cc": ('extern "C" int y(void) { return 1; }\n', "/* %s */" % SPDX, 1),
    "tests/t.py": ('"""t - a test module."""\nX = 1\n', "# " + SPDX, 1),
    "tests/gen": ('#!/usr/bin/python3\n"""gen - a script."""\nprint(1)\n', "# " + SPDX, 2),
    "tools/s.sh": ("#!/bin/sh\n# s.sh - a script.\nexit 0\n", "# " + SPDX, 2),
    "Makefile": ("all:\n\t@true\n", "# " + SPDX, 1),
    "debian/rules": ("#!/usr/bin/make -f\n%:\n\tdh $@\n", "# " + SPDX, 2),
    "timers/x.service": ("[Service]\nType=oneshot\nExecStart=/bin/true\n", "# " + SPDX, 1),
    "tests/omop/f.sql": ("SELECT 1;\n", "-- " + SPDX, 1),
    "docs/man/x.8": ('.\\" x.8 - a page.\n.TH X 8 2026-01-01 flip-node "System Manager\'s Manual"\n'
                     ".SH NAME\nx \\- a program\n", '.\\" ' + SPDX, 1),
}
LEFT_ALONE = {
    "tests/fuzz/corpus/config/a.env": "A=1\n",
    "tests/fuzz/corpus/payload/p.json": '{"a": 1}\n',
    "README.md": "# readme\n",
}


class SpdxScript(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="flip-spdx-")
        self.addCleanup(shutil.rmtree, self.dir)
        for name, content in list((n, c) for n, (c, _, _) in SAMPLES.items()) + \
                list(LEFT_ALONE.items()):
            path = os.path.join(self.dir, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(content)
        os.chmod(os.path.join(self.dir, "tools/s.sh"), 0o755)
        os.chmod(os.path.join(self.dir, "debian/rules"), 0o755)
        self.names = sorted(list(SAMPLES) + list(LEFT_ALONE))

    def spdx(self, *args):
        return run("sh", SCRIPT, *args, cwd=self.dir)

    def snapshot(self):
        out = {}
        for name in self.names:
            path = os.path.join(self.dir, name)
            with open(path, "rb") as f:
                out[name] = (f.read(), stat.S_IMODE(os.stat(path).st_mode))
        return out

    def test_check_fails_before_and_passes_after(self):
        p = self.spdx("--check", *self.names)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(sorted(l.split(":")[0] for l in p.stdout.splitlines()), sorted(SAMPLES))
        self.assertEqual(self.spdx(*self.names).returncode, 0)
        p = self.spdx("--check", *self.names)
        self.assertEqual((p.returncode, p.stdout), (0, ""))

    def test_each_kind_gets_its_syntax_once(self):
        before = self.snapshot()
        p = self.spdx(*self.names)
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        after = self.snapshot()
        for name, (content, line, at) in SAMPLES.items():
            with self.subTest(name=name):
                lines = after[name][0].decode().splitlines()
                self.assertEqual(lines[at - 1], line)
                rest = lines[:at - 1] + lines[at:]
                self.assertEqual("\n".join(rest) + "\n", content)  # nothing else changed
                self.assertEqual(after[name][1], before[name][1])  # nor the mode
        for name in LEFT_ALONE:
            self.assertEqual(after[name], before[name], name)
        p = self.spdx(*self.names)
        self.assertEqual(p.returncode, 0)
        self.assertEqual(self.snapshot(), after, "a second run changed something")

    def test_what_it_writes_still_builds(self):
        self.assertEqual(self.spdx(*self.names).returncode, 0)
        d = self.dir
        for cmd in (["cc", "-std=c17", "-Wall", "-Wextra", "-Werror", "-pedantic",
                     "-fsyntax-only", "lib/x.c"],
                    ["cc", "-std=c17", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
                     "-x", "c", "lib/x.h"],
                    ["c++", "-std=c++17", "-Wall", "-Werror", "-fsyntax-only", "lib/y.cc"],
                    ["sh", "-n", "tools/s.sh"],
                    ["/usr/bin/python3", "-m", "py_compile", "tests/t.py"],
                    ["groff", "-man", "-ww", "-z", "docs/man/x.8"]):
            with self.subTest(cmd=cmd[0] + " " + cmd[-1]):
                p = run(*cmd, cwd=d)
                self.assertEqual((p.returncode, p.stderr), (0, ""))
        p = run("/usr/bin/python3", "-c", "import t; print(t.__doc__)", cwd=os.path.join(d, "tests"))
        self.assertEqual(p.stdout.strip(), "t - a test module.")
        p = run("make", "-s", "-f", "Makefile", cwd=d)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_a_kind_without_a_rule_is_refused(self):
        path = os.path.join(self.dir, "lib", "z.rs")
        with open(path, "w", encoding="utf-8") as f:
            f.write("fn main() {}\n")
        p = self.spdx("lib/z.rs")
        self.assertEqual(p.returncode, 1)
        self.assertIn("no rule", p.stderr)
        with open(path, encoding="utf-8") as f:
            self.assertEqual(f.read(), "fn main() {}\n")


if __name__ == "__main__":
    unittest.main()
