# SPDX-License-Identifier: Apache-2.0
"""test_docs - the manual pages: clean under groff and mandoc, complete, installed.

docs/man/ holds one section 8 page per program (bin/<prog>/ -> docs/man/<prog>.8)
and the overview flip-node.7. These tests check that:

- every page renders without a single warning, with `groff -man -ww -z` (what
  man-db and lintian render with) and `mandoc -T lint -W warning` (a stricter
  reading of man(7) structure);
- each page's NAME line is "<prog> \\- ..." (apropos/whatis read it) and its .TH
  names the program and section 8;
- every option and subcommand that `<prog> --help` prints (the binary in FLIP_BIN,
  the tests' own build) appears in bold in the program's page: a usage() change
  without its documentation fails here;
- every flip-node page a page refers to, e.g. flip-exec(8), exists;
- `make install DESTDIR=...` puts them, gzipped, in $(PREFIX)/share/man/man7 and
  man8, and `make uninstall` removes them.

And that the repository's documentation stands on its own (a clone has nothing
beside it):

- no tracked file cites the design outside the repository (the parent folder's
  shared/ or an absolute /work path): the design is docs/design/;
- the eight design pages exist, each a titled Markdown page;
- every docs/design/<page>.md that any tracked file cites exists, and a section it
  names in quotes on the same line, e.g. (docs/design/hub-protocol.md, "Reporting a
  result"), is a heading of that page;
- every relative link in README.md and in the Markdown under docs/, spool/, timers/
  and tests/hub/ leads to an existing file, and its #anchor to a heading there;
- every repository path the README names in backquotes exists.
"""

import gzip
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from nodeenv import FLIP_BIN, ROOT

MAN_DIR = os.path.join(ROOT, "docs", "man")
DESIGN_DIR = os.path.join(ROOT, "docs", "design")
DESIGN_PAGES = ("ARCHITECTURE", "hub-protocol", "data-access", "imaging", "fl", "operations",
                "quality", "style")
PROGRAMS = sorted(p for p in os.listdir(os.path.join(ROOT, "bin"))
                  if os.path.isfile(os.path.join(ROOT, "bin", p, "main.c")))
PAGES = sorted(f for f in os.listdir(MAN_DIR) if re.search(r"\.[78]$", f))


def render(page):
    """The page as plain text with bold kept as overstrike (c BS c), on one long line
    per paragraph and without hyphenation, so no option is split across lines."""
    p = subprocess.run(["groff", "-man", "-Tascii", "-P-c", "-rLL=2000n", "-rHY=0",
                        os.path.join(MAN_DIR, page)], capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError("groff failed on %s: %s" % (page, p.stderr))
    return p.stdout


def bold_text(text):
    """The bold characters of grotty's overstrike output (x BS x), everything else
    blanked: words set in bold stay words, separated by blanks."""
    out, i = [], 0
    while i < len(text):
        if i + 2 < len(text) and text[i + 1] == "\b":
            out.append(text[i] if text[i] == text[i + 2] else " ")  # bold, or underlined
            i += 3
        else:
            out.append(text[i] if text[i] == "\n" else " ")
            i += 1
    return "".join(out)


def plain(text):
    """Overstrike removed: bold x BS x and underlined _ BS x become x."""
    return re.sub(r".\x08", "", text)


def usage_tokens(prog, text):
    """The options (-x, --xyz) anywhere in the usage text, and the subcommand words of
    its command forms: the part of each form line before the description (two or
    more spaces), in lower case (upper case is a placeholder such as FILE)."""
    options = set(re.findall(r"(?<![\w$/-])(--?[a-z][a-z-]*)", text))
    words = set()
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("usage:"):
            stripped = stripped[len("usage:"):].strip()
        elif len(line) - len(line.lstrip()) > 4 and not stripped.startswith(prog):
            continue  # the continuation of a description
        form = re.split(r"\s{2,}", stripped)[0]
        if form.startswith(prog):
            form = form[len(prog):]
        words.update(re.findall(r"(?<![\w$/-])([a-z][a-z-]*)(?![\w-])", form))
    return options, words


class ManPagesLint(unittest.TestCase):
    def test_every_program_has_a_page(self):
        for prog in PROGRAMS:
            self.assertIn(prog + ".8", PAGES, "docs/man/%s.8 is missing" % prog)
        self.assertIn("flip-node.7", PAGES)

    def test_groff_warns_about_nothing(self):
        for page in PAGES:
            with self.subTest(page=page):
                p = subprocess.run(["groff", "-man", "-ww", "-z", os.path.join(MAN_DIR, page)],
                                   capture_output=True, text=True)
                self.assertEqual((p.returncode, p.stderr), (0, ""))

    def test_mandoc_warns_about_nothing(self):
        for page in PAGES:
            with self.subTest(page=page):
                p = subprocess.run(["mandoc", "-T", "lint", "-W", "warning",
                                    os.path.join(MAN_DIR, page)], capture_output=True, text=True)
                self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""))

    def test_name_and_title(self):
        for page in PAGES:
            name, section = page.rsplit(".", 1)
            with self.subTest(page=page):
                with open(os.path.join(MAN_DIR, page), encoding="utf-8") as f:
                    src = f.read()
                self.assertTrue(src.startswith('.\\"'), "no purpose comment at the top")
                self.assertRegex(src, r"(?m)^\.TH %s %s \d{4}-\d{2}-\d{2} flip-node "
                                 % (re.escape(name.upper()), section))
                self.assertRegex(src, r"(?m)^\.SH NAME\n%s \\- \S" % re.escape(name))
                if section == "8":
                    for sh in ("SYNOPSIS", "DESCRIPTION", "OPTIONS", "ENVIRONMENT", "FILES",
                               "EXIT STATUS", "SEE ALSO"):
                        self.assertRegex(src, r"(?m)^\.SH %s$" % sh)

    def test_references_exist(self):
        for page in PAGES:
            with self.subTest(page=page):
                for name, section in re.findall(r"\b(flip[\w-]*)\((\d)\)", plain(render(page))):
                    self.assertIn("%s.%s" % (name, section), PAGES,
                                  "%s refers to %s(%s), which does not exist"
                                  % (page, name, section))


class ManPagesCoverUsage(unittest.TestCase):
    def test_every_option_and_subcommand_is_documented(self):
        for prog in PROGRAMS:
            with self.subTest(prog=prog):
                path = os.path.join(FLIP_BIN, prog)
                self.assertTrue(os.access(path, os.X_OK), "%s is not built" % path)
                p = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=30,
                                   env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
                self.assertEqual(p.returncode, 0, p.stderr)
                options, words = usage_tokens(prog, p.stdout)
                self.assertIn("--help", options)  # the parser itself works
                bold = bold_text(render(prog + ".8"))
                for tok in sorted(options | words):
                    self.assertTrue(re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(tok), bold),
                                    "%s --help prints %r, which docs/man/%s.8 does not "
                                    "document (in bold)" % (prog, tok, prog))

    def test_the_parser_on_a_known_usage(self):
        text = ("usage: flipctl [-c FILE] COMMAND [ARGS]\n"
                "  init [--user USER]      create the spool\n"
                "                          de-identification key; --long-gone here\n"
                "  hold ID | release ID    keep a waiting job\n"
                "  audit tail [-n N] [-f]  the last audit events\n"
                "  key-hash                the SHA-256 of TRUST_API_KEY\n"
                "  --help | --version\n")
        options, words = usage_tokens("flipctl", text)
        self.assertEqual(options, {"-c", "--user", "--long-gone", "-n", "-f", "--help",
                                   "--version"})
        self.assertEqual(words, {"init", "hold", "release", "audit", "tail", "key-hash"})


class ManPagesInstalled(unittest.TestCase):
    def make(self, *args):
        env = {k: v for k, v in os.environ.items()
               if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
        return subprocess.run(["make", "-s", "--no-print-directory", "-C", ROOT] + list(args),
                              capture_output=True, text=True, env=env, timeout=600)

    def test_make_install_and_uninstall(self):
        tmp = tempfile.mkdtemp(prefix="flip-docs-")
        self.addCleanup(shutil.rmtree, tmp)
        p = self.make("install", "DESTDIR=" + tmp, "PREFIX=/usr")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for page in PAGES:
            section = page.rsplit(".", 1)[1]
            path = os.path.join(tmp, "usr", "share", "man", "man" + section, page + ".gz")
            with self.subTest(page=page):
                self.assertTrue(os.path.isfile(path), path + " not installed")
                self.assertEqual(os.stat(path).st_mode & 0o777, 0o644)
                with gzip.open(path, "rb") as f, open(os.path.join(MAN_DIR, page), "rb") as g:
                    self.assertEqual(f.read(), g.read())
                with open(path, "rb") as f:
                    head = f.read(10)
                self.assertEqual(head[4:8], b"\0\0\0\0", "gzip -n: no time stamp inside")
        p = self.make("uninstall", "DESTDIR=" + tmp, "PREFIX=/usr")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        left = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(tmp, "usr", "share"))
                for f in fs]
        self.assertEqual(left, [])


def tracked_files():
    """The files git tracks (relative paths), or every file outside build/ and .git/
    when the tree is not a git checkout."""
    p = subprocess.run(["git", "-C", ROOT, "ls-files", "-z"], capture_output=True)
    if p.returncode == 0 and p.stdout:
        names = [n.decode() for n in p.stdout.split(b"\0") if n]
        return [n for n in names if os.path.isfile(os.path.join(ROOT, n))]
    out = []
    for d, dirs, files in os.walk(ROOT):
        dirs[:] = [x for x in dirs if not (d == ROOT and x in ("build", ".git"))]
        out.extend(os.path.relpath(os.path.join(d, x), ROOT) for x in files)
    return out


def read_text(rel):
    with open(os.path.join(ROOT, rel), "rb") as f:
        return f.read().decode("utf-8", "replace")


def heading_slugs(rel):
    """GitHub's anchors for the headings of a Markdown file: lower case, punctuation
    other than - and _ dropped, blanks turned into -."""
    slugs, titles = set(), set()
    in_code = False
    for line in read_text(rel).splitlines():
        if line.startswith("```"):
            in_code = not in_code
        m = None if in_code else re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            title = m.group(1)
            titles.add(title)
            slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
            slugs.add(slug)
    return slugs, titles


def markdown_files():
    return sorted(f for f in tracked_files() if f.endswith(".md") and (
        f == "README.md" or f.split("/")[0] in ("docs", "spool", "timers")
        or f.startswith("tests/hub/")))


# Spelled in pieces, so that this file does not cite what it looks for.
OUTSIDE = ("." + "./shared", "/work" + "/shared", "shared" + "/design/", "shared" + "/reference/")


class DocsStandAlone(unittest.TestCase):
    def test_nothing_cites_the_design_outside_the_repository(self):
        bad = []
        for rel in tracked_files():
            text = read_text(rel)
            for n, line in enumerate(text.splitlines(), 1):
                for needle in OUTSIDE:
                    if needle in line:
                        bad.append("%s:%d: %s" % (rel, n, line.strip()))
        self.assertEqual(bad, [], "cite docs/design/<page>.md instead")

    def test_the_design_pages_exist(self):
        for page in DESIGN_PAGES:
            path = os.path.join(DESIGN_DIR, page + ".md")
            with self.subTest(page=page):
                self.assertTrue(os.path.isfile(path), path + " is missing")
                self.assertRegex(read_text(os.path.relpath(path, ROOT)), r"^# \S")
        extra = sorted(set(f[:-3] for f in os.listdir(DESIGN_DIR) if f.endswith(".md"))
                       - set(DESIGN_PAGES))
        self.assertEqual(extra, [], "a design page the README's reading list lacks")
        readme = read_text("README.md")
        for page in DESIGN_PAGES:
            self.assertIn("(docs/design/%s.md)" % page, readme, "README does not link it")

    def test_design_citations_resolve(self):
        cited = 0
        for rel in tracked_files():
            text = read_text(rel)
            for m in re.finditer(r"docs/design/([\w.-]+?)\.md(?:[,:] \"([^\"\n]+)\")?", text):
                cited += 1
                page, section = m.group(1), m.group(2)
                where = "%s:%d" % (rel, text.count("\n", 0, m.start()) + 1)
                with self.subTest(where=where):
                    self.assertIn(page, DESIGN_PAGES, "%s cites docs/design/%s.md" % (where, page))
                    if section:
                        _, titles = heading_slugs("docs/design/%s.md" % page)
                        self.assertTrue(any(t.lower().startswith(section.lower()) for t in titles),
                                        "%s: docs/design/%s.md has no section %r"
                                        % (where, page, section))
        self.assertGreater(cited, 50)  # the code, tests and units do cite it

    def test_relative_links_resolve(self):
        checked = 0
        for rel in markdown_files():
            text = read_text(rel)
            text = re.sub(r"(?ms)^```.*?^```", "", text)  # code blocks hold no links
            for m in re.finditer(r"\[[^\]]*\]\(([^)\s]+)\)", text):
                target = m.group(1)
                if re.match(r"[a-z]+:", target):
                    continue  # https:, mailto:
                checked += 1
                path, _, anchor = target.partition("#")
                dest = os.path.normpath(os.path.join(os.path.dirname(rel), path)) if path else rel
                with self.subTest(file=rel, link=target):
                    self.assertFalse(dest.startswith(".."), "%s leaves the repository" % target)
                    self.assertTrue(os.path.exists(os.path.join(ROOT, dest)),
                                    "%s: %s does not exist" % (rel, target))
                    if anchor and dest.endswith(".md"):
                        slugs, _ = heading_slugs(dest)
                        self.assertIn(anchor, slugs, "%s: no heading for #%s" % (rel, anchor))
        self.assertGreater(checked, 20)

    def test_readme_paths_exist(self):
        readme = read_text("README.md")
        tops = ("bin", "lib", "jobs", "timers", "spool", "tests", "docs", "debian", "tools")
        for m in re.finditer(r"`([\w.@-]+(?:/[\w.@-]*)+)`", readme):
            path = m.group(1)
            if path.split("/")[0] in tops:
                with self.subTest(path=path):
                    self.assertTrue(os.path.exists(os.path.join(ROOT, path)),
                                    "README.md names %s, which does not exist" % path)
        for name in ("provision.sh", "spdx.sh"):
            self.assertTrue(os.path.isfile(os.path.join(ROOT, "tools", name)))


if __name__ == "__main__":
    unittest.main()
