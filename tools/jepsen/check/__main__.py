"""`python3 -m tools.jepsen.check RUN_DIR [--report] [--json]`: check a run directory,
print one line per check (and the anomalies), exit 0 only if the run is valid.
--report also writes summary.txt and timeline.html into RUN_DIR."""

import argparse
import json
import sys

from . import check_run


def main(argv=None):
    p = argparse.ArgumentParser(prog="python3 -m tools.jepsen.check", description=__doc__)
    p.add_argument("run_dir")
    p.add_argument("--report", action="store_true",
                   help="also write summary.txt and timeline.html into RUN_DIR")
    p.add_argument("--json", action="store_true", help="print the whole result as JSON")
    p.add_argument("--only", help="comma-separated check names")
    args = p.parse_args(argv)
    from .. import report
    result = check_run(args.run_dir, only=args.only.split(",") if args.only else None)
    if args.json:
        print(json.dumps(result.to_json(), indent=1, default=str))
    else:
        print(report.summary_text(result), end="")
    if args.report:
        report.write_report(args.run_dir, result)
    return 0 if result.valid else 1


if __name__ == "__main__":
    sys.exit(main())
