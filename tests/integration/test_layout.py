# SPDX-License-Identifier: Apache-2.0
"""test_layout - the source tree keeps the shape the README's layout table describes.

tools/lint-tree is the check (`make lint` runs it too); these tests run it on the
repository, which must give no finding, and on small made-up trees, one per rule, so
that a checker that stopped finding anything would fail here:

- lib/ includes only lib/; jobs/ only jobs/ and lib/; bin/<program>/ only its own
  folder, jobs/ and lib/ (never another program's folder);
- every project include names its folder ("lib/spool.h"), and the file exists;
- a program's sources sit in bin/<program>/, never loose in bin/;
- every header's SYNOPSIS shows its own include line and lists exactly the
  functions and function-like macros the header declares;
- no source file is over 1,000 lines.
"""

import os
import subprocess
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LINT = os.path.join(ROOT, "tools", "lint-tree")


def header(path, listed, declared):
    """a header at path whose SYNOPSIS lists `listed` and whose code declares `declared`"""
    lines = ["/* SPDX-License-Identifier: Apache-2.0 */", "/*", " * x - a module.", " *",
             " * SYNOPSIS", ' *\t#include "%s"' % path, " *"]
    lines += [" *\tint %s(void);" % f for f in listed]
    lines += [" *", " * DESCRIPTION", " *\tNothing.", " */"]
    lines += ["int %s(void);" % f for f in declared]
    return "\n".join(lines) + "\n"


class LayoutTest(unittest.TestCase):
    def lint(self, files):
        """tools/lint-tree on a tree made of files {path: text}: (exit code, findings)"""
        with tempfile.TemporaryDirectory() as d:
            for path, text in files.items():
                os.makedirs(os.path.join(d, os.path.dirname(path)), exist_ok=True)
                with open(os.path.join(d, path), "w", encoding="utf-8") as f:
                    f.write(text)
            p = subprocess.run([LINT, d], capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout.splitlines()

    def base(self):
        """a clean tree: one header per layer and a program that uses them"""
        return {"lib/a.h": header("lib/a.h", ["a"], ["a"]),
                "lib/a.c": '#include "lib/a.h"\nint a(void) { return 0; }\n',
                "jobs/j.h": header("jobs/j.h", ["j"], ["j"]),
                "jobs/j.c": '#include "jobs/j.h"\n#include "lib/a.h"\n',
                "bin/p/p.h": header("bin/p/p.h", ["p"], ["p"]),
                "bin/p/main.c": '#include "bin/p/p.h"\n#include "jobs/j.h"\n#include "lib/a.h"\n',
                "bin/q/main.c": '#include "lib/a.h"\n'}

    def test_repository_is_clean(self):
        p = subprocess.run([LINT, ROOT], capture_output=True, text=True, timeout=120)
        self.assertEqual(p.stdout, "", "tools/lint-tree findings:\n" + p.stdout)
        self.assertEqual(p.returncode, 0)

    def test_one_folder_per_program(self):
        progs = sorted(p for p in os.listdir(os.path.join(ROOT, "bin"))
                       if os.path.isfile(os.path.join(ROOT, "bin", p, "main.c")))
        self.assertEqual(progs, ["flip-exec", "flip-fl", "flip-poll", "flip-report",
                                 "flip-serve", "flipctl"])

    def test_clean_tree_passes(self):
        self.assertEqual(self.lint(self.base()), (0, []))

    def test_include_up_a_layer(self):
        for path, inc in (("lib/b.c", "jobs/j.h"), ("lib/b.c", "bin/p/p.h"),
                          ("jobs/k.c", "bin/p/p.h")):
            with self.subTest(path=path, inc=inc):
                t = self.base()
                t[path] = '#include "%s"\n' % inc
                rc, out = self.lint(t)
                self.assertEqual(rc, 1)
                self.assertEqual(len(out), 1, out)
                self.assertIn("%s:1:" % path, out[0])
                self.assertIn("up a layer", out[0])

    def test_include_of_another_program(self):
        t = self.base()
        t["bin/q/main.c"] = '#include "bin/p/p.h"\n'
        rc, out = self.lint(t)
        self.assertEqual(rc, 1)
        self.assertEqual(len(out), 1, out)
        self.assertIn("bin/q/main.c:1:", out[0])
        self.assertIn("sideways", out[0])

    def test_include_without_its_folder(self):
        t = self.base()
        t["bin/p/main.c"] = '#include "a.h"\n'
        rc, out = self.lint(t)
        self.assertEqual((rc, len(out)), (1, 1), out)
        self.assertIn("does not name its folder", out[0])

    def test_include_of_a_missing_file(self):
        t = self.base()
        t["jobs/j.c"] = '#include "lib/gone.h"\n'
        rc, out = self.lint(t)
        self.assertEqual((rc, len(out)), (1, 1), out)
        self.assertIn("no such file", out[0])

    def test_commented_include_is_ignored(self):
        t = self.base()
        t["lib/a.c"] = '/*\n#include "bin/p/p.h"\n */\n#include "lib/a.h"\n'
        self.assertEqual(self.lint(t), (0, []))

    def test_loose_program_source(self):
        t = self.base()
        t["bin/flip-x.c"] = "int main(void) { return 0; }\n"
        rc, out = self.lint(t)
        self.assertEqual((rc, len(out)), (1, 1), out)
        self.assertIn("bin/<program>/", out[0])

    def test_synopsis_omits_a_function(self):
        t = self.base()
        t["lib/a.h"] = header("lib/a.h", ["a"], ["a", "a_more"])
        rc, out = self.lint(t)
        self.assertEqual((rc, len(out)), (1, 1), out)
        self.assertIn("declares a_more() but its SYNOPSIS omits it", out[0])

    def test_synopsis_lists_a_function_not_declared(self):
        t = self.base()
        t["lib/a.h"] = header("lib/a.h", ["a", "a_gone"], ["a"])
        rc, out = self.lint(t)
        self.assertEqual((rc, len(out)), (1, 1), out)
        self.assertIn("lists a_gone(), which it does not declare", out[0])

    def test_synopsis_shows_another_path(self):
        t = self.base()
        t["lib/a.h"] = header("a.h", ["a"], ["a"])
        rc, out = self.lint(t)
        self.assertEqual((rc, len(out)), (1, 1), out)
        self.assertIn('SYNOPSIS shows #include "a.h"', out[0])

    def test_header_without_synopsis(self):
        t = self.base()
        t["jobs/k.h"] = "int k(void);\n"
        rc, out = self.lint(t)
        self.assertEqual((rc, len(out)), (1, 1), out)
        self.assertIn("no SYNOPSIS", out[0])

    def test_macro_and_struct_members(self):
        # a function-like macro counts as declared; a function pointer in a struct,
        # a typedef and a prototype's parameters do not
        t = self.base()
        text = header("lib/a.h", ["a", "A_TAG"], ["a"])
        text += ("#define A_TAG(g, e) ((g) << 16 | (e))\n"
                 "struct a_ops { int (*run)(void); };\n"
                 "typedef int a_fn(int x);\n")
        t["lib/a.h"] = text
        self.assertEqual(self.lint(t), (0, []))

    def test_file_over_1000_lines(self):
        t = self.base()
        t["jobs/big.c"] = "int x;\n" * 1001
        rc, out = self.lint(t)
        self.assertEqual((rc, len(out)), (1, 1), out)
        self.assertIn("1001 lines, over 1000", out[0])
        t["jobs/big.c"] = "int x;\n" * 1000
        self.assertEqual(self.lint(t), (0, []))


if __name__ == "__main__":
    unittest.main()
