"""Where the real test data lives (vendored in tests/data so a clean clone needs nothing else)."""

from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"
VECTORS = DATA / "vectors"
FIXTURES = DATA / "fixtures"
TRANSCRIPTS = DATA / "transcripts"
