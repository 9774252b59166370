"""Configs: every shipped example loads; bad values name the key; environment overrides apply."""

from __future__ import annotations

from pathlib import Path

import pytest

from pool import config
from pool.cli import main

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.toml"))


def test_examples_exist_for_every_network() -> None:
    assert {p.stem for p in CONFIGS} >= {"devnet", "mainnet", "testnet4", "signet", "regtest"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_is_valid(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(path)]) == 0
    assert capsys.readouterr().out.strip() == f"{path}: ok"


@pytest.mark.parametrize(
    ("toml", "key", "reason"),
    [
        ('[stratum]\nextranonce2_size = 12\n', "stratum.extranonce2_size", "must be 4..8"),
        ('[[stratum.ports]]\nport = "x"\n', "stratum.ports[0].port", "Expected `int`"),
        ('[stratum]\nbogus = 1\n', "stratum.bogus", "unknown key"),
        ('[chain]\nnetwork = "mainnet"\nmode = "pool"\n', "chain.pool_address", "required in pool mode"),
        ('[chain]\nnetwork = "moonnet"\n', "chain.network", "must be one of"),
        ('[pool]\nnode_id = 300\n', "pool.node_id", "must be 0..255"),
        ('[admin]\nport = 70000\n', "admin.port", ""),
        ('[ledger]\nbucket_units = 0\n', "ledger.bucket_units", "must be 1..1e12"),
        # A closed set of values is a Literal: the values and what was found, from one translator.
        ('[redis]\nmode = "ring"\n', "redis.mode", "must be one of single, sentinel, cluster, got 'ring'"),
        ('[payouts]\nscheme = "prop"\n', "payouts.scheme", "must be one of pplns, pps, fpps, solo, got 'prop'"),
        ('[admin]\nanonymous = ["health", "wallets"]\n', "admin.anonymous[1]",
         "must be one of dashboard, health, metrics, miner, got 'wallets'"),
        ('[alerts]\nhashrate_drop_long_window = "2d"\n', "alerts.hashrate_drop_long_window",
         "must be one of 1m, 5m, 15m, 1h, 6h, 24h, got '2d'"),
        ('[[alerts.targets]]\nname = "a"\nurl = "http://x"\nevents = ["block_found", "tea"]\n',
         "alerts.targets[0].events[1]", "must be one of worker_offline, "),
        # [alerts] ranges are Meta constraints like every other section's.
        ('[alerts]\ncheck_interval_seconds = 0\n', "alerts.check_interval_seconds", "must be > 0 and finite, got 0"),
        ('[alerts]\nhashrate_drop_percent = 100\n', "alerts.hashrate_drop_percent", "must be in (0, 100), got 100"),
        ('[[alerts.targets]]\nname = "a"\nurl = "http://x"\nqueue_size = 0\n', "alerts.targets[0].queue_size",
         "must be > 0, got 0"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, key: str,
                                 reason: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(config.ConfigError) as caught:
        config.load(path, environ={})
    assert caught.value.key == key
    assert reason in caught.value.reason
    assert main(["check-config", str(path)]) == 1
    assert key in capsys.readouterr().err


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[stratum\n")
    with pytest.raises(config.ConfigError, match="not valid TOML"):
        config.load(path, environ={})
    with pytest.raises(config.ConfigError, match="not found"):
        config.load(tmp_path / "nope.toml", environ={})


def test_environment_overrides_parse_toml_values() -> None:
    loaded = config.load(None, environ={
        "GEOSTRATUM__ADMIN__PORT": "9090",
        "GEOSTRATUM__STRATUM__TRUSTED_PROXIES": '["10.0.0.0/8"]',
        "GEOSTRATUM__REDIS__URL": "redis://10.1.2.3:6379/0",
        "UNRELATED": "1",
    })
    assert loaded.admin.port == 9090
    assert loaded.stratum.trusted_proxies == ["10.0.0.0/8"]
    assert loaded.redis.url == "redis://10.1.2.3:6379/0"


def test_environment_override_with_a_bad_value_names_the_key() -> None:
    with pytest.raises(config.ConfigError) as caught:
        config.load(None, environ={"GEOSTRATUM__STRATUM__EXTRANONCE2_SIZE": "2"})
    assert caught.value.key == "stratum.extranonce2_size"


def test_json_overrides_are_structured_and_per_key_variables_win() -> None:
    loaded = config.load(None, environ={
        config.OVERRIDES_ENV: '{"admin": {"port": 9091, "enabled": false}, "stratum": {"reuse_port": true}}',
        "GEOSTRATUM__ADMIN__PORT": "9092",
    })
    assert loaded.admin.port == 9092 and loaded.admin.enabled is False and loaded.stratum.reuse_port is True
    for raw, reason in (("{not json", "not valid JSON"), ("[1, 2]", "must be a JSON object")):
        with pytest.raises(config.ConfigError, match=reason):
            config.load(None, environ={config.OVERRIDES_ENV: raw})
    with pytest.raises(config.ConfigError) as caught:
        config.load(None, environ={config.OVERRIDES_ENV: '{"admin": {"port": "x"}}'})
    assert caught.value.key == "admin.port"


@pytest.mark.parametrize("password", ['pa"ss', "back\\slash", "new\nline", "'; x = 1", "ünï\u2603"])
def test_worker_processes_get_the_devnet_password_exactly(password: str) -> None:
    from pool.config.chain import NodeConfig
    from pool.runner import WORKER_INDEX_ENV, _worker_env

    node = NodeConfig(url="http://127.0.0.1:18443", user="pool", password=password, name="devnet")
    for index in (0, 1):
        env = _worker_env(config.load(None, environ={}), index, node)
        assert env[WORKER_INDEX_ENV] == str(index)
        worker = config.load(None, environ=env)
        assert worker.chain.backend == "bitcoind"
        assert [(n.url, n.user, n.password) for n in worker.chain.nodes] == [(node.url, "pool", password)]
        assert worker.stratum.reuse_port is True
        assert worker.admin.enabled is (index == 0)


@pytest.mark.parametrize(
    ("toml", "key", "reason"),
    [
        ('[[stratum.ports]]\nport = 3333\n[[stratum.ports]]\nport = 70000\n', "stratum.ports[1].port",
         "must be 0..65535, got 70000"),
        ('[stratum.limits]\nban_invalid_ratio = 1.5\n', "stratum.limits.ban_invalid_ratio",
         "must be in (0, 1], got 1.5"),
        ('[stratum.limits]\nmax_line_bytes = 100\n', "stratum.limits.max_line_bytes", "must be >= 512, got 100"),
        ('[stratum.limits]\nmax_json_depth = 1000\n', "stratum.limits.max_json_depth", "must be 1..512, got 1000"),
        ('[stratum.limits]\nsubmit_burst = "lots"\n', "stratum.limits.submit_burst", "Expected `float`, got `str`"),
        ('[stratum]\nresume_lookup_timeout = 11\n', "stratum.resume_lookup_timeout", "must be in (0, 10], got 11"),
        ('[ledger]\nshards = 2048\n', "ledger.shards", "must be 1..1024, got 2048"),
        ('[payouts]\nfee_percent = 100\n', "payouts.fee_percent", "must be in [0, 100), got 100"),
        ('[geo]\nhosting_asns = [13335, 0]\n', "geo.hosting_asns[1]", "must be in (0, 4294967296), got 0"),
        ('[chain.devnet]\nrpc_port = -1\n', "chain.devnet.rpc_port", "must be 0..65535, got -1"),
    ],
)
def test_range_constraints_name_the_key_the_range_and_the_value(tmp_path: Path, toml: str, key: str,
                                                                  reason: str) -> None:
    path = tmp_path / "pool.toml"
    path.write_text(toml)
    with pytest.raises(config.ConfigError) as caught:
        config.load(path, environ={})
    assert (caught.value.key, caught.value.reason) == (key, reason)


def test_a_section_built_in_code_is_held_to_the_same_constraints() -> None:
    """A reload or an admin change builds the Struct directly (no decoding): validate() checks it."""
    from pool.config.stratum import LimitsConfig, PortConfig, StratumConfig

    with pytest.raises(config.ConfigError) as caught:
        LimitsConfig(reject_budget_ratio=0.0).validate("limits")
    assert (caught.value.key, caught.value.reason) == ("limits.reject_budget_ratio", "must be in (0, 1], got 0.0")
    with pytest.raises(config.ConfigError) as caught:
        StratumConfig(ports=[PortConfig(), PortConfig(port=99999)]).validate()
    assert (caught.value.key, caught.value.reason) == ("ports[1].port", "must be 0..65535, got 99999")
    LimitsConfig().validate("limits")                       # the defaults pass


@pytest.mark.parametrize(("toml", "needs_books"), [
    ('[payouts]\nscheme = "pplns"\n', True),
    ('[payouts]\nscheme = "pps"\n', True),
    ('[payouts]\nscheme = "fpps"\n', True),
    ('[payouts]\nscheme = "solo"\n', False),                       # devnet: test coins
    # SOLO in pool mode on a real network: the pool's wallet holds the finder's reward until it pays it.
    ('[chain]\nnetwork = "signet"\npool_address = "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7"\n'
     '[payouts]\nscheme = "solo"\n', True),
    ('[chain]\nnetwork = "regtest"\nmode = "solo"\n[payouts]\nscheme = "pplns"\n', False),
    ('[payouts]\nscheme = "pplns"\n[money]\ndsn = "postgresql://gs@127.0.0.1:5432/books"\n', False),
])
def test_a_pool_keeping_balances_needs_the_books_database(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          toml: str, needs_books: bool) -> None:
    """Balances live only in PostgreSQL: a pool that owes miners coins (PPLNS/PPS/FPPS, and SOLO in pool
    mode on a real network) without money.dsn is refused where it would run; chain.mode = "solo" (the
    coinbase pays the finder) and SOLO on devnet/regtest need no database."""
    path = tmp_path / "pool.toml"
    path.write_text(toml)
    loaded = config.load(path, environ={})             # tools that only read the file still load it
    assert config.keeps_balances(loaded) is (needs_books or "dsn =" in toml)
    if not needs_books:
        config.require_books(loaded)
        assert main(["check-config", str(path)]) == 0
        return
    with pytest.raises(config.ConfigError) as caught:
        config.require_books(loaded)
    assert caught.value.key == "money.dsn"
    assert "SOLO" in caught.value.reason and "needs no database" in caught.value.reason
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "money.dsn" in err and len(err.strip().splitlines()) == 1
    assert main(["run", "--config", str(path)]) == 2       # refused before anything starts
    assert capsys.readouterr().err.startswith("config error: money.dsn: ")
