"""Skeleton: being written."""

from __future__ import annotations

from .base import ConfiguredProvider


class DashScopeProvider(ConfiguredProvider):
    REQUIRED = ('API_KEY',)
    label = "Alibaba DashScope"

    def models(self):
        return []

    def generate(self, request, progress=None):
        raise NotImplementedError

    def check(self) -> None:
        return None
