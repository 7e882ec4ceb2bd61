# SPDX-License-Identifier: Apache-2.0
"""test_omop_harness - run tests/omop/test_pg_harness.py under tests/run.py.

The tests live beside the harness they check (tests/omop/); tests/run.py only runs
tests/integration/test_*.py, so this file puts tests/omop on sys.path and re-exports
the test classes for unittest to find.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "omop"))

from test_pg_harness import *  # noqa: E402,F401,F403
