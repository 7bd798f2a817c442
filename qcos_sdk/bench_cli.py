"""``qcos bench …``: run benchmarks, fetch and verify their signed reports.

    qcos bench workloads
    qcos bench run --backend ibm_brisbane --workloads ghz_5q,ghz_10q --shots 4096 --seed 42 -o report.json
    qcos bench report BENCHMARK_ID -o report.json
    qcos bench verify report.json [--keys keys.json] [--online]

Exit codes as the rest of ``qcos``: 0 completed / valid, 1 the benchmark failed or the report
does not verify, 2 usage, I/O or API error, 3 timed out waiting (the run continues).
``verify`` is offline by default and runs the server's own verifier (:mod:`bench.report`).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tqdm import tqdm

from .bench import BenchmarkProgress, BenchReport, BenchVerification
from .client import QCOSClient
from .errors import QCOSError
from .ledger import KeyRing, KeyRingError

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


def _client(args: argparse.Namespace) -> QCOSClient:
    return QCOSClient(api_key=args.api_key, base_url=args.base_url)


def _csv(text: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list of workload ids")
    return items


def _print_report(report: BenchReport, out: Any) -> None:
    out.write(f"benchmark_id: {report.id}\nbackend: {report.backend_id}\n")
    if report.warning:
        out.write(f"warning: {report.warning}\n")
    out.write(f"content_hash: {report.content_hash}\n\n")
    out.write(f"{'workload':<14} {'qubits':>6} {'fidelity':>9} {'± stderr':>9}  {'hellinger':>9}  metric\n")
    for w in report.workloads:
        stderr = f"{w.stderr:.4f}" if w.stderr is not None else "-"
        out.write(f"{w.id:<14} {w.qubits:>6} {w.fidelity:>9.4f} {stderr:>9}  {w.hellinger_fidelity:>9.4f}  "
                  f"{w.fidelity_metric}{' (certified)' if w.entanglement_certified else ''}\n")
    summary = report.summary
    out.write(f"\naverage fidelity: {summary.average_fidelity:.4f} over {summary.total_workloads} workloads\n")


def cmd_workloads(args: argparse.Namespace) -> int:
    for w in _client(args).bench.workloads():
        print(f"{w.id:<14} {w.type:<13} {w.qubits:>4}  {w.description}")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    client = _client(args)
    handle = client.bench.run(backend=args.backend, workloads=args.workloads, shots=args.shots, seed=args.seed,
                              project=args.project)
    print(f"benchmark {handle.benchmark_id} queued on {handle.backend_id} "
          f"(~{handle.estimated_time_seconds}s, ${handle.estimated_cost_usd})", file=sys.stderr)
    if handle.warning:
        print(f"warning: {handle.warning}", file=sys.stderr)
    if args.no_wait:
        print(handle.benchmark_id)
        return EXIT_OK
    total = len(handle.workloads or [])
    bar = tqdm(total=total, unit="workload", file=sys.stderr, desc=str(handle.benchmark_id)[:8], leave=False,
               disable=bool(args.quiet))

    def progress(state: BenchmarkProgress) -> None:
        bar.set_postfix_str(str(state.status))
        bar.update(max(0, int(state.completed_workloads or 0) - bar.n))

    try:
        report = handle.wait(timeout=args.timeout, on_progress=progress)
        bar.update(total - bar.n)
    finally:
        bar.close()
    if args.output:
        client.bench.download(handle.benchmark_id, args.output)
        print(f"report written to {args.output}", file=sys.stderr)
    if args.json:
        json.dump(report.raw, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_report(report, sys.stdout)
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.output:
        client.bench.download(args.benchmark_id, args.output)
        print(f"report written to {args.output}", file=sys.stderr)
    report = client.bench.get_report(args.benchmark_id)
    if args.json:
        json.dump(report.raw, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif not args.output:
        _print_report(report, sys.stdout)
    return EXIT_OK


def _print_verification(result: BenchVerification, out: Any) -> None:
    out.write(f"status: {result.status}\nreport_id: {result.report_id}\n")
    for name in ("content_hash_valid", "evidence_hash_valid", "signature_present", "signature_valid"):
        out.write(f"{name}: {str(result[name]).lower()}\n")
    for failure in result.failures or []:
        out.write(f"FAILED {failure['check']}: {failure['message']}\n")
    for warning in result.warnings or []:
        out.write(f"warning: {warning}\n")


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        with open(args.report, encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, ValueError) as exc:
        raise QCOSError("REPORT_UNREADABLE", f"cannot read report {args.report!r}: {exc}") from exc
    keyring = None
    if args.keys:
        try:
            with open(args.keys, encoding="utf-8") as handle:
                keyring = KeyRing.from_json(handle.read())
        except (OSError, KeyRingError) as exc:
            raise QCOSError("KEYS_UNREADABLE", f"cannot read key ring {args.keys!r}: {exc}") from exc
    try:
        if args.online:
            result = _client(args).bench.verify(document)
        else:
            from bench.report import verify_report

            result = BenchVerification(verify_report(document, keyring).to_dict())
    except ValueError as exc:
        raise QCOSError("REPORT_UNREADABLE", f"{args.report}: {exc}") from exc
    if args.json:
        json.dump(result.raw, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_verification(result, sys.stdout)
    return EXIT_OK if result.is_valid else EXIT_FAILED


def register_bench(subparsers: Any, common: argparse.ArgumentParser) -> None:
    bench = subparsers.add_parser("bench", help="benchmarks: run, report, verify")
    sub = bench.add_subparsers(dest="bench_command", metavar="{workloads,run,report,verify}", required=True)
    workloads = sub.add_parser("workloads", parents=[common], help="list the benchmark workloads")
    workloads.set_defaults(handler=cmd_workloads)
    run = sub.add_parser("run", parents=[common], help="run a benchmark and wait for its report")
    run.add_argument("--backend", required=True, help="simulator, fake_brisbane, ibm_brisbane, ionq_aria, …")
    run.add_argument("--workloads", type=_csv, metavar="A,B", help="default: ghz_5q,ghz_10q,bell_state")
    run.add_argument("--shots", type=int, default=1024)
    run.add_argument("--seed", type=int)
    run.add_argument("--project")
    run.add_argument("-o", "--output", metavar="FILE", help="write the downloaded report JSON here")
    run.add_argument("--timeout", type=float, default=900.0)
    run.add_argument("--no-wait", action="store_true", help="print the benchmark id and return")
    run.add_argument("--json", action="store_true", help="print the report as JSON")
    run.set_defaults(handler=cmd_run)
    report = sub.add_parser("report", parents=[common], help="fetch a benchmark's report")
    report.add_argument("benchmark_id")
    report.add_argument("-o", "--output", metavar="FILE", help="write the download JSON here")
    report.add_argument("--json", action="store_true")
    report.set_defaults(handler=cmd_report)
    verify = sub.add_parser("verify", parents=[common], help="verify a report's hashes and signature (offline)")
    verify.add_argument("report", metavar="REPORT.json", help="a download, a saved report or a bare report")
    verify.add_argument("--keys", metavar="KEYS.json", help="pinned key ring (qcos ledger keys -o KEYS.json)")
    verify.add_argument("--online", action="store_true", help="ask the server (its key ring) instead")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(handler=cmd_verify)
