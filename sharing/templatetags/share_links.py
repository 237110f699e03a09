"""{% share_links_on as name %}: whether share links exist on this site (SHARING=public), for
pages outside the sharing app that link to them (the account page)."""

from __future__ import annotations

from django import template

from ..switch import PUBLIC, allows

register = template.Library()


@register.simple_tag
def share_links_on() -> bool:
    return allows(PUBLIC)
