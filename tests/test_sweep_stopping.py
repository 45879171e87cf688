"""The sweep's early stopper, replayed on recorded histories: pure, no training."""

from __future__ import annotations

import optuna
import pytest

from gansweep.health import OVERPOWER_PATIENCE
from gansweep.rundir import StopKind, StopReason
from gansweep.sweep.stopping import MEDIAN_STARTUP, HealthWatch, TrialStopper, budget_percent
from gansweep.member import StopTraining
from stop_fixtures import COLLAPSED_RING, REAL_COLLAPSE_RING, RECOVERING_DIGITS, train_row


def replay(watch: HealthWatch, evals: list[dict]) -> list:
    return [watch.evaluate(row["step"], row) for row in evals]


def test_a_recovering_digit_run_is_never_stopped() -> None:
    assert replay(HealthWatch("fid", probabilities=True), RECOVERING_DIGITS) == [None] * 4


def test_one_class_of_noise_is_not_collapse_even_when_the_objective_stalls() -> None:
    # Precision 0: the samples are not digits yet, so one class is the classifier's reading of noise.
    stalled = [{**row, "fid": 486.0} for row in RECOVERING_DIGITS[:2]]
    assert replay(HealthWatch("fid", probabilities=True), stalled) == [None, None]


def test_a_real_collapse_is_stopped_at_its_second_evaluation() -> None:
    first, second = replay(HealthWatch("mixture_tv", probabilities=True), COLLAPSED_RING)
    assert first is None  # one evaluation is never enough
    assert second == StopReason(StopKind.mode_collapse, 1000, "mode collapse (modes covered 1/8, 95% high quality)")
    assert second.kind.status.value == "collapsed"


def test_a_recorded_collapse_is_stopped_once_its_samples_are_realistic() -> None:
    # One mode from step 1000 on, but under half high quality until step 2500: "spread", not yet collapse.
    stops = replay(HealthWatch("mixture_tv", probabilities=True), REAL_COLLAPSE_RING)
    first = next(i for i, stop in enumerate(stops) if stop is not None)
    assert REAL_COLLAPSE_RING[first]["step"] == 2500
    assert stops[first] == StopReason(StopKind.mode_collapse, 2500, "mode collapse (modes covered 1/8, 61% high quality)")


def test_a_collapsed_run_whose_objective_improves_goes_on() -> None:
    improving = [COLLAPSED_RING[0], {**COLLAPSED_RING[1], "mixture_tv": 0.80}]
    assert replay(HealthWatch("mixture_tv", probabilities=True), improving) == [None, None]


def test_the_base_trial_is_never_stopped_as_collapsed() -> None:
    base = HealthWatch("mixture_tv", probabilities=True, base_config=True)
    assert replay(base, COLLAPSED_RING * 3) == [None] * 6


def test_overpowering_stops_after_patience_lines_in_a_row() -> None:
    watch = HealthWatch("fid", probabilities=True)
    certain = [train_row(10 * i, 0.995, 0.005, 0.5) for i in range(1, OVERPOWER_PATIENCE + 1)]
    assert [watch.log(r) for r in certain[:-1]] == [None] * (OVERPOWER_PATIENCE - 1)
    reason = watch.log(certain[-1])
    assert reason is not None and (reason.kind, reason.step) == (StopKind.d_overpowering, 10 * OVERPOWER_PATIENCE)
    assert reason.detail == f"D(x)=0.995, D(G(z))=0.005, |grad G|=0.5 for {OVERPOWER_PATIENCE} log lines"


def test_one_contested_line_restarts_the_overpowering_count() -> None:
    watch = HealthWatch("fid", probabilities=True)
    rows = [train_row(i, 0.995, 0.005, 0.5) for i in range(OVERPOWER_PATIENCE - 1)]
    rows += [train_row(100, 0.7, 0.3, 0.5)] + [train_row(200 + i, 0.995, 0.005, 0.5) for i in range(OVERPOWER_PATIENCE - 1)]
    assert all(watch.log(r) is None for r in rows)


def test_critic_scores_are_not_judged_but_a_vanished_generator_gradient_is() -> None:
    critic = HealthWatch("fid", probabilities=False)
    assert all(critic.log(train_row(i, 0.999, 0.001, 0.5)) is None for i in range(2 * OVERPOWER_PATIENCE))
    vanished = [critic.log(train_row(i, 5.0, -5.0, 1e-7)) for i in range(OVERPOWER_PATIENCE)]
    assert vanished[-1] is not None and vanished[-1].kind is StopKind.d_overpowering


def test_the_stopper_raises_the_health_reason_but_never_at_the_last_evaluation() -> None:
    study = optuna.create_study()
    stopper = TrialStopper(study.ask(), study, ["mixture_tv"], HealthWatch("mixture_tv", True), prune=False)
    stopper.on_eval(500, 1000, COLLAPSED_RING[0])
    stopper.on_eval(1000, 1000, COLLAPSED_RING[1])  # the run is over: nothing to save
    with pytest.raises(StopTraining, match="mode collapse at step 900"):
        stopper.on_eval(900, 2000, COLLAPSED_RING[1])


def test_several_objectives_prune_below_the_median_of_finished_trials() -> None:
    study = optuna.create_study(directions=["minimize", "maximize"])
    for i in range(MEDIAN_STARTUP):
        study.add_trial(optuna.trial.create_trial(values=[0.2, 0.9], user_attrs={"progress_50": 0.2 + 0.01 * i}))
    stopper = TrialStopper(study.ask(), study, ["mixture_tv", "hq_fraction"], None, prune=True)
    stopper.on_eval(500, 1000, {"mixture_tv": 0.21})  # better than the median 0.22: goes on
    with pytest.raises(StopTraining) as stopped:
        stopper.on_eval(500, 1000, {"mixture_tv": 0.9})
    assert stopped.value.reason == StopReason(
        StopKind.pruned, 500, f"50% of the budget, mixture_tv=0.900 worse than the median 0.220 of {MEDIAN_STARTUP} finished trials"
    )


def test_budget_percent_snaps_to_the_evaluation_grid() -> None:
    assert [budget_percent(s, 1563, 4) for s in (391, 782, 1172)] == [25, 50, 75]
