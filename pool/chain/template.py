"""getblocktemplate result -> PreparedTemplate (computed once) -> Job (one per payout script)."""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import msgspec

from pool.bitcoin.encoding import display_to_internal
from pool.chain.coinbase import CoinbaseOutput, build_coinbase
from pool.chain.merkle import merkle_branch, witness_commitment, witness_commitment_script
from pool.chain.types import Job
from pool.native import prepare_job
from pool.native.work import target_from_nbits

log = logging.getLogger(__name__)

# Rules a template may mark as required ("!rule") that this job builder handles.
UNDERSTOOD_RULES = frozenset({"segwit", "csv", "taproot", "signet", "testdummy"})

__all__ = [
    "UNDERSTOOD_RULES",
    "BlockTemplate",
    "JobBuilder",
    "JobIdAllocator",
    "PayoutPolicy",
    "PreparedTemplate",
    "TemplateError",
    "TemplateTransaction",
    "prepare_template",
]


class TemplateError(ValueError):
    """A template this pool cannot mine on (malformed, or a required rule it does not know)."""


class TemplateTransaction(msgspec.Struct, frozen=True):
    data: str
    txid: str
    hash: str | None = None
    fee: int | None = None
    weight: int | None = None
    depends: list[int] = msgspec.field(default_factory=list)


class BlockTemplate(msgspec.Struct, frozen=True):
    """The getblocktemplate fields the pool uses (BIP22/23/145); others are ignored."""

    version: int
    previousblockhash: str
    transactions: list[TemplateTransaction]
    coinbasevalue: int
    bits: str
    height: int
    curtime: int
    mintime: int | None = None
    target: str | None = None
    default_witness_commitment: str | None = None
    coinbaseaux: dict[str, str] = msgspec.field(default_factory=dict)
    longpollid: str | None = None
    rules: list[str] = msgspec.field(default_factory=list)


class PreparedTemplate(msgspec.Struct, frozen=True, kw_only=True):
    """Everything derived once per template: jobs share it, block assembly reads it."""

    template_id: str
    height: int
    prevhash: bytes  # internal order
    previousblockhash: str  # display order, as the node sent it
    version: int
    nbits: int
    network_target: int
    curtime: int
    mintime: int
    coinbase_value: int
    aux_flags: bytes
    txids: tuple[bytes, ...]  # internal order, template order
    merkle_branches: tuple[bytes, ...]
    merkle_branches_blob: bytes
    witness_commitment_script: bytes | None
    transactions_data: bytes  # every template transaction's serialization, concatenated in order
    tx_count: int
    total_fees: int | None
    longpollid: str | None
    created_at: float

    @property
    def content_key(self) -> tuple[bytes, tuple[bytes, ...], int]:
        """Equal for two templates that would produce the same jobs (same tip, txs and value)."""
        return self.prevhash, self.txids, self.coinbase_value


def _hex_bytes(value: str, what: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise TemplateError(f"{what} is not hex: {value[:80]!r}") from None


def prepare_template(result: dict[str, Any] | BlockTemplate, template_id: str, now: float | None = None
                     ) -> PreparedTemplate:
    """Check and pre-compute a getblocktemplate result; TemplateError says what is wrong."""
    try:
        gbt = result if isinstance(result, BlockTemplate) else msgspec.convert(result, BlockTemplate)
    except msgspec.ValidationError as exc:
        raise TemplateError(f"getblocktemplate result: {exc}") from None
    unknown = [r for r in gbt.rules if r.startswith("!") and r[1:] not in UNDERSTOOD_RULES]
    if unknown:
        raise TemplateError(f"template requires rules this pool does not implement: {unknown}")
    if gbt.height < 1 or gbt.coinbasevalue < 0:
        raise TemplateError(f"implausible template: height {gbt.height}, coinbasevalue {gbt.coinbasevalue}")
    try:
        prevhash = display_to_internal(gbt.previousblockhash)
        nbits = int(gbt.bits, 16)
        network_target = target_from_nbits(nbits)
    except ValueError as exc:
        raise TemplateError(f"template header fields: {exc}") from None
    if not 0 <= gbt.version <= 0xFFFFFFFF:
        raise TemplateError(f"template version {gbt.version} is not a 32-bit value")

    txids: list[bytes] = []
    wtxids: list[bytes] = []
    datas: list[bytes] = []
    has_witness = False
    for i, tx in enumerate(gbt.transactions):
        try:
            txid = display_to_internal(tx.txid)
            wtxid = display_to_internal(tx.hash) if tx.hash else txid
        except ValueError:
            raise TemplateError(f"transaction {i}: txid/hash is not a 32-byte hex hash") from None
        txids.append(txid)
        wtxids.append(wtxid)
        has_witness |= wtxid != txid
        datas.append(_hex_bytes(tx.data, f"transaction {i} data"))

    commitment_script: bytes | None = None
    if gbt.default_witness_commitment is not None or has_witness:
        commitment_script = witness_commitment_script(witness_commitment(wtxids))
        if gbt.default_witness_commitment is not None:
            node_script = _hex_bytes(gbt.default_witness_commitment, "default_witness_commitment")
            if node_script != commitment_script:
                # The node validates against its own value; ours came from the `hash` fields it sent.
                log.warning("template %s: default_witness_commitment differs from the one computed "
                            "from the transactions' wtxids; using the node's", template_id)
                commitment_script = node_script

    branches = tuple(merkle_branch(txids))
    fees = [tx.fee for tx in gbt.transactions]
    aux = "".join(gbt.coinbaseaux.values()) if gbt.coinbaseaux else ""
    return PreparedTemplate(
        template_id=template_id,
        height=gbt.height,
        prevhash=prevhash,
        previousblockhash=gbt.previousblockhash,
        version=gbt.version,
        nbits=nbits,
        network_target=network_target,
        curtime=gbt.curtime,
        mintime=gbt.mintime if gbt.mintime is not None else gbt.curtime,
        coinbase_value=gbt.coinbasevalue,
        aux_flags=_hex_bytes(aux, "coinbaseaux"),
        txids=tuple(txids),
        merkle_branches=branches,
        merkle_branches_blob=b"".join(branches),
        witness_commitment_script=commitment_script,
        transactions_data=b"".join(datas),
        tx_count=len(datas),
        total_fees=None if any(f is None for f in fees) else sum(f for f in fees if f is not None),
        longpollid=gbt.longpollid,
        created_at=time.time() if now is None else now,
    )


class JobIdAllocator:
    """Short hex job ids: a per-process epoch then a counter, so a restart never reuses an id."""

    def __init__(self, epoch: int | None = None) -> None:
        self.epoch = int.from_bytes(os.urandom(2), "big") if epoch is None else epoch & 0xFFFF
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self.epoch:04x}{next(self._counter):x}"


class PayoutPolicy:
    """Who the coinbase pays: the pool (pool mode) or the finder, minus an optional pool fee (solo)."""

    def __init__(self, *, pool_script: bytes | None, fee_percent: float = 0.0) -> None:
        self.pool_script = pool_script
        # Integer parts-per-million so the outputs add up to the coinbase value exactly.
        self.fee_ppm = round(fee_percent * 10_000)

    def outputs(self, coinbase_value: int, payee_script: bytes | None) -> list[CoinbaseOutput]:
        if payee_script is None or payee_script == self.pool_script:
            if self.pool_script is None:
                raise ValueError("no payout script: pool mode needs a pool address")
            return [CoinbaseOutput(coinbase_value, self.pool_script)]
        fee = coinbase_value * self.fee_ppm // 1_000_000 if self.pool_script is not None else 0
        outputs = [CoinbaseOutput(coinbase_value - fee, payee_script)]
        if fee > 0 and self.pool_script is not None:
            outputs.append(CoinbaseOutput(fee, self.pool_script))
        return outputs


class JobBuilder:
    """Turns a PreparedTemplate plus payout outputs into a Job with its PreparedJob attached."""

    def __init__(
        self,
        *,
        extranonce_size: int,
        version_mask: int,
        pool_tag: bytes,
        job_ids: JobIdAllocator | None = None,
    ) -> None:
        self.extranonce_size = extranonce_size
        self.version_mask = version_mask & 0xFFFFFFFF
        self.pool_tag = pool_tag
        self.job_ids = job_ids or JobIdAllocator()

    def job_version(self, template_version: int) -> int:
        # Bits inside the rolling mask would make BIP310/OR/XOR miners disagree (regtest bit 28).
        return template_version & ~self.version_mask & 0xFFFFFFFF

    def build(
        self,
        template: PreparedTemplate,
        outputs: Sequence[CoinbaseOutput],
        *,
        clean_jobs: bool,
        payout_key: str = "",
        now: float | None = None,
    ) -> Job:
        split = build_coinbase(
            height=template.height,
            outputs=outputs,
            extranonce_size=self.extranonce_size,
            tag=self.pool_tag,
            aux_flags=template.aux_flags,
            witness_commitment_script=template.witness_commitment_script,
        )
        if split.value > template.coinbase_value:
            raise ValueError(f"coinbase pays {split.value} sat, template allows {template.coinbase_value}")
        version = self.job_version(template.version)
        prepared = prepare_job(
            split.coinb1, split.coinb2, template.merkle_branches_blob, template.prevhash, version, template.nbits
        )
        return Job(
            job_id=self.job_ids.next(),
            prevhash=template.prevhash,
            coinb1=split.coinb1,
            coinb2=split.coinb2,
            merkle_branches=template.merkle_branches,
            version=version,
            nbits=template.nbits,
            ntime=max(template.curtime, template.mintime),
            height=template.height,
            clean_jobs=clean_jobs,
            network_target=template.network_target,
            extranonce_size=self.extranonce_size,
            created_at=time.time() if now is None else now,
            template_id=template.template_id,
            payout_key=payout_key,
            prepared=prepared,
        )
