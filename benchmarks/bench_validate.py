"""Share checks per second per SHA-256 back end vs the hashlib reference (same as `geostratum bench validate`)."""

import json
import sys

from pool.native import benchmark

if __name__ == "__main__":
    checks = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print("RESULT " + json.dumps(benchmark.run(checks=checks)))
