"""The stratum server's own part of a config reload: plan_reload checks a new [stratum] and changes
nothing (ConfigError names the key), apply_reload puts the plan in force in the running section."""

from __future__ import annotations

import msgspec
import pytest

from pool.config import ConfigError
from pool.config.stratum import LimitsConfig
from pool.stratum.server import StratumServer
from tests.stratum.support import TestJobSource, config


def server() -> StratumServer:
    return StratumServer(config(difficulty=1e-6, min_difficulty=1e-7), TestJobSource(), on_share=lambda share: None,
                         validate_account=lambda account: True, node="test-node")


def test_a_plan_changes_nothing_until_it_is_applied() -> None:
    pool = server()
    running, port = pool.config, pool.config.ports[0]
    new = config(difficulty=4e-6, min_difficulty=2e-7, limits=LimitsConfig(max_connections_per_ip=3),
                 notify_interval=20.0, port={"host": "0.0.0.0"})
    plan = pool.plan_reload(new)
    assert plan.applied == ("stratum.limits.max_connections_per_ip", "stratum.ports[0].start_difficulty",
                            "stratum.ports[0].min_difficulty")
    assert plan.requires_restart == ("stratum.ports[0].host", "stratum.notify_interval")
    assert pool.config.limits.max_connections_per_ip != 3 and port.start_difficulty == 1e-6

    assert pool.apply_reload(plan) == list(plan.applied)
    assert pool.config is running and pool.config.ports[0] is port        # changed in place: sessions read it
    assert pool.config.limits.max_connections_per_ip == 3
    assert (port.start_difficulty, port.min_difficulty) == (4e-6, 2e-7)
    assert port.host == "127.0.0.1" and pool.config.notify_interval == running.notify_interval


def test_a_port_count_change_needs_a_restart() -> None:
    pool = server()
    new = config()
    new.ports.append(msgspec.structs.replace(new.ports[0], port=3334))
    plan = pool.plan_reload(new)
    assert plan.applied == () and plan.requires_restart == ("stratum.ports",)


def test_difficulties_that_do_not_fit_are_refused_with_the_key() -> None:
    pool = server()
    new = config(difficulty=1e-6, min_difficulty=1e-7)
    new.ports[0].min_difficulty = 1e-5            # built in code, past the section's own validate
    with pytest.raises(ConfigError) as info:
        pool.plan_reload(new)
    assert info.value.key == "stratum.ports[0].start_difficulty"
    assert pool.config.ports[0].min_difficulty == 1e-7
