from django.core.management.base import BaseCommand

from ledger.registry import registry_sequence


class Command(BaseCommand):
    help = "Sequence pending registry leaves and sign a checkpoint (the periodic task, once)."

    def handle(self, *args, **options):
        checkpoint = registry_sequence()
        self.stdout.write(f"checkpoint at tree size {checkpoint.tree_size}" if checkpoint else "nothing pending")
