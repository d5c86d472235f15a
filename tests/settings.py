"""The settings the test suite runs with: the app's own, with a secret key of its own
(with DEBUG off the app refuses to start without one)."""

from __future__ import annotations

import os

os.environ.setdefault("SECRET_KEY", "questboard-test-suite-key-never-used-elsewhere")

from tracker.settings import *  # noqa: E402, F403
