from django.core.management.base import BaseCommand

from qcos.jobs.services import jobs_reconcile


class Command(BaseCommand):
    help = "Re-queue jobs whose worker was lost and re-enqueue jobs the broker lost (the periodic task, once)."

    def handle(self, *args, **options):
        outcome = jobs_reconcile()
        self.stdout.write(
            f"requeued (lease expired): {outcome.requeued_expired}; re-enqueued (stale): "
            f"{outcome.reenqueued_stale}; failed (attempts exhausted): {outcome.failed_exhausted}"
        )
