import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ledger.audit import audit_sequence, audit_verify
from ledger.checkpoints import DirectoryPublisher
from ledger.keys import pinned_ledger_keyring


class Command(BaseCommand):
    help = ("Sequence pending audit entries, then verify the whole chain against the signed checkpoints "
            "published outside the database, and name the first bad entry.")

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--no-sequence", action="store_true", help="verify only what is already sequenced")
        parser.add_argument("--checkpoint-dir", type=Path,
                            help="published checkpoints to compare with (default: QCOS_AUDIT_CHECKPOINT_DIR), "
                                 "e.g. an auditor's own copy")
        parser.add_argument("--trusted-keys", type=Path,
                            help="a directory of ledger public keys (*.pem), or one PEM file: trust only these "
                                 "(default: the configured ledger key and the pinned keys)")

    def handle(self, *args, **options):
        for option in ("trusted_keys", "checkpoint_dir"):
            if options[option] and not options[option].exists():
                raise CommandError(f"--{option.replace('_', '-')} {options[option]} does not exist")
        if not options["no_sequence"]:
            audit_sequence(checkpoint=True)  # first: on a fresh install it creates the ledger key
        try:  # here rather than in audit_verify, so that an unreadable pinned key is named
            ring = pinned_ledger_keyring(options["trusted_keys"])
        except RuntimeError as exc:
            raise CommandError(str(exc)) from None
        publisher = DirectoryPublisher(options["checkpoint_dir"]) if options["checkpoint_dir"] else None
        report = audit_verify(sequence_first=False, publisher=publisher, ring=ring)
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict()))
        elif report.ok:
            self.stdout.write(f"audit log OK: {report.entries_checked} entries, head {report.head_seq} "
                              f"{report.head_hash}; {report.external_checkpoints} checkpoints published outside "
                              "the database checked")
        for warning in report.warnings:
            self.stderr.write(f"WARNING: {warning}")
        if not report.ok:
            bad = report.first_bad
            raise CommandError(f"audit log BROKEN at seq {bad['seq']} ({bad['audit_id']}): {bad['problem']}")
