"""The metrics cost part of the benchmark (loadtest/bench/metrics_cost.py): the
series it reads, the environments it starts servers with, the figure it reports."""

from __future__ import annotations

from prometheus_client import generate_latest

from loadtest.bench.campaign import SECRET
from loadtest.bench.metrics_cost import (
    CostRun,
    MetricsCost,
    accepted_votes,
    server_env,
)
from loadtest.bench.processes import LOOPBACK
from loadtest.bench.report import metrics_cost_rows
from votesvc.metrics import Metrics, VoteStats
from votesvc.settings import Settings

US = 1e-6


def test_the_bench_reads_the_accepted_votes_the_service_exports() -> None:
    stats, metrics = VoteStats(), Metrics()
    assert accepted_votes(generate_latest(metrics.registry).decode()) is None  # no vote yet
    for _ in range(3):
        stats.record("accepted", 0.002)
    stats.record("already_voted", 0.002)
    stats.push(metrics)
    assert accepted_votes(generate_latest(metrics.registry).decode()) == 3


def test_off_runs_have_no_metrics_and_on_runs_serve_them_on_loopback() -> None:
    bench = {"VOTESVC_SECRET": SECRET, "PATH": "/bin"}  # a secret given: no file is written
    shell = {**bench, "VOTESVC_METRICS_PORT": "9100", "VOTESVC_METRICS_HOST": "0.0.0.0"}
    off = server_env(shell, None)
    assert off == bench
    assert Settings.from_env(off).metrics_port is None
    on = Settings.from_env(server_env(shell, 19100))
    assert (on.metrics_host, on.metrics_port) == (LOOPBACK, 19100)


def cost_of(off_us: list[float], on_us: list[float], counted: int | None = 1000) -> MetricsCost:
    cost = MetricsCost(connections=50)
    for off, on in zip(off_us, on_us, strict=True):
        cost.pairs.append(
            (
                CostRun(False, rate=5000, cpu_per_vote=off * US, seen=1000),
                CostRun(True, rate=5000, cpu_per_vote=on * US, seen=1000, counted=counted),
            )
        )
    return cost


def met(cost: MetricsCost) -> dict[str, str]:
    return {name: verdict for name, _, _, verdict in metrics_cost_rows(cost) if verdict}


def test_the_figure_is_the_median_of_the_pairs_differences() -> None:
    cost = cost_of([60, 62, 61], [61, 70, 63])
    assert [round(d / US, 6) for d in cost.differences] == [1, 8, 2]
    assert round(cost.median / US, 6) == 2
    assert "**no**" not in met(cost).values()
    over = cost_of([60, 62, 61], [64, 70, 63])  # median 4 µs
    assert [v for k, v in met(over).items() if k.startswith("metrics cost")] == ["**no**"]


def test_a_scrape_that_missed_votes_or_got_no_answer_is_flagged() -> None:
    for counted in (None, 999, 1000 + 2 * 50 + 1):  # no answer, fewer than seen, too many
        verdicts = met(cost_of([60], [61], counted))
        assert [v for k, v in verdicts.items() if "votesvc_votes_total" in k] == ["**no**"]
    verdicts = met(cost_of([60], [61], 1000 + 2 * 50))  # every 201, and every reply cut off
    assert [v for k, v in verdicts.items() if "votesvc_votes_total" in k] == ["yes"]


def test_a_balanced_pairs_side_is_the_mean_of_its_runs() -> None:
    first = CostRun(True, rate=5000, cpu_per_vote=60 * US, seen=1000, counted=1010, errors=1)
    second = CostRun(True, rate=4000, cpu_per_vote=70 * US, seen=900, counted=950)
    on = CostRun.merged([first, second])
    assert (on.metrics, on.rate, round(on.cpu_per_vote / US, 6)) == (True, 4500, 65)
    assert (on.seen, on.counted, on.errors, on.runs) == (1900, 1960, 1, 2)
    off = CostRun.merged(
        [CostRun(False, cpu_per_vote=61 * US), CostRun(False, cpu_per_vote=63 * US)]
    )
    cost = MetricsCost(connections=50, pairs=[(off, on)])
    assert [round(d / US, 6) for d in cost.differences] == [3]
    # a merged side may miss up to one cut-off reply per connection per run
    assert cost.scrapes_agree  # 60 over, within 2 x 50 x 2
    lost = CostRun.merged([first, CostRun(True, seen=900, counted=None)])
    assert lost.counted is None
    assert not MetricsCost(connections=50, pairs=[(off, lost)]).scrapes_agree
