"""The settings the test suite runs with: the app's own, with a secret key of its own
(with DEBUG off the app refuses to start without one), over plain HTTP (the test client and
the suite's own servers speak HTTP; tests of HTTPS_ONLY turn it on themselves)."""

from __future__ import annotations

import os

os.environ.setdefault("SECRET_KEY", "questboard-test-suite-key-never-used-elsewhere")
os.environ.setdefault("HTTPS_ONLY", "0")
# On the embedded Redis the suite keeps to database 15, away from `make run`'s 0.
os.environ.setdefault("EMBEDDED_REDIS_DB", "15")

from config.settings import *  # noqa: E402, F403

# Every test client calls from one address, and a test may make hundreds of requests (the
# property tests many more): the suite's budgets are far above any test's, so no test trips a
# limit by accident. The limiter still runs on every request. The tests of the limits
# themselves (tests/test_rate_limits.py) put the production values back.
RATE_LIMIT_PLAYER = RATE_LIMIT_GAME_KEY = RATE_LIMIT_ANONYMOUS = "1000000/minute"
RATE_LIMIT_SIGN_IN = RATE_LIMIT_SIGN_IN_USERNAME = RATE_LIMIT_SIGN_UP = RATE_LIMIT_EMBEDS = "1000000/minute"
