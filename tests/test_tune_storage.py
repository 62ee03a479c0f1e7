"""Hosts joining one study through a real PostgreSQL server the test starts (Debian's binaries):
several opening an empty database at once all get Optuna's schema, and one study."""

from __future__ import annotations

import threading

import pytest
from pocketbench.tune import study as studies

from tests.tune_support import postgres_server

pytestmark = pytest.mark.slow  # a database server per test


def test_hosts_opening_an_empty_postgresql_database_together_all_join_one_study():
    with postgres_server() as url:
        errors: list[BaseException] = []
        names: list[str] = []
        start = threading.Barrier(4)

        def host() -> None:
            try:
                start.wait()
                storage = studies.open_storage(url)
                study = studies.open_study(storage, "shared", 0, {"model": "digits_cnn"})
                names.append(study.study_name)
            except BaseException as exc:  # reported below, whatever it is
                errors.append(exc)

        hosts = [threading.Thread(target=host) for _ in range(4)]
        for thread in hosts:
            thread.start()
        for thread in hosts:
            thread.join(120)
        assert not errors, errors
        assert names == ["shared"] * 4
        assert len(studies.open_storage(url).get_all_studies()) == 1
