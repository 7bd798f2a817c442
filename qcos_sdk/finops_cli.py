"""``qcos budget …`` and ``qcos approvals …``: budgets before you submit, decisions after.

    qcos budget check 0.50 [--project quantum-ml]     # exit 0 can proceed, 1 cannot
    qcos budget status
    qcos approvals list
    qcos approvals approve JOB_ID --reason "…"
    qcos approvals reject JOB_ID --reason "…"
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal, InvalidOperation
from typing import Any

from .client import QCOSClient

EXIT_OK, EXIT_CANNOT, EXIT_ERROR = 0, 1, 2


def _client(args: argparse.Namespace) -> QCOSClient:
    return QCOSClient(api_key=args.api_key, base_url=args.base_url)


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount in USD") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError("the amount must be >= 0")
    return value


def _dump(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def cmd_budget_check(args: argparse.Namespace) -> int:
    check = _client(args).check_budget(estimated_cost=args.estimated_cost, tenant_id=args.tenant,
                                       project=args.project)
    if args.json:
        _dump(check.raw)
    else:
        remaining = "no limit" if check.remaining_usd is None else f"${check.remaining_usd:.2f} remaining"
        print(f"{'can proceed' if check.can_proceed else 'cannot proceed'}: {check.message} ({remaining})")
    return EXIT_OK if check.can_proceed else EXIT_CANNOT


def cmd_budget_status(args: argparse.Namespace) -> int:
    status = _client(args).budget_status()
    if args.json:
        _dump(status)
        return EXIT_OK
    if not status["policies"]:
        print(f"{status['tenant_id']}: no budget policy")
    for policy in status["policies"]:
        scope = f"project {policy['project']}" if policy["project"] else "tenant"
        print(f"{status['tenant_id']} {scope}: on exceeded {policy['on_budget_exceeded']}, "
              f"per job {policy['per_job_limit_usd'] or 'no limit'}")
        for w in policy["windows"]:
            print(f"  {w['window']:<5} {w['period_start']}  limit {w['limit_usd']}  spent {w['spent_usd']}  "
                  f"reserved {w['reserved_usd']}  remaining {w['remaining_usd']}")
    return EXIT_OK


def cmd_approvals_list(args: argparse.Namespace) -> int:
    jobs = _client(args).list_approvals()
    if args.json:
        _dump([job.raw for job in jobs])
        return EXIT_OK
    for job in jobs:
        print(f"{job.job_id}  {job.project}  {job.backend}  shots={job.shots}  "
              f"estimate=${job.estimated_cost_usd}  by {job.submitted_by}")
    if not jobs:
        print("no job is waiting for a decision", file=sys.stderr)
    return EXIT_OK


def cmd_approvals_decide(args: argparse.Namespace) -> int:
    client = _client(args)
    job = (client.approve_job(args.job_id, reason=args.reason) if args.decision == "approve"
           else client.reject_job(args.job_id, reason=args.reason))
    print(f"{job.job_id} {job.status}")
    return EXIT_OK


def register_finops(subparsers: Any, common: argparse.ArgumentParser) -> None:
    budget = subparsers.add_parser("budget", help="budget checks and status")
    sub = budget.add_subparsers(dest="budget_command", metavar="{check,status}", required=True)
    check = sub.add_parser("check", parents=[common], help="would a job of this cost be admitted now?")
    check.add_argument("estimated_cost", type=_amount, help="USD")
    check.add_argument("--tenant")
    check.add_argument("--project")
    check.add_argument("--json", action="store_true")
    check.set_defaults(handler=cmd_budget_check)
    status = sub.add_parser("status", parents=[common], help="limits, spent and reserved this day and month")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=cmd_budget_status)

    approvals = subparsers.add_parser("approvals", help="jobs waiting for a decision (approvers)")
    sub = approvals.add_subparsers(dest="approvals_command", metavar="{list,approve,reject}", required=True)
    lst = sub.add_parser("list", parents=[common], help="jobs waiting for a decision")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_approvals_list)
    for decision in ("approve", "reject"):
        p = sub.add_parser(decision, parents=[common], help=f"{decision} a waiting job (not your own)")
        p.add_argument("job_id")
        p.add_argument("--reason", default="", required=decision == "reject")
        p.set_defaults(handler=cmd_approvals_decide, decision=decision)
