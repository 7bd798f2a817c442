from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ledger.crypto.signing import load_public_key, public_key_der
from ledger.keys import pin_ledger_key, trusted_keys_dir
from ledger.models import SigningKey


class Command(BaseCommand):
    help = ("Pin ledger public keys for audit verification (QCOS_LEDGER_TRUSTED_KEYS_DIR). Audit verification "
            "never trusts a key only because the database lists it; pin the keys that signed older checkpoints "
            "(a replaced KMS or environment key) from their PEM files, or, once, when upgrading a deployment you "
            "trust, from the database.")

    def add_arguments(self, parser):
        parser.add_argument("pem", nargs="*", type=Path, help="public key PEM files")
        parser.add_argument("--from-database", action="store_true",
                            help="pin every non-revoked ledger key the database lists (trusts the database as it is now)")

    def handle(self, *args, **options):
        if not options["pem"] and not options["from_database"]:
            raise CommandError("give PEM files or --from-database")
        ders = []
        for path in options["pem"]:
            try:
                ders.append(public_key_der(load_public_key(path.read_bytes())))
            except (OSError, ValueError, TypeError) as exc:
                raise CommandError(f"{path} is not a P-384 public key: {exc}") from None
        if options["from_database"]:
            rows = SigningKey.objects.filter(role="ledger").exclude(status="revoked")
            ders += [bytes(row.public_key_der) for row in rows]
        for der in ders:
            self.stdout.write(f"pinned {pin_ledger_key(der).name}")
        self.stdout.write(f"{len(ders)} ledger keys pinned in {trusted_keys_dir()}")
