"""RpcClient against real recorded Bitcoin Core v31 replies, served over a real loopback socket."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pool.chain.rpc import (
    NodeSet,
    RpcAuthError,
    RpcClient,
    RpcError,
    RpcHttpError,
    RpcMethodNotFoundError,
    RpcTransportError,
    RpcWarmupError,
    gbt_rules,
)
from pool.chain.template import prepare_template
from tests.chain.fixture_node import FixtureNode, Reply, expected_body, load_fixture


@pytest.fixture
async def node() -> AsyncIterator[FixtureNode]:
    server = await FixtureNode().start()
    yield server
    await server.stop()


def client_for(node: FixtureNode, **kwargs: Any) -> RpcClient:
    kwargs.setdefault("user", "pool")
    kwargs.setdefault("password", "pool")
    kwargs.setdefault("retry_delay", 0.01)
    return RpcClient(node.url, **kwargs)


def assert_sent_as_recorded(node: FixtureNode, fixture_name: str, index: int = -1) -> None:
    fixture = load_fixture(fixture_name)
    sent = node.received[index]
    assert sent.method == "POST"
    assert sent.path == fixture["request"]["path"]
    assert sent.body == expected_body(fixture, sent.body)
    recorded = fixture["request"]["headers"]
    for header in ("Authorization", "Content-Type"):
        if header in recorded:
            assert sent.headers[header] == recorded[header]


def recorded_result(fixture_name: str) -> Any:
    return load_fixture(fixture_name)["response"]["body_json"]["result"]


SUCCESS_CALLS = [
    ("getblockchaininfo", lambda c: c.getblockchaininfo()),
    ("getmininginfo", lambda c: c.getmininginfo()),
    ("getbestblockhash", lambda c: c.getbestblockhash()),
    ("getbestblockhash_after_submitblock", lambda c: c.getbestblockhash()),
    ("getblockcount", lambda c: c.getblockcount()),
    ("getdifficulty", lambda c: c.getdifficulty()),
    ("getblockheader_verbose",
     lambda c: c.getblockheader("57b4722774a9ab445177f1d5ce88000923d243ccb143bb07f44e63e1cb0bfafa", True)),
    ("getblockheader_hex",
     lambda c: c.getblockheader("57b4722774a9ab445177f1d5ce88000923d243ccb143bb07f44e63e1cb0bfafa", False)),
    ("gbt_segwit_empty_mempool", lambda c: c.getblocktemplate(["segwit"])),
    ("gbt_segwit_20tx", lambda c: c.getblocktemplate(["segwit"])),
    ("gbt_segwit_120tx", lambda c: c.getblocktemplate(["segwit"])),
    ("getnetworkinfo", lambda c: c.call("getnetworkinfo")),
]


@pytest.mark.parametrize(("fixture_name", "call"), SUCCESS_CALLS, ids=[n for n, _ in SUCCESS_CALLS])
async def test_successful_replies_decode_to_the_recorded_result(node, fixture_name, call) -> None:
    node.queue(fixture_name)
    client = client_for(node)
    try:
        result = await call(client)
    finally:
        await client.close()
    assert result == recorded_result(fixture_name)
    assert_sent_as_recorded(node, fixture_name)
    assert client.health.healthy and client.health.calls == 1


@pytest.mark.parametrize("fixture_name", ["gbt_segwit_empty_mempool", "gbt_segwit_20tx", "gbt_segwit_120tx"])
async def test_recorded_templates_prepare_with_the_nodes_commitment(node, fixture_name) -> None:
    node.queue(fixture_name)
    client = client_for(node)
    try:
        gbt = await client.getblocktemplate(gbt_rules("regtest"))
    finally:
        await client.close()
    template = prepare_template(gbt, "t1")
    assert template.tx_count == len(gbt["transactions"])
    assert template.witness_commitment_script == bytes.fromhex(gbt["default_witness_commitment"])
    assert template.total_fees == gbt["coinbasevalue"] - 5_000_000_000


async def test_longpoll_sends_the_longpollid_and_waits(node) -> None:
    fixture = load_fixture("gbt_longpoll_new_block")
    node.queue(fixture, delay=0.2)
    client = client_for(node, timeout=0.05)  # the per-call timeout below must override the default
    try:
        gbt = await client.getblocktemplate(["segwit"], longpollid=fixture["longpollid_sent"], timeout=5)
    finally:
        await client.close()
    assert gbt["previousblockhash"] == fixture["new_template_summary"]["previousblockhash"]
    assert_sent_as_recorded(node, "gbt_longpoll_new_block")


SUBMIT_FIXTURES = [
    ("submitblock_valid", None),
    ("submitblock_duplicate", "duplicate"),
    ("submitblock_high_hash", "high-hash"),
    ("submitblock_bad_merkle_root", "bad-txnmrklroot"),
    ("submitblock_missing_witness_commitment", "unexpected-witness"),
    ("submitblock_bad_cb_height", "bad-cb-height"),
    ("submitblock_bad_cb_amount", "bad-cb-amount"),
    ("submitblock_stale_prevhash", "inconclusive"),
    ("submitblock_stale_prevhash_again", "duplicate"),
    ("submitblock_unknown_prevhash", "prev-blk-not-found"),
]


@pytest.mark.parametrize(("fixture_name", "reason"), SUBMIT_FIXTURES, ids=[n for n, _ in SUBMIT_FIXTURES])
async def test_submitblock_returns_null_or_the_bip22_reason(node, fixture_name, reason) -> None:
    fixture = load_fixture(fixture_name)
    node.queue(fixture)
    client = client_for(node)
    try:
        assert await client.submitblock(fixture["submitted_block"]["block_hex"]) == reason
    finally:
        await client.close()
    assert_sent_as_recorded(node, fixture_name)


ERROR_CALLS = [
    ("gbt_no_segwit_rule_error", lambda c: c.getblocktemplate([]), RpcError, -8),
    ("gbt_no_params_error", lambda c: c.call("getblocktemplate"), RpcError, -1),
    ("error_submitblock_decode_failed", lambda c: c.submitblock("00ff"), RpcError, -22),
    ("error_unknown_method", lambda c: c.call("getfoo"), RpcMethodNotFoundError, -32601),
    ("error_bad_params_invalid_hash", lambda c: c.call("getblockheader", ["not-a-hash"]), RpcError, -8),
    ("error_bad_params_too_many", lambda c: c.call("getblockcount", [1]), RpcError, -1),
    ("error_bad_params_wrong_type", lambda c: c.call("getblockhash", ["ten"]), RpcError, -3),
    ("error_block_height_out_of_range", lambda c: c.getblockhash(100000), RpcError, -8),
    ("error_block_not_found",
     lambda c: c.call("getblock", ["0" * 64, 0]), RpcError, -5),
]


@pytest.mark.parametrize(("fixture_name", "call", "error_type", "code"), ERROR_CALLS,
                         ids=[e[0] for e in ERROR_CALLS])
async def test_error_replies_raise_typed_errors(node, fixture_name, call, error_type, code) -> None:
    fixture = load_fixture(fixture_name)
    node.queue(fixture)
    client = client_for(node)
    try:
        with pytest.raises(error_type) as info:
            await call(client)
    finally:
        await client.close()
    assert type(info.value) is error_type
    assert info.value.code == code
    assert info.value.message == fixture["response"]["body_json"]["error"]["message"]
    assert not info.value.retryable
    assert_sent_as_recorded(node, fixture_name)
    # A request the node refused is not a node failure: the node stays healthy.
    assert client.health.healthy is (not info.value.node_failure)


async def test_wrong_password_is_an_auth_error_with_the_recorded_header(node) -> None:
    node.queue("error_wrong_password")
    client = client_for(node, password="wrong-password")
    try:
        with pytest.raises(RpcAuthError):
            await client.getblockcount()
    finally:
        await client.close()
    assert_sent_as_recorded(node, "error_wrong_password")
    assert not client.health.healthy and client.health.failures == 1


async def test_401_with_empty_body_and_no_header_reply_is_an_auth_error(node) -> None:
    node.queue("error_no_auth_header")
    client = client_for(node)
    try:
        with pytest.raises(RpcAuthError):
            await client.getblockcount()
    finally:
        await client.close()


async def test_cookie_file_is_reread_after_a_401(node, tmp_path) -> None:
    cookie = tmp_path / ".cookie"
    cookie.write_text("pool:wrong-password")

    def node_restarted(_request: Any) -> None:
        cookie.write_text("pool:pool")  # the node wrote a new cookie

    node.on_request = node_restarted
    node.queue("error_wrong_password", "getblockcount")
    client = RpcClient(node.url, cookie_file=str(cookie))
    try:
        assert await client.getblockcount() == 111
    finally:
        await client.close()
    assert_sent_as_recorded(node, "error_wrong_password", 0)
    assert_sent_as_recorded(node, "getblockcount", 1)


async def test_warmup_replies_are_retried_until_the_node_is_ready(node) -> None:
    fixture = load_fixture("error_warmup_28")
    for step in fixture["observed_sequence"]:
        node.queue(Reply(step["http_status"], "Internal Server Error" if step["http_status"] == 500 else "OK",
                         {"Content-Type": "application/json",
                          "Content-Length": str(len(step["body"].encode()))},
                         step["body"].encode()))
    client = client_for(node, retries=10)
    try:
        assert await client.getblockcount() == 110
    finally:
        await client.close()
    assert len(node.received) == len(fixture["observed_sequence"])
    assert_sent_as_recorded(node, "error_warmup_28", 0)


async def test_warmup_gives_up_after_the_retry_budget(node) -> None:
    node.queue("error_warmup_28", "error_warmup_28")
    client = client_for(node, retries=1)
    try:
        with pytest.raises(RpcWarmupError) as info:
            await client.getblockcount()
    finally:
        await client.close()
    assert info.value.code == -28 and info.value.message == "Loading P2P addresses\u2026"
    assert info.value.retryable


@pytest.mark.parametrize(("fixture_name", "status"), [("error_http_get", 405),
                                                       ("jsonrpc2_notification_no_id", 204)])
async def test_replies_without_a_json_rpc_body_are_http_errors(node, fixture_name, status) -> None:
    node.queue(fixture_name)
    client = client_for(node)
    try:
        with pytest.raises(RpcHttpError) as info:
            await client.getblockcount()
    finally:
        await client.close()
    assert info.value.status == status


async def test_a_json_rpc_2_error_on_http_200_is_still_an_error(node) -> None:
    node.queue("jsonrpc2_unknown_method")
    client = client_for(node)
    try:
        with pytest.raises(RpcMethodNotFoundError):
            await client.call("getfoo")
    finally:
        await client.close()


async def test_parse_error_reply_with_null_id(node) -> None:
    node.queue("error_parse_error")
    client = client_for(node)
    try:
        with pytest.raises(RpcError) as info:
            await client.getblockcount()
    finally:
        await client.close()
    assert info.value.code == -32700


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_connection_refused_is_a_retryable_transport_error() -> None:
    client = RpcClient(f"http://127.0.0.1:{_closed_port()}/", user="pool", password="pool", retries=1,
                       retry_delay=0.01)
    try:
        with pytest.raises(RpcTransportError) as info:
            await client.getbestblockhash()
    finally:
        await client.close()
    assert info.value.retryable
    assert client.health.consecutive_failures == 2


async def test_timeout_is_a_transport_error(node) -> None:
    node.queue("getblockcount", delay=1.0)
    client = client_for(node, timeout=0.1, retries=0)
    try:
        with pytest.raises(RpcTransportError, match="timed out"):
            await client.getblockcount()
    finally:
        await client.close()


async def test_node_set_fails_over_to_the_next_node(node) -> None:
    node.queue("getbestblockhash", "gbt_segwit_empty_mempool")
    dead = RpcClient(f"http://127.0.0.1:{_closed_port()}/", name="dead", retries=0)
    alive = client_for(node, name="alive")
    nodes = NodeSet([dead, alive])
    try:
        assert await nodes.getbestblockhash() == recorded_result("getbestblockhash")
        assert not dead.health.healthy and alive.health.healthy
        # The failed node is now tried last, so the next call goes straight to the live one.
        await nodes.getblocktemplate(["segwit"])
        assert dead.health.calls == 1
    finally:
        await nodes.close()


async def test_node_set_does_not_fail_over_on_a_request_error(node) -> None:
    second = await FixtureNode().start()
    node.queue("error_block_height_out_of_range")
    second.queue("getblockcount")
    nodes = NodeSet([client_for(node), client_for(second)])
    try:
        with pytest.raises(RpcError) as info:
            await nodes.getblockhash(100000)
        assert info.value.code == -8
        assert second.received == []
    finally:
        await nodes.close()
        await second.stop()


def test_signet_needs_the_signet_rule() -> None:
    assert gbt_rules("signet") == ["segwit", "signet"]
    assert gbt_rules("mainnet") == ["segwit"]
    assert json.dumps({"rules": gbt_rules("regtest")}) == '{"rules": ["segwit"]}'
