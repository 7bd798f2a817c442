import json

from django.core.management.base import BaseCommand, CommandError

from ledger.audit import audit_verify


class Command(BaseCommand):
    help = "Sequence pending audit entries, then verify the whole chain and name the first bad entry."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--no-sequence", action="store_true", help="verify only what is already sequenced")

    def handle(self, *args, **options):
        report = audit_verify(sequence_first=not options["no_sequence"])
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict()))
        elif report.ok:
            self.stdout.write(f"audit log OK: {report.entries_checked} entries, head {report.head_seq} {report.head_hash}")
        if not report.ok:
            bad = report.first_bad
            raise CommandError(f"audit log BROKEN at seq {bad['seq']} ({bad['audit_id']}): {bad['problem']}")
