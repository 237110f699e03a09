"""manage.py refresh_popular: recompute Explore's popular scores now (the schedule does it every 10 minutes)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from sharing.reactions import refresh_popular_scores


class Command(BaseCommand):
    help = (
        "Recompute every published image's popular score from the last 7 days "
        "(3 × likes + 2 × downloads + 1 × views) and drop older daily counts."
    )

    def handle(self, *args: object, **options: object) -> None:
        changed = refresh_popular_scores()
        self.stdout.write(f"Popular scores refreshed: {changed} changed.")
