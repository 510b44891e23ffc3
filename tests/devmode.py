"""Development mode for the test run, switched on explicitly as `make run` does.

Loaded by pytest before Django reads the settings (`-p tests.devmode` in pyproject.toml's
addopts): DEBUG defaults to off, and with it a SECRET_KEY would be required. Tests of the
production settings pass DEBUG=false to their subprocess.
"""

from __future__ import annotations

import os

os.environ.setdefault("DEBUG", "true")
