"""Whether a worker can reach its Kafka cluster, from the outcomes of periodic probes.

Pure bookkeeping: the caller probes the cluster (a metadata request) and reports each outcome
with the time it was observed (monotonic seconds), so the rules are tested without a broker or
waiting. The cluster is **reachable** until a probe fails; it is **unreachable** from the first
failed probe after a successful one (or from the first probe, if none ever succeeded) until a
probe succeeds again. After ``timeout_s`` of uninterrupted unreachability the worker gives up
(:meth:`BrokerReachability.exhausted`): it exits non-zero rather than run on without a broker
that may never come back, and whatever restarts it continues from the last commit.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BrokerReachability:
    timeout_s: float
    #: when the current stretch of failed probes began (``None``: reachable)
    unreachable_since: float | None = None
    #: why the last probe failed
    last_error: str = ""

    def record(self, ok: bool, now: float, error: str = "") -> bool:
        """One probe's outcome at ``now``. Returns whether reachability changed."""
        if ok:
            changed = self.unreachable_since is not None
            self.unreachable_since, self.last_error = None, ""
            return changed
        self.last_error = error
        if self.unreachable_since is None:
            self.unreachable_since = now
            return True
        return False

    @property
    def reachable(self) -> bool:
        return self.unreachable_since is None

    def unreachable_for(self, now: float) -> float:
        """Seconds since the current stretch of failed probes began (0 while reachable)."""
        return 0.0 if self.unreachable_since is None else max(0.0, now - self.unreachable_since)

    def exhausted(self, now: float) -> bool:
        """Whether the cluster has been unreachable for ``timeout_s`` or longer."""
        return self.unreachable_since is not None and self.unreachable_for(now) >= self.timeout_s
