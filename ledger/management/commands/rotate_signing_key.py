from django.core.management.base import BaseCommand, CommandError

from ledger.keys import signing_key_rotate


class Command(BaseCommand):
    help = "Retire the current signing key of a role (from now on) and start a new one."

    def add_arguments(self, parser):
        parser.add_argument("--role", choices=["ledger", "worker"], default="ledger")

    def handle(self, *args, **options):
        try:
            old, new = signing_key_rotate(role=options["role"])
        except RuntimeError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{options['role']} key rotated: {old or '(none)'} retired, {new} active")
