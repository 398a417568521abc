"""The autoscaler's rule, worked by hand: desired = ceil(current × usage / target)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hosting.metering.autoscale import decide
from hosting.spec.models import Autoscale

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
BOUNDS = Autoscale(min=1, max=4, cpu_target=70, cooldown_s=300)


def test_scales_up_in_proportion_to_the_load() -> None:
    # 2 replicas on a 0.5-CPU plan using 90 % of one core together: 45 % of a core each,
    # 90 % of the plan per replica; 2 × 90 / 70 = 2.57 → 3
    d = decide(
        bounds=BOUNDS, current=2, plan_cpus=0.5, cpu_samples=[80, 100], last_event=None, now=NOW
    )
    assert d is not None
    assert (d.replicas, d.cpu_percent) == (3, 90.0)
    assert "above the target 70 %" in d.reason


def test_never_past_max_and_never_below_min() -> None:
    # 1 replica of 1 CPU at 100 %: 1 × 100 / 70 = 1.43 → 2; at 400 % (impossible) it stops at 4
    up = decide(
        bounds=BOUNDS, current=3, plan_cpus=1, cpu_samples=[300, 300], last_event=None, now=NOW
    )
    assert up is not None and up.replicas == 4  # 3 × 100 / 70 = 4.29 → 5, capped at max
    idle = decide(
        bounds=BOUNDS, current=3, plan_cpus=1, cpu_samples=[0, 0], last_event=None, now=NOW
    )
    assert idle is not None and idle.replicas == 1
    assert "below the target" in idle.reason


def test_within_ten_percent_of_the_target_nothing_changes() -> None:
    # 2 replicas × 1 CPU, 150 % of a core: 75 % each, 75 / 70 = 1.071 → within tolerance
    assert (
        decide(
            bounds=BOUNDS, current=2, plan_cpus=1, cpu_samples=[150, 150], last_event=None, now=NOW
        )
        is None
    )
    # 160 %: 80 % each, 80 / 70 = 1.143 → past it: 2 × 1.143 = 2.29 → 3
    d = decide(
        bounds=BOUNDS, current=2, plan_cpus=1, cpu_samples=[160, 160], last_event=None, now=NOW
    )
    assert d is not None and d.replicas == 3


def test_cooldown_holds_a_change_until_it_has_passed() -> None:
    args = dict(bounds=BOUNDS, current=1, plan_cpus=1, cpu_samples=[100, 100])
    assert decide(**args, last_event=NOW - timedelta(seconds=299), now=NOW) is None  # type: ignore[arg-type]
    d = decide(**args, last_event=NOW - timedelta(seconds=300), now=NOW)  # type: ignore[arg-type]
    assert d is not None and d.replicas == 2


def test_one_sample_is_not_enough() -> None:
    assert (
        decide(bounds=BOUNDS, current=1, plan_cpus=1, cpu_samples=[100], last_event=None, now=NOW)
        is None
    )


def test_bounds_changed_in_the_file_are_followed_at_once() -> None:
    recent = NOW - timedelta(seconds=10)  # within the cooldown
    d = decide(bounds=BOUNDS, current=6, plan_cpus=1, cpu_samples=[], last_event=recent, now=NOW)
    assert d is not None and (d.replicas, d.cpu_percent) == (4, None)
    d = decide(
        bounds=Autoscale(min=2, max=4),
        current=1,
        plan_cpus=1,
        cpu_samples=[],
        last_event=recent,
        now=NOW,
    )
    assert d is not None and d.replicas == 2
