"""Image links are built from a pattern resolved once: they must equal Django's reverse(),
also under a script prefix (Atelier served below a path)."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse, set_script_prefix

from generator.models import image_url


@pytest.mark.parametrize("name", ["api:image_file", "api:image_thumbnail", "generator:image_detail"])
def test_an_image_link_is_what_reverse_gives(name):
    pk = uuid.uuid4()
    assert image_url(name, pk) == reverse(name, args=[pk])
    set_script_prefix("/studio/")
    try:
        assert image_url(name, pk) == reverse(name, args=[pk])
        assert image_url(name, pk).startswith("/studio/")
    finally:
        set_script_prefix("/")
    assert image_url(name, pk) == reverse(name, args=[pk]) and not image_url(name, pk).startswith("/studio/")
