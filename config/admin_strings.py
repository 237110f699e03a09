"""Strings Django 5.2's admin shows that its own zh_Hans catalogue does not translate yet.

Never imported: `makemessages` reads this file so the strings land in our catalogue, which
LOCALE_PATHS puts ahead of Django's. Drop an entry once Django ships its translation.
"""

from django.utils.translation import gettext_noop

ADMIN_GAPS = (
    # admin/app_list.html: the column headings of each app's table of models (screen readers).
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
)
