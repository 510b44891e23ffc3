from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

from annotation_site.localdirs import prepare_local_dirs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_site.settings")
application = get_asgi_application()
prepare_local_dirs()
