"""Process-wide extension state: config, one-shot failures, throttles, call
counters, per-stack timelines and other delayed work. Everything is guarded by
LOCK, which the WSGI wrapper holds for the whole handling of every request."""
from __future__ import annotations

import copy
import heapq
import itertools
import threading
import time
from collections import Counter
from typing import Any, Callable

LOCK = threading.RLock()

DEFAULT_CONFIG: dict[str, Any] = {
    "stack_delay_seconds": 2.0,
    "stack_delays": {},
    "endpoint_address": None,
    "endpoint_port": None,
    "snapshot_delay_seconds": 1.0,
    "failover_delay_seconds": 1.0,
    "modify_delay_seconds": 1.0,
    "constraint_descriptions": True,
    # how long a change set stays CREATE_PENDING/CREATE_IN_PROGRESS, and a drift detection
    # DETECTION_IN_PROGRESS (cfn_more.py)
    "change_set_delay_seconds": 0.5,
    "drift_delay_seconds": 0.5,
    # replication group id -> the redis-server standing in for it (see redis_acl.py)
    "redis_bindings": {},
    # role ARN -> {"external_id": str | None}: the roles that may be assumed (see sts.py); empty: any
    "assumable_roles": {},
}

# Values given on the command line become the defaults that /_oms/reset restores.
STARTUP_CONFIG: dict[str, Any] = copy.deepcopy(DEFAULT_CONFIG)
CONFIG: dict[str, Any] = copy.deepcopy(DEFAULT_CONFIG)

FAILS: dict[tuple[str, str], dict[str, str]] = {}  # (stack_name, operation) -> spec
THROTTLES: dict[str, int] = {}  # action -> remaining count
STORMS: dict[str, float] = {}  # access key id -> time.monotonic() until which every request is throttled
# action@stack -> {"count": replies left to hold, "seconds": how long}: the call is carried out, its reply held back
HOLDS: dict[str, dict[str, float]] = {}
CALLS: Counter = Counter()  # "service:Action" -> n
CALLS_BY_NAME: dict[str, Counter] = {}  # StackName/ReplicationGroupId/TableName -> Counter
CALLS_BY_KEY: dict[str, Counter] = {}  # access key id -> Counter
CALLS_BY_ACCOUNT: dict[str, Counter] = {}  # account id the request acts in -> Counter

# stack_id -> StackState (defined in cfn.py)
STACKS: dict[str, Any] = {}

# ElastiCache events (DescribeEvents), oldest first: {"account", "region", "SourceIdentifier",
# "SourceType", "Message", "Date" (epoch seconds)}
EVENTS: list[dict[str, Any]] = []

# StackDriftDetectionId -> detection (cfn_more.py)
DRIFT_DETECTIONS: dict[str, dict[str, Any]] = {}

_seq = itertools.count()
_pending: list[tuple[float, int, Callable[[float], None]]] = []


def now() -> float:
    return time.time()


def stack_delay(stack_name: str) -> float:
    delays = CONFIG.get("stack_delays") or {}
    if stack_name in delays:
        return max(0.0, float(delays[stack_name]))
    return max(0.0, float(CONFIG["stack_delay_seconds"]))


def schedule(due: float, fn: Callable[[float], None]) -> None:
    """Run fn(due) at the first request handled at or after `due`."""
    heapq.heappush(_pending, (due, next(_seq), fn))


def advance(at: float | None = None) -> None:
    """Run every scheduled item that is due, in due order (items may schedule
    more items, possibly already due)."""
    t = now() if at is None else at
    while _pending and _pending[0][0] <= t:
        due, _, fn = heapq.heappop(_pending)
        fn(due)


def reset_all() -> None:
    CONFIG.clear()
    CONFIG.update(copy.deepcopy(STARTUP_CONFIG))
    FAILS.clear()
    THROTTLES.clear()
    STORMS.clear()
    HOLDS.clear()
    CALLS.clear()
    CALLS_BY_NAME.clear()
    CALLS_BY_KEY.clear()
    CALLS_BY_ACCOUNT.clear()
    STACKS.clear()
    EVENTS.clear()
    DRIFT_DETECTIONS.clear()
    _pending.clear()
