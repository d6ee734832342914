"""`verl-studio deploy --space USER/NAME`: the printing side of engine.deploy."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from engine.deploy import ADMIN_SECRET, DeployError, deploy_space


def deploy(args: argparse.Namespace) -> int:
    """Deploy, then print the Space's URL and (once) the admin token set as its secret; a
    refusal exits 1 with one line on stderr (the trace is in the log with -v)."""
    from huggingface_hub import HfApi

    if not args.verbose:  # one line per outcome, not one per HTTP request
        for name in ("httpx", "httpx2", "huggingface_hub"):
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        result = deploy_space(
            HfApi(),
            args.space,
            private=args.private,
            bucket=args.bucket,
            admin_token=os.environ.get(ADMIN_SECRET) or None,
            wait=not args.no_wait,
            timeout_s=args.timeout,
        )
    except DeployError as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return 1
    print(f"{result.space_id} is {result.stage}: {result.url}")
    if result.admin_token:
        print(f"admin token, stored as the Space secret {ADMIN_SECRET} (shown only now):")
        print(result.admin_token)
    return 0
