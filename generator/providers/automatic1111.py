"""Skeleton: being written."""

from __future__ import annotations

from .base import ConfiguredProvider


class Automatic1111Provider(ConfiguredProvider):
    REQUIRED = ('BASE_URL',)
    label = "Stable Diffusion WebUI"

    def models(self):
        return []

    def generate(self, request, progress=None):
        raise NotImplementedError

    def check(self) -> None:
        return None
