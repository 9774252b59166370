"""The one error type for bad configuration."""


class ConfigError(ValueError):
    """A configuration problem, naming the offending key (e.g. `stratum.ports[0].port`).

    Section validators raise it with a key relative to their section; the loader prefixes it.
    """

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}" if key else reason)
        self.key = key
        self.reason = reason
