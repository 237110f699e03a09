"""Facts about a Django storage that callers branch on."""

from __future__ import annotations

from django.core.files.storage import Storage


def stored_locally(storage: Storage) -> bool:
    """Files on this machine's disk (FileSystemStorage); a bucket has no local path."""
    try:
        storage.path("probe")
    except NotImplementedError:
        return False
    return True
