#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""run - run every flip-node test and print one summary line.

Unit tests are the cmocka programs in --units (one per module); integration tests
are the Python unittest files tests/integration/test_*.py and the hub emulator's
self-check, each run in its own interpreter with FLIP_BIN (the test build, crash
points compiled in) and FLIP_RELEASE_BIN (the release build) in its environment.
With --fuzz DIR, every libFuzzer target DIR/fuzz_<name> also runs for 10 s on a
temporary copy of tests/fuzz/corpus/<name> and counts as one test, failed on a
non-zero exit (crash, leak, sanitizer report, per-input timeout) or a hang; a crash
input is kept in DIR/artifacts-<name>/.
The last line is `N passed, N failed` (skips are shown after it when there are any);
the exit status is non-zero when anything failed or nothing ran.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = "/usr/bin/python3"


def run_unit(path):
    env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="stdout")
    try:
        p = subprocess.run([path], capture_output=True, text=True, env=env, timeout=300)
    except subprocess.TimeoutExpired:
        return 0, 1, 0, "timed out after 300 s"
    out = p.stdout + p.stderr
    passed = sum(int(m) for m in re.findall(r"\[  PASSED  \] (\d+) test", out))
    failed = sum(int(m) for m in re.findall(r"\[  FAILED  \] (\d+) test", out))
    skipped = sum(int(m) for m in re.findall(r"\[  SKIPPED \] (\d+) test", out))
    if p.returncode != 0 and failed == 0:
        failed = 1  # crashed or aborted before cmocka could count
    return passed, failed, skipped, out


# per file; the fresh-host tests (test_first_build, test_systemd) make a Debian root
# with debootstrap and install packages into it when their cache is cold
INTEGRATION_TIMEOUT = 1500


def run_integration(path, env):
    try:
        p = subprocess.run([PY, "-m", "unittest", "-v", path], capture_output=True, text=True,
                           env=env, timeout=INTEGRATION_TIMEOUT, cwd=ROOT)
    except subprocess.TimeoutExpired as e:
        return 0, 1, 0, "timed out after %d s\n" % INTEGRATION_TIMEOUT + (
            e.stderr or b"").decode(errors="replace")
    out = p.stderr + p.stdout
    m = re.search(r"^Ran (\d+) tests?", out, re.M)
    total = int(m.group(1)) if m else 0
    fails = sum(int(x) for x in re.findall(r"(?:failures|errors)=(\d+)", out.splitlines()[-1] if out else ""))
    skipped = sum(int(x) for x in re.findall(r"skipped=(\d+)", out.splitlines()[-1] if out else ""))
    if p.returncode != 0 and fails == 0:
        fails = 1
    return max(total - fails - skipped, 0), fails, skipped, out


FUZZ_SECONDS = 10


def run_fuzz(path, fuzz_dir):
    """one libFuzzer target for FUZZ_SECONDS on a temporary copy of its seed corpus"""
    name = os.path.basename(path)[len("fuzz_"):]
    seeds = os.path.join(HERE, "fuzz", "corpus", name)
    artifacts = os.path.join(fuzz_dir, "artifacts-" + name)
    os.makedirs(artifacts, exist_ok=True)
    env = dict(os.environ, UBSAN_OPTIONS="print_stacktrace=1")
    with tempfile.TemporaryDirectory(prefix="flip-fuzz-") as tmp:
        corpus = os.path.join(tmp, "corpus")
        if os.path.isdir(seeds):
            shutil.copytree(seeds, corpus)
        else:
            os.mkdir(corpus)
        cmd = [path, f"-max_total_time={FUZZ_SECONDS}", "-rss_limit_mb=2048", "-timeout=10",
               "-print_final_stats=1", "-artifact_prefix=" + artifacts + os.sep, corpus]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=env,
                               timeout=FUZZ_SECONDS + 110, cwd=tmp)
        except subprocess.TimeoutExpired as e:
            out = e.stderr or b""
            out = out.decode(errors="replace") if isinstance(out, bytes) else out
            return 0, 1, 0, f"timed out after {FUZZ_SECONDS + 110} s\n" + out
    out = p.stdout + p.stderr
    return (1, 0, 0, out) if p.returncode == 0 else (0, 1, 0, out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", default="build/test/unit")
    ap.add_argument("--bin", default="build/test/bin")
    ap.add_argument("--release-bin", default="build/bin")
    ap.add_argument("--only-units", action="store_true")
    ap.add_argument("-k", dest="pattern", help="run only test files whose name contains this")
    ap.add_argument("--fuzz", metavar="DIR",
                    help=f"also run every libFuzzer target DIR/fuzz_* for {FUZZ_SECONDS} s")
    args = ap.parse_args()

    results = []
    units = sorted(os.path.join(args.units, f) for f in os.listdir(args.units)
                   if f.startswith("test_")) if os.path.isdir(args.units) else []
    files = []
    if not args.only_units:
        idir = os.path.join(HERE, "integration")
        files = sorted(os.path.join(idir, f) for f in os.listdir(idir)
                       if f.startswith("test_") and f.endswith(".py")) if os.path.isdir(idir) else []
        files.append(os.path.join(HERE, "hub", "test_emulator_selfcheck.py"))
    fuzzers = []
    if args.fuzz:
        fuzzers = sorted(os.path.join(args.fuzz, f) for f in os.listdir(args.fuzz)
                         if f.startswith("fuzz_") and os.path.isfile(os.path.join(args.fuzz, f))
                         and os.access(os.path.join(args.fuzz, f), os.X_OK))
    if args.pattern:
        units = [u for u in units if args.pattern in os.path.basename(u)]
        files = [f for f in files if args.pattern in os.path.basename(f)]
        fuzzers = [f for f in fuzzers if args.pattern in os.path.basename(f)]

    env = dict(os.environ,
               FLIP_BIN=os.path.abspath(args.bin),
               FLIP_RELEASE_BIN=os.path.abspath(args.release_bin),
               PYTHONPATH=os.pathsep.join([os.path.join(HERE, "hub"), os.path.join(HERE, "integration")]),
               PYTHONDONTWRITEBYTECODE="1")
    for kind, items, fn in (("unit", units, run_unit), ("integration", files, None),
                            ("fuzz", fuzzers, None)):
        for path in items:
            t0 = time.monotonic()
            if kind == "unit":
                p, f, s, out = run_unit(path)
            elif kind == "integration":
                p, f, s, out = run_integration(path, env)
            else:
                p, f, s, out = run_fuzz(os.path.abspath(path), os.path.abspath(args.fuzz))
            name = os.path.relpath(path, ROOT)
            print(f"{'ok  ' if f == 0 else 'FAIL'} {name}: {p} passed, {f} failed"
                  f"{f', {s} skipped' if s else ''} ({time.monotonic() - t0:.1f} s)", flush=True)
            if f:
                tail = 40 if kind == "fuzz" else 80
                print("\n".join("    " + line for line in out.rstrip().splitlines()[-tail:]), flush=True)
            results.append((p, f, s))
    passed = sum(r[0] for r in results)
    failed = sum(r[1] for r in results)
    skipped = sum(r[2] for r in results)
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
