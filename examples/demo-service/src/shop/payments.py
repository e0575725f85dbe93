"""Client of the (simulated) payments-api upstream.

The upstream's health lives outside the service (the file named by
DEMO_UPSTREAM holds its failure rate), so it survives deploys and restarts,
like a real dependency's outage would.
"""

import os
import random


def _failure_rate():
    path = os.environ.get("DEMO_UPSTREAM")
    if not path:
        return 0.0
    try:
        with open(path, encoding="utf-8") as f:
            return float(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0.0


def authorize(amount):
    """Pre-authorizes `amount`; times out as often as the upstream fails."""
    if random.random() < _failure_rate():
        raise TimeoutError(f"Timeout after {3000 + random.randint(0, 40)}ms calling payments-api")
    return {"authorized": round(amount, 2)}
