#!/usr/bin/env python3
"""Plan the clean-up of old database snapshots.

Run by tasksync (see ../maintenance.yaml) inside its sandbox: no network, an
empty environment plus the declared `env`, a temporary working directory.
The script therefore does not delete anything itself. It works out which
daily snapshots fall outside the retention policy ("grandfather-father-son":
keep the last N daily, N weekly and N monthly snapshots) and prints the plan.
A later step (for example an api_call to the backup service) acts on it.

Progress goes to stderr, the result to stdout; the last line of stdout is a
JSON object so that the run history shows a machine-readable summary.
"""

import argparse
import datetime as dt
import json
import os
import sys


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keep-daily", type=int, default=7)
    p.add_argument("--keep-weekly", type=int, default=4)
    p.add_argument("--keep-monthly", type=int, default=12)
    p.add_argument("--horizon-days", type=int, default=400,
                   help="how far back snapshots may exist")
    p.add_argument("--today", type=dt.date.fromisoformat, default=None,
                   help="reference date (YYYY-MM-DD), default: today")
    p.add_argument("--max-list", type=int, default=100,
                   help="list at most this many names (output is capped)")
    return p.parse_args(argv)


def plan(today, keep_daily, keep_weekly, keep_monthly, horizon_days):
    """Return (keep, delete): sorted lists of snapshot dates."""
    days = [today - dt.timedelta(days=i) for i in range(horizon_days)]
    keep = set(days[:keep_daily])

    weeks, months = [], []
    for d in days:  # newest first: the first snapshot seen in a period wins
        week = d.isocalendar()[:2]
        if len(weeks) < keep_weekly and week not in [w for w, _ in weeks]:
            weeks.append((week, d))
        month = (d.year, d.month)
        if len(months) < keep_monthly and month not in [m for m, _ in months]:
            months.append((month, d))
    keep.update(d for _, d in weeks)
    keep.update(d for _, d in months)

    delete = sorted(set(days) - keep)
    return sorted(keep), delete


def main(argv):
    args = parse_args(argv)
    for name in ("keep_daily", "keep_weekly", "keep_monthly", "horizon_days",
                 "max_list"):
        if getattr(args, name) < 0:
            print(f"--{name.replace('_', '-')} must not be negative", file=sys.stderr)
            return 2

    today = args.today or dt.date.today()
    prefix = os.environ.get("SNAPSHOT_PREFIX", "db")
    keep, delete = plan(today, args.keep_daily, args.keep_weekly,
                        args.keep_monthly, args.horizon_days)

    print(f"reference date {today}, {len(keep)} snapshots kept, "
          f"{len(delete)} to delete", file=sys.stderr)
    for d in list(reversed(delete))[:5]:
        print(f"  would delete {prefix}-{d:%Y%m%d}", file=sys.stderr)

    summary = {
        "reference_date": today.isoformat(),
        "policy": {"daily": args.keep_daily, "weekly": args.keep_weekly,
                   "monthly": args.keep_monthly},
        "kept": len(keep),
        "delete_count": len(delete),
        # Newest first: the oldest ones were most likely deleted by an
        # earlier run already.
        "delete": [f"{prefix}-{d:%Y%m%d}"
                   for d in reversed(delete)][:args.max_list],
        "truncated": len(delete) > args.max_list,
    }
    print(json.dumps(summary, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
