"""What a resumed search does with the trials a kill left RUNNING, on a real SQLite study and
real run folders (no model, no device): a trial nobody claimed, one whose row was saved, one a
live run still holds, one a dead run of this host left."""

from __future__ import annotations

import json

import optuna
from optuna.trial import TrialState
from pocketbench.results.store import RunStore
from pocketbench.tune import study as studies


def _study(tmp_path):
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    return optuna.create_study(storage=url, study_name="s", directions=["maximize", "minimize"])


def _ask(study, folder=None, run_id="r", quantization="int8"):
    study.enqueue_trial({"quantization": quantization})
    trial = study.ask()
    trial.suggest_categorical("quantization", ["none", "int8", "w4"])
    if folder is not None:
        studies.claim(trial, folder, run_id)
    return trial


def _state(study, number):
    return study.get_trials(deepcopy=False)[number]


def test_a_trial_killed_before_it_was_claimed_is_requeued_in_the_runs_own_study(tmp_path):
    study = _study(tmp_path)
    study.ask()  # killed right after asking: not even its choices were made
    assert studies.recover(study, tmp_path, shared=False) == (0, 1)
    killed = _state(study, 0)
    assert killed.state == TrialState.FAIL and killed.user_attrs["killed"] is True
    assert not studies.counted(killed)
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    assert len(waiting) == 1 and waiting[0].user_attrs["requeued_from"] == 0


def test_an_enqueued_trial_killed_before_its_first_choice_is_queued_again_with_its_choices(tmp_path):
    study = _study(tmp_path)
    study.enqueue_trial({"quantization": "w4"})
    study.ask()  # popped from the queue, then killed before suggesting anything
    assert studies.recover(study, tmp_path, shared=False) == (0, 1)
    again = study.ask()
    assert again.suggest_categorical("quantization", ["none", "int8", "w4"]) == "w4"


def test_a_shared_study_waits_for_a_claim_then_takes_the_trial_over(tmp_path):
    study = _study(tmp_path)
    _ask(study)  # asked by a host killed before claiming it
    live = tmp_path / "live"
    live.mkdir()
    held = studies.hold(live)  # a run that is searching now (this process holds its folder)
    try:
        _ask(study, live, "live", "w4")
        assert studies.recover(study, tmp_path / "mine", shared=True, grace_s=0.2) == (0, 1)
    finally:
        held.close()
    assert _state(study, 0).state == TrialState.FAIL
    assert _state(study, 1).state == TrialState.RUNNING  # the live run's, left to it


def test_a_dead_run_of_this_host_is_finished_from_its_saved_row_or_requeued(tmp_path):
    study = _study(tmp_path)
    store = RunStore(tmp_path / "results", "dead")
    store.write_manifest({"command": "tune"}, {})
    saved = _ask(study, store.folder, "dead", "int8")
    unsaved = _ask(study, store.folder, "dead", "w4")
    store.write_cell(
        {
            "model": "m", "variant": "tuned-int8", "device": "local", "status": "ok", "tune_study": "s",
            "tune_trial": saved.number, "tune_phase": "trial", "tune_values": [97.5, 1.25],
            "tune_constraints": json.dumps({"accuracy": -0.5}),
        }
    )  # fmt: skip
    store.release()  # the run died: nobody holds its folder
    assert studies.recover(study, tmp_path / "other", shared=False) == (1, 1)
    done = _state(study, saved.number)
    assert done.state == TrialState.COMPLETE and done.values == [97.5, 1.25]
    assert done.constraints == {"accuracy": -0.5}
    assert _state(study, unsaved.number).state == TrialState.FAIL


def test_a_trial_that_would_outlast_the_time_budget_is_given_back_for_the_resume(tmp_path):
    from pocketbench.tune.search import _give_back, _uses_budget

    study = _study(tmp_path)
    trial = _ask(study, tmp_path, quantization="w4")
    _give_back(study, trial, "out of time: tuned-w4 takes about 9 min")
    ended = _state(study, 0)
    assert ended.state == TrialState.FAIL and ended.user_attrs["killed"].startswith("out of time")
    assert not _uses_budget(ended) and not studies.measured(ended)
    again = study.ask()  # the resumed run (or another host) starts with it
    assert again.suggest_categorical("quantization", ["none", "int8", "w4"]) == "w4"
