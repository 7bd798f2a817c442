"""``qcos`` command-line interface.

Exit codes are part of the interface so scripts can branch on them:
0 job COMPLETED (or command succeeded), 1 job ended FAILED/CANCELLED/REJECTED
(or a verification failed: ``ledger verify``, ``ledger verify-audit``),
2 usage, validation, IO or API error, 3 timed out waiting (the job keeps running),
4 the job is held for approval (``qcos execute`` stops waiting; an approver decides).

New command groups (``qcos ledger ...``, ``qcos bench ...``) plug in by adding
a ``register(subparsers, common)`` function to ``COMMAND_GROUPS``; each
subcommand sets ``handler`` to a ``(args) -> int`` function.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from datetime import UTC, datetime
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from tqdm import tqdm

from ._version import __version__
from .bench_cli import register_bench
from .finops_cli import register_finops
from .client import QCOSClient
from .errors import QCOSError, QCOSTimeoutError
from .ledger import BundleFormatError, EvidenceBundle, KeyRing, KeyRingError, RegistryCheck, VerificationReport
from .models import Job, JobStatus

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_ERROR = 2
EXIT_TIMEOUT = 3
EXIT_PENDING_APPROVAL = 4

Handler = Callable[[argparse.Namespace], int]
Register = Callable[[Any, argparse.ArgumentParser], None]


# ----------------------------------------------------------------- parsing
def parse_tags(text: str) -> dict[str, str]:
    """Parse ``k=v,k=v`` into a dict; argparse turns the error into exit 2."""
    tags: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise argparse.ArgumentTypeError(
                f"invalid tag {item.strip()!r} in {text!r}: expected key=value[,key=value...]"
            )
        if key in tags:
            raise argparse.ArgumentTypeError(f"duplicate tag key {key!r} in {text!r}")
        tags[key] = value
    return tags


def _tag_filter(text: str) -> str:
    (key, value), *rest = parse_tags(text).items()
    if rest:
        raise argparse.ArgumentTypeError(f"--tag takes one key=value, got {text!r}; repeat --tag")
    return f"{key}={value}"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _connection_options(parser: argparse.ArgumentParser, default: Any) -> None:
    # Declared on the top-level parser (default None) and on every subcommand
    # (default SUPPRESS) so they work before or after the subcommand name
    # without the subcommand's default clobbering an earlier value.
    parser.add_argument("--api-key", default=default, help="API key (default: $QCOS_API_KEY)")
    parser.add_argument("--base-url", default=default, help="server URL (default: $QCOS_BASE_URL)")
    parser.add_argument("-q", "--quiet", action="store_true", default=default,
                        help="no progress indicator")


# ----------------------------------------------------------------- output
def _print_json(data: Any, out: TextIO) -> None:
    json.dump(data, out, indent=2, sort_keys=True)
    out.write("\n")


def _print_counts(counts: dict[str, int], out: TextIO) -> None:
    total = sum(counts.values()) or 1
    rows = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    width = max([len("state")] + [len(state) for state, _ in rows])
    out.write(f"{'state':<{width}}  {'count':>8}  {'probability':>11}\n")
    for state, count in rows:
        out.write(f"{state:<{width}}  {count:>8}  {count / total:>11.4f}\n")


def _print_job(job: Job, out: TextIO) -> None:
    out.write(f"job_id: {job.job_id}\n")
    out.write(f"status: {job.status}\n")
    if job.warning:  # DEV MODE: say so before anyone reads the counts as hardware results
        out.write(f"warning: {job.warning}\n")
    for name in ("backend", "shots", "project", "circuit_hash", "provenance_id", "cost_usd"):
        value = getattr(job, name)
        if value is not None:
            out.write(f"{name}: {value}\n")
    if job.counts:
        out.write("\n")
        _print_counts(job.counts, out)


def _job_exit_code(job: Job) -> int:
    if job.status == JobStatus.COMPLETED or not job.is_terminal:
        return EXIT_OK
    reason = f"{job.error.code}: {job.error.message}" if job.error else "no error details"
    print(f"error: job {job.job_id} ended {job.status}: {reason}", file=sys.stderr)
    return EXIT_JOB_FAILED


class _Progress:
    """tqdm status line on stderr, only when a human is watching."""

    def __init__(self, quiet: bool) -> None:
        self._bar = tqdm(
            total=None, file=sys.stderr, leave=False, desc="submitting",
            bar_format="{desc} [{elapsed}]",
            disable=bool(quiet) or not sys.stderr.isatty(),
        )

    def __call__(self, job: Job) -> None:
        self._bar.set_description_str(f"{job.job_id} {job.status}")
        self._bar.update(0)

    def close(self) -> None:
        self._bar.close()


# ----------------------------------------------------------------- commands
def _client(args: argparse.Namespace, **kwargs: Any) -> QCOSClient:
    return QCOSClient(api_key=args.api_key, base_url=args.base_url, **kwargs)


def _read_circuit(path: str) -> str:
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
    except OSError as exc:
        message = f"cannot read circuit {path!r}: {exc.strerror}"
        if path.lstrip().upper().startswith("OPENQASM") or ";" in path:
            # Circuit text where the file name goes: say how to pass text.
            message = ("the circuit argument is a file name (or - for stdin), not OpenQASM text: "
                       "save it to circuit.qasm and run `qcos execute circuit.qasm`, "
                       "or pipe it: `echo '...' | qcos execute -`")
        raise QCOSError("CIRCUIT_UNREADABLE", message) from exc
    if not text.strip():
        raise QCOSError("CIRCUIT_EMPTY", f"circuit {path!r} is empty")
    return text


class _HeldForApproval(Exception):
    def __init__(self, job: Job) -> None:
        self.job = job


def _stop_when_held(progress: _Progress) -> Callable[[Job], None]:
    # A held job waits for a person, not for the backend: polling until --timeout would only end
    # in a timeout that hides why.
    def on_progress(job: Job) -> None:
        progress(job)
        if job.status == JobStatus.PENDING_APPROVAL:
            raise _HeldForApproval(job)
    return on_progress


def cmd_execute(args: argparse.Namespace) -> int:
    circuit = _read_circuit(args.circuit)
    client = _client(args, ledger_enabled=args.ledger, tenant_id=args.tenant, project=args.project)
    progress = _Progress(args.quiet)
    held = False
    try:
        job = client.execute(
            circuit, backend=args.backend, shots=args.shots, tags=args.tags,
            priority=args.priority, wait=not args.no_wait, timeout=args.timeout,
            on_progress=progress if args.no_wait else _stop_when_held(progress),
        )
    except _HeldForApproval as stop:
        job, held = stop.job, True
    finally:
        progress.close()
    if args.json:
        _print_json(job.raw, sys.stdout)
    else:
        _print_job(job, sys.stdout)
    if held:
        print(f"job {job.job_id} is waiting for approval by an approver or admin of tenant {job.tenant_id} "
              f"(a budget policy requires it); they decide with `qcos approvals approve {job.job_id} "
              f"--reason ...` (or reject); follow it with `qcos jobs get {job.job_id}`", file=sys.stderr)
        return EXIT_PENDING_APPROVAL
    return _job_exit_code(job)


def cmd_jobs_get(args: argparse.Namespace) -> int:
    job = _client(args).get_job(args.job_id)
    if args.json:
        _print_json(job.raw, sys.stdout)
    else:
        _print_job(job, sys.stdout)
    return EXIT_OK


def cmd_jobs_list(args: argparse.Namespace) -> int:
    jobs_iter = _client(args).list_jobs(
        status=args.status.upper() if args.status else None, project=args.project,
        backend=args.backend, tag=args.tag or None,
        submitted_after=args.submitted_after, submitted_before=args.submitted_before,
        limit=min(args.limit + 1, 100),
    )
    # One extra item tells us whether to mention truncation.
    jobs = list(itertools.islice(jobs_iter, args.limit + 1))
    more = len(jobs) > args.limit
    jobs = jobs[: args.limit]
    if args.json:
        _print_json([job.raw for job in jobs], sys.stdout)
    else:
        header = ("JOB_ID", "STATUS", "BACKEND", "PROJECT", "SHOTS", "SUBMITTED_AT")
        rows = [header] + [
            (str(j.job_id), str(j.status), str(j.backend), str(j.project), str(j.shots),
             str(j.timings.submitted_at if j.timings else "")) for j in jobs
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        for row in rows:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    if more:
        print(f"(showing the first {args.limit} jobs; raise --limit to see more)", file=sys.stderr)
    return EXIT_OK


def cmd_jobs_cancel(args: argparse.Namespace) -> int:
    job = _client(args).cancel_job(args.job_id)
    if args.json:
        _print_json(job.raw, sys.stdout)
    else:
        print(f"{job.job_id} {job.status}")
    return EXIT_OK


def register_execute(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("execute", parents=[common], help="submit a circuit and wait")
    p.add_argument("circuit", help="OpenQASM 2/3 file, or - for stdin")
    p.add_argument("--backend", default="simulator")
    p.add_argument("--shots", type=_positive_int, default=1024)
    p.add_argument("--priority", choices=("standard", "priority", "urgent"))
    p.add_argument("--ledger", action="store_true", help="record the job in the provenance ledger")
    p.add_argument("--tenant", help="tenant id (default: the API key's tenant)")
    p.add_argument("--project", help="project (default: the tenant's default project)")
    p.add_argument("--tags", type=parse_tags, default=None, help="k=v[,k=v...]")
    p.add_argument("--timeout", type=_positive_float, default=300.0, help="seconds to wait")
    p.add_argument("--no-wait", action="store_true", help="return right after submission")
    p.add_argument("--json", action="store_true", help="print the job as one JSON object")
    p.set_defaults(handler=cmd_execute)


def register_jobs(subparsers: Any, common: argparse.ArgumentParser) -> None:
    jobs = subparsers.add_parser("jobs", help="inspect and manage jobs")
    sub = jobs.add_subparsers(dest="jobs_command", metavar="{get,list,cancel}", required=True)
    get = sub.add_parser("get", parents=[common], help="show one job")
    get.add_argument("job_id")
    get.add_argument("--json", action="store_true")
    get.set_defaults(handler=cmd_jobs_get)
    lst = sub.add_parser("list", parents=[common], help="list jobs, newest first")
    lst.add_argument("--status")
    lst.add_argument("--project")
    lst.add_argument("--backend")
    lst.add_argument("--tag", action="append", type=_tag_filter, help="k=v (repeatable)")
    lst.add_argument("--submitted-after", metavar="ISO")
    lst.add_argument("--submitted-before", metavar="ISO")
    lst.add_argument("--limit", type=_positive_int, default=50, help="max jobs shown (50)")
    lst.add_argument("--json", action="store_true", help="print one JSON array")
    lst.set_defaults(handler=cmd_jobs_list)
    cancel = sub.add_parser("cancel", parents=[common], help="cancel a job")
    cancel.add_argument("job_id")
    cancel.add_argument("--json", action="store_true")
    cancel.set_defaults(handler=cmd_jobs_cancel)


def cmd_ledger_verify_audit(args: argparse.Namespace) -> int:
    report = _client(args).ledger.verify_audit()
    if args.json:
        print(json.dumps(report.raw, indent=2))
    elif report.ok:
        print(f"audit log OK: {report.entries_checked} entries, head {report.head_seq} {report.head_hash}")
    else:
        bad = report.first_bad or {}
        print(f"audit log BROKEN at seq {bad.get('seq')} ({bad.get('audit_id') or 'another tenant'}): "
              f"{bad.get('problem')}", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_JOB_FAILED


def cmd_ledger_audit(args: argparse.Namespace) -> int:
    entries = _client(args).ledger.query_audit(
        tenant_id=args.tenant, start_date=args.start, end_date=args.end,
        actions=args.actions.split(",") if args.actions else None, limit=args.limit,
    )
    for entry in entries:
        if args.json:
            print(json.dumps(entry.raw))
        else:
            print(f"{entry.timestamp}  {entry.action:<18} {entry.principal.user_id:<22} "
                  f"{entry.resource.type}:{entry.resource.id}  {entry.outcome}")
    return EXIT_OK


def cmd_ledger_get_evidence(args: argparse.Namespace) -> int:
    path = args.output or f"{args.job_id}-evidence.json"
    try:
        bundle = _client(args).ledger.download_evidence(args.job_id, path)
    except OSError as exc:
        raise QCOSError("WRITE_FAILED", f"cannot write {path!r}: {exc.strerror or exc}") from exc
    print(f"saved evidence bundle {bundle.bundle_id} of job {bundle.job_id} to {path}")
    return EXIT_OK


def cmd_ledger_keys(args: argparse.Namespace) -> int:
    ring = _client(args).ledger.public_keys()
    if args.output:
        _write_text(args.output, ring.to_json() + "\n")
        print(f"saved {len(ring)} public keys to {args.output} (pin it: qcos ledger verify --keys {args.output})")
    else:
        print(ring.to_json())
    return EXIT_OK


def cmd_ledger_checkpoint(args: argparse.Namespace) -> int:
    sys.stdout.write(_client(args).ledger.checkpoint())
    return EXIT_OK


def _write_text(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise QCOSError("WRITE_FAILED", f"cannot write {path!r}: {exc.strerror or exc}") from exc


def _load_keyring(path: str) -> KeyRing:
    try:
        with open(path, "rb") as fh:
            return KeyRing.from_json(fh.read())
    except OSError as exc:
        raise QCOSError("KEYS_UNREADABLE", f"cannot read key ring {path!r}: {exc.strerror or exc}") from exc
    except KeyRingError as exc:
        raise QCOSError("KEYS_INVALID", f"key ring {path!r}: {exc}") from exc


_ITEM_CHECKS = frozenset({"item_hash", "chain", "schema"})


def _verification_document(
    args: argparse.Namespace,
    bundle: EvidenceBundle,
    report: VerificationReport,
    keys_source: str,
    keyring: KeyRing | None,
    registry_check: RegistryCheck | None,
    warnings: list[str],
) -> dict[str, Any]:
    data = bundle.to_dict()
    failures = list(report.failures) + (list(registry_check.failures) if registry_check else [])
    registry_log_valid = None if registry_check is None else bool(registry_check.valid)
    ok = report.is_valid and registry_log_valid is not False
    items = data.get("items") if isinstance(data.get("items"), list) else []
    signatures = data.get("signatures") if isinstance(data.get("signatures"), list) else []
    registry = data.get("registry") if isinstance(data.get("registry"), dict) else None
    return {
        "report_version": 1,
        "verified_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "verifier": f"qcos-sdk/{__version__}",
        "bundle_file": os.path.abspath(args.bundle),
        "bundle_id": data.get("bundle_id"),
        "job_id": data.get("job_id"),
        "tenant_id": data.get("tenant_id"),
        "merkle_root": data.get("merkle_root"),
        "is_valid": ok,
        "hashes_valid": report.hashes_valid,
        "signatures_valid": report.signatures_valid,
        "chain_valid": report.chain_valid,
        "registry_valid": report.registry_valid,
        "registry_log_valid": registry_log_valid,
        "keys_pinned": report.keys_pinned,
        "keys": {
            "source": keys_source,
            "key_ids": sorted(k.key_id for k in keyring) if keyring is not None else None,
        },
        "items": [
            {
                "index": i,
                "type": item.get("type") if isinstance(item, dict) else None,
                "hash": item.get("hash") if isinstance(item, dict) else None,
                "valid": not any(f.get("index") == i and f["check"] in _ITEM_CHECKS for f in report.failures),
            }
            for i, item in enumerate(items)
        ],
        "signatures": [
            {
                "index": i,
                "signer": sig.get("signer") if isinstance(sig, dict) else None,
                "key_id": sig.get("key_id") if isinstance(sig, dict) else None,
                "signed_at": sig.get("signed_at") if isinstance(sig, dict) else None,
                "valid": not any(f.get("index") == i and f["check"] == "signature" for f in report.failures),
            }
            for i, sig in enumerate(signatures)
        ],
        "registry": (
            {"leaf_index": registry.get("leaf_index"), "tree_size": registry.get("tree_size")} if registry else None
        ),
        "registry_log": registry_check.raw if registry_check is not None else None,
        "failures": failures,
        "warnings": warnings,
    }


def _status(value: bool | None, absent: str = "not present") -> str:
    return absent if value is None else ("OK" if value else "FAILED")


def _print_verification(doc: dict[str, Any], out: TextIO) -> None:
    out.write(f"bundle {doc['bundle_id']} (job {doc['job_id']}, tenant {doc['tenant_id']})\n")
    n_items = len(doc["items"])
    out.write(f"  item hashes     {_status(doc['hashes_valid'])} ({n_items} items)\n")
    signers = ", ".join(str(s["signer"]) for s in doc["signatures"] if s["valid"]) or "none valid"
    out.write(f"  signatures      {_status(doc['signatures_valid'])} ({signers})\n")
    out.write(f"  chain           {_status(doc['chain_valid'])}\n")
    reg = doc["registry"]
    where = f" (leaf {reg['leaf_index']} of tree size {reg['tree_size']})" if reg else ""
    out.write(f"  registry proof  {_status(doc['registry_valid'])}{where}\n")
    log = doc["registry_log"]
    detail = ""
    if log and log.get("checkpoint"):
        cp = log["checkpoint"]
        detail = f" ({log['method']} with checkpoint {cp['origin']} size {cp['size']})"
    out.write(f"  registry log    {_status(doc['registry_log_valid'], 'not checked')}{detail}\n")
    keys = doc["keys"]["source"]
    if doc["keys_pinned"]:
        out.write(f"  keys            pinned ({keys})\n")
    else:
        out.write("  keys            NOT PINNED: the bundle's own keys prove integrity, not origin\n")
    verdict = "VALID" if doc["is_valid"] else f"INVALID ({len(doc['failures'])} failures)"
    out.write(f"result: {verdict}\n")
    for failure in doc["failures"]:
        where = " ".join(
            f"{k}={failure[k]}" for k in ("item", "field", "signer", "key_id", "index") if failure.get(k) is not None
        )
        out.write(f"  - {failure['check']}{' [' + where + ']' if where else ''}: {failure['message']}\n")
    for warning in doc["warnings"]:
        out.write(f"warning: {warning}\n")


def cmd_ledger_verify(args: argparse.Namespace) -> int:
    try:
        bundle = EvidenceBundle.load(args.bundle)
    except BundleFormatError as exc:
        raise QCOSError("BUNDLE_UNREADABLE", f"cannot read bundle {args.bundle!r}: {exc}") from exc
    keyring: KeyRing | None = None
    keys_source = "embedded public_keys (untrusted)"
    extra_warnings: list[str] = []
    if args.keys:
        keyring = _load_keyring(args.keys)
        keys_source = f"file {args.keys}"
    client = None
    if args.registry is not None:
        client = QCOSClient(api_key=args.api_key, base_url=args.registry or args.base_url)
        if keyring is None:
            keyring = client.ledger.public_keys()
            keys_source = client._url("/ledger/keys")
            extra_warnings.append(
                f"keys fetched from {client.base_url} at verification time, not pinned in advance (use --keys)"
            )
    report = bundle.verify(keyring, require_registry=args.require_registry, log_origin=args.log_origin)
    registry_check = None
    if client is not None:
        assert keyring is not None  # --keys or fetched above
        registry_check = client.ledger.check_registry(bundle, keyring, log_origin=args.log_origin)
    doc = _verification_document(
        args, bundle, report, keys_source, keyring, registry_check, list(report.warnings) + extra_warnings
    )
    if args.output:
        _write_text(args.output, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    _print_verification(doc, sys.stdout)
    if args.output:
        print(f"report written to {args.output}")
    return EXIT_OK if doc["is_valid"] else EXIT_JOB_FAILED


def cmd_ledger_report(args: argparse.Namespace) -> int:
    client = _client(args)
    group_by = [d.strip() for d in args.group_by.split(",") if d.strip()] if args.group_by is not None else None
    report = client.ledger.generate_report(report_type=args.type, start_date=args.start, end_date=args.end,
                                           group_by=group_by, format=args.format)
    output = args.output or f"{args.type}-{args.start}-{args.end}.{'json' if args.format == 'json' else 'csv'}"
    try:
        report.download(output, timeout=args.timeout)
    except QCOSTimeoutError:
        print(f"error: TIMEOUT: report {report.id} is still {report.status}; fetch it later with "
              f"client.ledger.get_report({report.id!r}).download(...)", file=sys.stderr)
        return EXIT_TIMEOUT
    except OSError as exc:
        raise QCOSError("WRITE_FAILED", f"cannot write {output!r}: {exc.strerror or exc}") from exc
    print(f"saved {report.format} report {report.id} ({report.rows} rows, {args.start} to {args.end}) to {output}")
    return EXIT_OK


def register_ledger(subparsers: Any, common: argparse.ArgumentParser) -> None:
    ledger = subparsers.add_parser("ledger", help="audit log, evidence and reports")
    sub = ledger.add_subparsers(
        dest="ledger_command", metavar="{audit,verify-audit,get-evidence,verify,keys,checkpoint,report}",
        required=True,
    )
    audit = sub.add_parser("audit", parents=[common], help="query the audit log (one entry a line)")
    audit.add_argument("--tenant")
    audit.add_argument("--start", metavar="DATE")
    audit.add_argument("--end", metavar="DATE")
    audit.add_argument("--actions", metavar="A,B", help="e.g. JOB_SUBMITTED,JOB_COMPLETED")
    audit.add_argument("--limit", type=_positive_int, default=100)
    audit.add_argument("--json", action="store_true", help="one JSON object a line")
    audit.set_defaults(handler=cmd_ledger_audit)
    verify = sub.add_parser("verify-audit", parents=[common], help="verify the whole audit chain")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(handler=cmd_ledger_verify_audit)
    get = sub.add_parser("get-evidence", parents=[common], help="download a completed job's evidence bundle")
    get.add_argument("job_id")
    get.add_argument("-o", "--output", metavar="FILE",
                     help="FILE.json (one JSON file) or FILE.zip (the directory layout); "
                          "default JOB-evidence.json")
    get.set_defaults(handler=cmd_ledger_get_evidence)
    check = sub.add_parser(
        "verify", parents=[common], help="verify an evidence bundle offline (optionally against the registry)",
        description="Verify an evidence bundle with the same code the server runs. Offline by default: "
                    "hashes, Merkle root, signatures, chain of custody and the bundle's registry proof. "
                    "--registry also checks, against the log's current signed checkpoint, that the bundle "
                    "is still in the log (consistency proof from the bundle's checkpoint, or an inclusion "
                    "proof when it carries none); proofs are verified locally, the server gives no verdict. "
                    "Exit 0 all valid, 1 verification failed, 2 usage/IO/API error.",
    )
    check.add_argument("--bundle", required=True, metavar="FILE", help="bundle .json, .zip or exported directory")
    check.add_argument("-o", "--output", metavar="REPORT", help="write the JSON report here")
    check.add_argument("--keys", metavar="KEYS.json",
                       help="pinned key ring (qcos ledger keys -o KEYS.json); default: the bundle's own keys")
    check.add_argument("--registry", nargs="?", const="", metavar="URL",
                       help="QCOS base URL (default: --base-url/$QCOS_BASE_URL) for the registry check; "
                            "also fetches /ledger/keys when --keys is absent")
    check.add_argument("--log-origin", metavar="ORIGIN", help="require checkpoints from this log origin")
    check.add_argument("--require-registry", action="store_true", help="fail when the bundle has no registry proof")
    check.set_defaults(handler=cmd_ledger_verify)
    keys = sub.add_parser("keys", parents=[common], help="fetch the ledger's public key ring (to pin it)")
    keys.add_argument("-o", "--output", metavar="FILE", help="write the key ring JSON here (default: stdout)")
    keys.set_defaults(handler=cmd_ledger_keys)
    cp = sub.add_parser("checkpoint", parents=[common], help="print the registry's current signed checkpoint")
    cp.set_defaults(handler=cmd_ledger_checkpoint)
    report = sub.add_parser("report", parents=[common], help="generate and download a chargeback report",
                            description="Costs of the key's tenant over whole UTC days START..END (inclusive), "
                                        "settled charges only. Admins and auditors.")
    report.add_argument("--type", default="chargeback", help="report type (chargeback)")
    report.add_argument("--start", required=True, metavar="DATE", help="first day, e.g. 2026-01-01")
    report.add_argument("--end", required=True, metavar="DATE", help="last day (inclusive), e.g. 2026-01-31")
    report.add_argument("--format", default="csv", choices=["csv", "json", "focus"],
                        help="csv (Tenant,Project,Backend,Jobs,Shots,Cost (USD)), json, or focus (FOCUS 1.2 CSV)")
    report.add_argument("--group-by", metavar="A,B", help="tenant,project,backend (default) and/or tag:<key>")
    report.add_argument("-o", "--output", metavar="FILE", help="default TYPE-START-END.csv")
    report.add_argument("--timeout", type=_positive_float, default=300.0, help="seconds to wait for the file")
    report.set_defaults(handler=cmd_ledger_report)


COMMAND_GROUPS: list[Register] = [register_execute, register_jobs, register_ledger]
COMMAND_GROUPS.append(register_bench)
COMMAND_GROUPS.append(register_finops)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qcos", description="QCOS quantum job governance CLI")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _connection_options(parser, None)
    common = argparse.ArgumentParser(add_help=False)
    _connection_options(common, argparse.SUPPRESS)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in COMMAND_GROUPS:
        register(subparsers, common)
    return parser


def _cli_message(exc: QCOSError) -> str:
    # The SDK's own messages name its constructor arguments (api_key=...); a CLI user needs the
    # flag and the environment variable instead.
    if exc.code == "MISSING_API_KEY":
        return "no API key: pass --api-key KEY or set the QCOS_API_KEY environment variable"
    if exc.code == "CONNECTION_ERROR":
        return f"{exc.message} (the server URL comes from --base-url URL or the QCOS_BASE_URL environment variable)"
    return exc.message


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``qcos`` script; returns the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage/--help
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    handler: Handler = args.handler
    try:
        return handler(args)
    except QCOSTimeoutError as exc:
        print(f"error: {exc.code}: {exc.message}; check later with "
              f"`qcos jobs get {exc.job_id}`", file=sys.stderr)
        return EXIT_TIMEOUT
    except QCOSError as exc:
        print(f"error: {exc.code}: {_cli_message(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
