"""MaxMind's download service for `geostratum geo update` (geo.update_source = "maxmind"), as geoipupdate
uses it: per edition, GET geo.maxmind_download_url (suffix=tar.gz) and its suffix=tar.gz.sha256 twin with
HTTP basic auth (account id : licence key), check the archive's SHA-256, and unpack its .mmdb files.

The unpacked release is verified and installed by pool.geo.update like any other; this module only fetches.
The licence key never appears in a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import tarfile
from pathlib import Path

import aiohttp

from pool.config.errors import ConfigError
from pool.config.geo import GeoConfig


class FetchError(Exception):
    """A one-line reason the download failed (nothing was installed)."""


def credentials(config: GeoConfig) -> str:
    """The Authorization header for the account id and licence key (inline or from
    geo.maxmind_license_key_file); ConfigError naming the key."""
    if not config.maxmind_account_id:
        raise ConfigError("geo.maxmind_account_id", "not set (geo.update_source = \"maxmind\" needs your MaxMind "
                                                    "account id and a licence key)")
    key = config.maxmind_license_key
    if not key and config.maxmind_license_key_file:
        try:
            key = Path(config.maxmind_license_key_file).read_text().strip()
        except OSError as exc:
            raise ConfigError("geo.maxmind_license_key_file", f"cannot read it: {exc.strerror}") from None
        if not key:
            raise ConfigError("geo.maxmind_license_key_file", f"{config.maxmind_license_key_file} is empty")
    if not key:
        raise ConfigError("geo.maxmind_license_key", "not set (nor geo.maxmind_license_key_file): "
                                                     "geo.update_source = \"maxmind\" needs one")
    return aiohttp.encode_basic_auth(str(config.maxmind_account_id), key)


def _urls(config: GeoConfig, edition: str) -> tuple[str, str]:
    archive = config.maxmind_download_url.replace("{edition}", edition)
    return archive, archive.replace("suffix=tar.gz", "suffix=tar.gz.sha256")


async def _get(session: aiohttp.ClientSession, url: str, auth: str, edition: str, limit: int,
               into: Path | None = None) -> bytes:
    """The body, or with `into` its SHA-256 (hex) after writing it there; at most `limit` bytes."""
    # aiohttp drops the header if the service redirects to another host (MaxMind's storage).
    async with session.get(url, headers={"Authorization": auth}) as reply:
        if reply.status in (401, 403):
            raise FetchError(f"{edition}: the download service refused the account id / licence key "
                             f"(HTTP {reply.status})")
        if reply.status != 200:
            raise FetchError(f"{edition}: HTTP {reply.status} from the download service")
        digest, size, body = hashlib.sha256(), 0, bytearray()
        with open(into, "wb") if into else contextlib.nullcontext() as out:
            async for chunk in reply.content.iter_chunked(1 << 16):
                size += len(chunk)
                if size > limit:
                    raise FetchError(f"{edition}: more than {limit} bytes (geo.update_max_bytes)")
                digest.update(chunk)
                if out is None:
                    body += chunk
                else:
                    out.write(chunk)
        return digest.hexdigest().encode() if into else bytes(body)


def _unpack(archive: Path, edition: str, into: Path) -> list[Path]:
    """The archive's .mmdb files and licence texts (MaxMind's layout: EDITION_YYYYMMDD/EDITION.mmdb,
    COPYRIGHT.txt, LICENSE.txt) flattened into `into`."""
    found = []
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if not member.isfile() or not name.endswith((".mmdb", ".txt")):
                    continue
                source = tar.extractfile(member)
                if source is None:
                    continue
                target = into / name
                if target.exists() and name.endswith(".txt"):
                    continue                                  # each edition carries the same licence
                if target.exists():
                    raise FetchError(f"{edition}: {name} is in two editions")
                with source, open(target, "wb") as out:
                    while block := source.read(1 << 20):
                        out.write(block)
                if name.endswith(".mmdb"):
                    found.append(target)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise FetchError(f"{edition}: not a readable tar.gz: {exc}") from None
    if not found:
        raise FetchError(f"{edition}: the archive holds no .mmdb file")
    return found


async def _fetch_all(config: GeoConfig, into: Path) -> list[str]:
    auth = credentials(config)
    timeout = aiohttp.ClientTimeout(total=config.update_timeout_seconds)
    release = into / "release"
    release.mkdir()
    names = []
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for edition in config.maxmind_editions:
            archive_url, sum_url = _urls(config, edition)
            expected_text = (await _get(session, sum_url, auth, edition, 4096)).decode("ascii", "replace")
            match = re.match(r"\s*([0-9a-fA-F]{64})(?:\s+(\S+))?", expected_text)
            if match is None:
                raise FetchError(f"{edition}: the checksum reply is not a SHA-256: {expected_text[:80]!r}")
            archive = into / f"{edition}.tar.gz"
            got = (await _get(session, archive_url, auth, edition, config.update_max_bytes, archive)).decode()
            if got != match.group(1).lower():
                raise FetchError(f"{edition}: SHA-256 of the archive is {got}, the service says {match.group(1)}")
            _unpack(archive, edition, release)
            archive.unlink()
            # "GeoLite2-City_20261201.tar.gz" names the release; else the edition and its checksum.
            names.append((match.group(2) or f"{edition}_{got[:12]}").removesuffix(".tar.gz"))
    return names


def fetch_editions(config: GeoConfig, into: Path) -> tuple[Path, str]:
    """Download and unpack every geo.maxmind_editions into `into`/release; (that folder, a release name)."""
    try:
        names = asyncio.run(_fetch_all(config, into))
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise FetchError(f"the download service: {type(exc).__name__}: {exc}") from None
    return into / "release", "maxmind-" + "+".join(names)
