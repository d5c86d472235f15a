#!/usr/bin/env python
from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as problem:
        # A setting the app refuses (infra/env.py) or an embedded service that cannot run
        # here: its message names the variable to set, which a traceback would bury.
        sys.exit(f"questboard: {problem}")


if __name__ == "__main__":
    main()
