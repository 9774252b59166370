"""Fuzz target: the config loader (pool/config). A document of any shape (the sections' own keys with
values of any type, unknown keys, TOML that is not TOML, environment overrides) gives a Config or a
ConfigError naming a key, never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import msgspec.inspect as mi
from hypothesis import event, example, given
from hypothesis import strategies as st

import pool.config as config_module
from pool.config import Config, ConfigError

junk = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 70), 1 << 70) | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)


def shaped(kind: mi.Type, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values mostly of the declared type (so validation runs deep), sometimes of any type."""
    typed: st.SearchStrategy[Any]
    if isinstance(kind, mi.StructType) and depth < 4:
        typed = st.fixed_dictionaries({}, optional={f.encode_name: st.deferred(
            lambda f=f: shaped(f.type, depth + 1)) for f in kind.fields})
    elif isinstance(kind, mi.ListType | mi.SetType | mi.FrozenSetType):
        typed = st.lists(shaped(kind.item_type, depth + 1), max_size=3)
    elif isinstance(kind, mi.DictType):
        typed = st.dictionaries(st.text(max_size=8), shaped(kind.value_type, depth + 1), max_size=3)
    elif isinstance(kind, mi.BoolType):
        typed = st.booleans()
    elif isinstance(kind, mi.IntType):
        typed = st.one_of(st.integers(-5, 70_000), st.integers(-(1 << 66), 1 << 66))
    elif isinstance(kind, mi.FloatType):
        typed = st.one_of(st.floats(), st.integers(-5, 10_000), st.sampled_from([1e308, -0.0, 1e-320]))
    elif isinstance(kind, mi.StrType):
        typed = st.one_of(st.text(max_size=20), st.sampled_from(["127.0.0.1", "::", "0.0.0.0/0", "1fffe000",
                                                                 "redis://127.0.0.1:1/0", "sha256:" + "0" * 64]))
    elif isinstance(kind, mi.LiteralType):
        typed = st.sampled_from(kind.values)
    elif isinstance(kind, mi.UnionType):
        typed = st.one_of([shaped(t, depth + 1) for t in kind.types])
    else:
        return junk
    return st.integers(0, 19).flatmap(lambda n: junk if n == 0 else typed)   # 1 value in 20 of any type


documents = shaped(mi.type_info(Config))


def loads_or_names_a_key(load: Any) -> Config | None:
    try:
        return load()
    except ConfigError as exc:
        assert isinstance(exc.key, str) and exc.reason
        return None


@given(documents)
@example({"stratum": {"limits": {"max_json_depth": 10**30}}})
@example({"stratum": {"ports": [{"min_difficulty": float("nan")}]}})
@example({"admin": {"rate_limit_per_second": float("inf")}})
def test_any_document_loads_or_names_the_bad_key(document: dict[str, Any]) -> None:
    config = loads_or_names_a_key(lambda: config_module.from_dict(document))
    event("loaded" if config is not None else "refused")
    if config is not None:
        config_module.validate(config)                  # a loaded config stays valid


@given(st.text(max_size=200))
@example("[stratum]\nports = 5\n")
@example("[stratum.limits]\nmax_line_bytes = 1e400\n")
def test_any_file_loads_or_names_the_problem(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pool.toml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        loads_or_names_a_key(lambda: config_module.load(path, environ={}))


@given(st.dictionaries(st.sampled_from(["GEOSTRATUM__STRATUM__LIMITS__MAX_LINE_BYTES", "GEOSTRATUM__ADMIN__PORT",
                                        "GEOSTRATUM__STRATUM__PORTS", "GEOSTRATUM__STRATUM", "GEOSTRATUM__",
                                        "GEOSTRATUM__POOL__NODE_ID", "GEOSTRATUM_CONFIG_OVERRIDES"]),
                       st.text(max_size=40), max_size=3))
@example({"GEOSTRATUM__STRATUM": "1", "GEOSTRATUM__STRATUM__LIMITS__MAX_LINE_BYTES": "1"})
@example({"GEOSTRATUM_CONFIG_OVERRIDES": '{"stratum": 1}'})
def test_any_environment_loads_or_names_the_key(environ: dict[str, str]) -> None:
    loads_or_names_a_key(lambda: config_module.load(None, environ=environ))
