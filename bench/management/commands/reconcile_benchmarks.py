from django.core.management.base import BaseCommand

from bench.services import benchmarks_reconcile


class Command(BaseCommand):
    help = "Re-enqueue benchmark runs left QUEUED and fail those whose worker was lost."

    def handle(self, *args, **options):
        outcome = benchmarks_reconcile()
        self.stdout.write(f"re-enqueued {outcome.reenqueued}, failed (worker lost) {outcome.failed_lost}")
