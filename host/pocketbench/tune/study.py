"""The Optuna study behind a search: its storage, what it searches, and its trials' bookkeeping.

Objectives: accuracy (points, maximised) and the objective (minimised). Each trial's constraints
(≤ 0: met) are set on it with `Trial.set_constraint`; the sampler models feasibility from them.
The study records what it searches (model, objective, constraints, space, the fp32 reference
accuracy, the device model) so a host joining with anything else is refused with one line.

Trials carry user attributes: `variant`, `recipe` (JSON), `recipe_key`, `device`, their run's
`run_id`, `host` and `folder`, and for the ones that ended without a row of their own,
`duplicate_of` or `killed`.
"""

from __future__ import annotations

import fcntl
import json
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from pocketbench.errors import PocketbenchError
from pocketbench.results.cell_status import CellStatus
from pocketbench.tune.goal import OBJECTIVES, TuneSettings
from pocketbench.tune.space import Space

if TYPE_CHECKING:
    import optuna

DEFAULT_STUDY = "tune"
STUDY_DB = "tune.db"
RUN_LOCK = ".tune.lock"
# How long a trial in a shared study may stay unclaimed before a resuming host takes it over:
# a live worker claims its trial right after asking (sampling included), a killed one never does.
CLAIM_GRACE_S = 60.0
# The PostgreSQL advisory lock (any fixed number) hosts take turns under to create the schema.
SCHEMA_LOCK_KEY = 0x706F636B657462
# What every host joining a study must agree on (study user attributes).
IDENTITY = ("model", "objective", "max_accuracy_drop", "max_size_mb", "max_latency_ms", "space")


def storage_url(settings: TuneSettings, folder: Path) -> str:
    return settings.storage or f"sqlite:///{(folder / STUDY_DB).resolve()}"


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """The RDB storage at `url`; an unreachable server or missing driver is one line."""
    import optuna

    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 60}  # workers of one host write in turn
    if url.startswith("postgresql://"):  # the driver pocketbench[postgres] installs, whatever SQLAlchemy's default
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        with _schema_turn(url):
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    except ImportError as exc:
        raise PocketbenchError(
            f"storage {safe_url(url)}: its database driver is not installed"
            " (PostgreSQL: pip install 'pocketbench[postgres]')"
        ) from exc
    except Exception as exc:  # SQLAlchemy's OperationalError and friends: the server said no
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PocketbenchError(f"storage {safe_url(url)}: cannot open it ({first})") from exc


@contextmanager
def _schema_turn(url: str) -> Iterator[None]:
    """Hosts starting together on an empty PostgreSQL database would each create Optuna's tables,
    and all but one fail on a duplicate key: they take turns under an advisory lock (held by a
    session, so a killed host's turn ends with its connection)."""
    if not url.startswith("postgresql"):
        yield
        return
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})
    finally:
        engine.dispose()


def safe_url(url: str) -> str:
    """The URL without its password."""
    head, sep, tail = url.partition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, credentials = head.partition("://")
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{tail}"


def constraints(trial: optuna.trial.FrozenTrial) -> list[float]:
    """A trial's constraint values (≤ 0 met); a trial without them is infeasible."""
    return list(trial.constraints.values()) or [1.0]


def sampler(seed: int) -> optuna.samplers.BaseSampler:
    """Multi-objective TPE: it also models feasibility from each trial's constraints
    (`Trial.set_constraint`), and needs few trials."""
    import optuna

    return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)


def open_study(storage: optuna.storages.RDBStorage, name: str, seed: int, identity: dict[str, Any]) -> optuna.Study:
    """Create the study or join it; a study that searches something else is refused."""
    import optuna

    directions: list[Literal["minimize", "maximize"]] = ["maximize", "minimize"]
    study = optuna.create_study(
        storage=storage, study_name=name, directions=directions, sampler=sampler(seed), load_if_exists=True
    )
    recorded = study.user_attrs
    if not recorded:
        for key, value in identity.items():
            study.set_user_attr(key, value)
        return study
    differs = [k for k in IDENTITY if k in identity and _canon(recorded.get(k)) != _canon(identity[k])]
    if differs:
        said = "; ".join(f"{k}: study {recorded.get(k)!r}, here {identity[k]!r}" for k in differs)
        raise PocketbenchError(f"study {name!r} searches something else ({said}): use another --study")
    return study


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def identity(model: str, settings: TuneSettings, space: Space) -> dict[str, Any]:
    return {
        "model": model,
        "objective": settings.objective,
        "max_accuracy_drop": settings.max_accuracy_drop,
        "max_size_mb": settings.max_size_mb,
        "max_latency_ms": settings.max_latency_ms,
        "space": {k: list(v) for k, v in space.choices.items()},
    }


def agree(study: optuna.Study, key: str, value: Any, what: str, fix: str) -> Any:
    """Record `value` under `key` the first time; later it must be the same (else one line)."""
    recorded = study.user_attrs.get(key)
    if recorded is None:
        study.set_user_attr(key, value)
        return value
    if _canon(recorded) != _canon(value):
        raise PocketbenchError(f"study {study.study_name!r}: {what} is {recorded!r} there but {value!r} here; {fix}")
    return recorded


def counted(trial: optuna.trial.FrozenTrial) -> bool:
    """A trial that uses the budget: every one except those a kill interrupted (they run again)."""
    return "killed" not in trial.user_attrs


def measured(trial: optuna.trial.FrozenTrial) -> bool:
    """A trial that has its own row in some run's results (not a duplicate, not killed)."""
    from optuna.trial import TrialState

    return trial.state != TrialState.RUNNING and counted(trial) and "duplicate_of" not in trial.user_attrs


def hold(folder: Path) -> IO[str]:
    """Claim the run folder for this process while it searches (released when the process ends,
    however it ends): a second process on the same run is refused, and a later run can tell a
    dead run's trials from a live one's."""
    handle = (folder / RUN_LOCK).open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise PocketbenchError(f"run {folder.name} is being searched by another process: wait for it to end") from None
    return handle


def _abandoned(folder: Path) -> bool:
    """Whether no live process holds this run folder (a run of this host that was killed)."""
    if not folder.is_dir():
        return True
    with (folder / RUN_LOCK).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def owner(folder: Path, run_id: str) -> dict[str, str]:
    """The user attributes that say which run (and host) a trial belongs to."""
    return {"run_id": run_id, "host": platform.node(), "folder": str(folder.resolve())}


def claim(trial: optuna.Trial, folder: Path, run_id: str) -> None:
    """Mark an asked trial as this run's, first thing after `ask` (the folder last: its presence
    says the claim is complete). A kill before it leaves a trial nobody claimed (see `recover`)."""
    for name, value in owner(folder, run_id).items():
        trial.set_user_attr(name, value)


def private(url: str, folder: Path) -> bool:
    """Whether `url` is this run folder's own study file: only the process holding the run writes it."""
    return url == f"sqlite:///{(folder / STUDY_DB).resolve()}"


def recover(study: optuna.Study, folder: Path, shared: bool, grace_s: float = CLAIM_GRACE_S) -> tuple[int, int]:
    """After a kill: trials left RUNNING by this run, or by a run of this host that no process
    holds any more, are finished from their saved row when it was written (the kill came between
    the row and telling the study), else failed as `killed` (not counted) and their recipe queued
    again. Another host's running trials are that host's to resume.

    A trial nobody claimed was asked by a process killed before it could say whose it is: in a
    run's own study file that can only be this run's; in a `shared` storage it is abandoned once
    it stays unclaimed for `grace_s` (a live worker claims its trial moments after asking).
    Returns (finished, queued)."""
    import optuna
    from optuna.trial import TrialState

    from pocketbench.results.store import read_cells

    mine = str(folder.resolve())
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    unclaimed = {t.number for t in running if "folder" not in t.user_attrs}
    if unclaimed and shared:
        unclaimed = _still_unclaimed(study, unclaimed, grace_s)
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    rows: dict[str, dict[int, Any]] = {}
    finished = queued = 0
    for trial in running:
        theirs = str(trial.user_attrs.get("folder", ""))
        if trial.number in unclaimed:
            theirs = mine  # nobody's: this run takes over its recipe
        elif theirs != mine and not (trial.user_attrs.get("host") == platform.node() and _abandoned(Path(theirs))):
            continue
        if theirs not in rows:
            rows[theirs] = _saved_rows(read_cells(Path(theirs)) if Path(theirs).is_dir() else None, study.study_name)
        row = rows[theirs].get(trial.number)
        if row is not None:
            outcome = row_outcome(row)
            live = optuna.trial.Trial(study, trial._trial_id)
            for name, value in json.loads(row.get("tune_constraints") or "{}").items():
                live.set_constraint(name, value)
            study.tell(trial.number, outcome.values, state=outcome.state)
            finished += 1
            continue
        optuna.trial.Trial(study, trial._trial_id).set_user_attr("killed", True)
        study.tell(trial.number, state=TrialState.FAIL)
        # An enqueued trial killed before its first suggestion has its choices only as fixed params.
        params = trial.params or trial.system_attrs.get("fixed_params") or {}
        study.enqueue_trial(params, user_attrs={"requeued_from": trial.number}, skip_if_exists=False)
        queued += 1
    return finished, queued


def _still_unclaimed(study: optuna.Study, numbers: set[int], grace_s: float) -> set[int]:
    """Those of `numbers` still RUNNING and unclaimed after `grace_s` (sooner when all are claimed)."""
    from optuna.trial import TrialState

    give_up = time.monotonic() + grace_s
    while True:
        left = {
            t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if t.number in numbers and "folder" not in t.user_attrs
        }  # fmt: skip
        if not left or time.monotonic() >= give_up:
            return left
        time.sleep(min(1.0, grace_s))


def _saved_rows(frame: Any, study: str) -> dict[int, Any]:
    if frame is None or not len(frame) or "tune_trial" not in frame:
        return {}
    trials = frame[(frame["tune_study"] == study) & (frame["tune_phase"] == "trial")]
    return {int(row["tune_trial"]): row for _, row in trials.iterrows()}


class Outcome:
    """How a trial's row ends it in the study: its state and values."""

    def __init__(self, state: Any, values: list[float] | None) -> None:
        self.state, self.values = state, values


def row_outcome(row: Any) -> Outcome:
    from optuna.trial import TrialState

    if row.get("status") == CellStatus.PRUNED:
        return Outcome(TrialState.PRUNED, None)
    values = row.get("tune_values")
    if row.get("status") != CellStatus.OK or values is None or len(values) != 2:
        return Outcome(TrialState.FAIL, None)
    return Outcome(TrialState.COMPLETE, [float(v) for v in values])


def feasible(trial: optuna.trial.FrozenTrial) -> bool:
    return all(c <= 0 for c in constraints(trial))


def front(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The feasible, non-dominated completed trials (one per recipe), best accuracy first."""
    from optuna.trial import TrialState

    from pocketbench.results.pareto import pareto_front

    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if feasible(t) and "duplicate_of" not in t.user_attrs and t.values is not None
    ]
    unique = list({t.user_attrs.get("recipe_key"): t for t in sorted(done, key=lambda t: -t.number)}.values())
    marks = pareto_front([(t.values[1], t.values[0]) for t in unique])
    members = [t for t, on in zip(unique, marks, strict=True) if on]
    return sorted(members, key=lambda t: (-t.values[0], t.values[1]))


def best_feasible(study: optuna.Study) -> str:
    """One line on the best feasible trial so far (by the objective), for the progress bar."""
    members = front(study)
    if not members:
        return "no feasible trial yet"
    objective = study.user_attrs.get("objective", "latency")
    _, unit, _ = OBJECTIVES[objective]
    best = min(members, key=lambda t: t.values[1])
    return f"best feasible: {best.user_attrs.get('variant')} {best.values[0]:.1f}% {best.values[1]:.4g} {unit}"
