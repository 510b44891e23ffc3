#!/usr/bin/env python
from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_site.settings")
    from django.core.management import execute_from_command_line

    from annotation_site.localdirs import prepare_local_dirs

    prepare_local_dirs()
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
