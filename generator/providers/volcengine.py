"""Skeleton: being written."""

from __future__ import annotations

from .base import ConfiguredProvider


class VolcEngineProvider(ConfiguredProvider):
    REQUIRED = ('ACCESS_KEY', 'SECRET_KEY')
    label = "VolcEngine (Jimeng)"

    def models(self):
        return []

    def generate(self, request, progress=None):
        raise NotImplementedError

    def check(self) -> None:
        return None
