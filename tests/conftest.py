"""Set-up every test file shares."""

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

# test_cli.py and test_cli_evaluation.py still import their helpers as the top-level module
# ``cli_helpers`` (tests/cli_helpers.py), which only resolves with this folder on the path;
# appended, so that no file here can shadow an installed module. Drop this once they import
# ``tests.cli_helpers``.
if str(TESTS) not in sys.path:
    sys.path.append(str(TESTS))

