"""One end-to-end round, printed as one line, for comparing two builds round by round.

``make bench`` compares its scenarios with each other in one run; comparing two commits needs
each build's rounds side by side instead, as close in time as possible, because this host's
speed moves by a third from one minute to the next. Run this from a checkout of each commit
(``git worktree add``, each with its own ``.venv``), alternating::

    for i in 1 2 3 4 5 6 7 8; do
        for tree in ../before .; do
            (cd $tree && .venv/bin/python -m bench.round --processes 1)
        done
    done

and compare the pairs, not the means. Each line is the delivery rate and the CPU time the
hookline processes spent per delivery: a slower minute raises both for either build, a
costlier build raises the CPU alone.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.receiver import Nginx
from bench.run import NOT_BINDING, end_to_end_sqlite, free_port


async def one_round(processes: int, messages: int, admission: bool) -> str:
    work = Path(tempfile.mkdtemp(prefix="hookline-round-"))
    nginx = Nginx(free_port()).start()
    try:
        throttle = NOT_BINDING if admission else None
        result = await end_to_end_sqlite(
            nginx, work, messages, processes=processes, throttle_rate=throttle
        )
    finally:
        nginx.stop()
        shutil.rmtree(work, ignore_errors=True)
    cpu = result.figures["hookline CPU µs/delivery"]
    return f"{result.rate:.0f} deliveries/s {cpu:.1f} CPU µs/delivery"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--messages", type=int, default=40_000)
    parser.add_argument(
        "--admission", action="store_true", help="a rate limit on the endpoint that never binds"
    )
    args = parser.parse_args(argv)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(commit, asyncio.run(one_round(args.processes, args.messages, args.admission)))


if __name__ == "__main__":
    main(sys.argv[1:])
