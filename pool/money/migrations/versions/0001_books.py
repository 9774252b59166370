"""The payout books: accounts, journal, entries, payout batches (0001_books.sql)."""

from pool.money.schema import run_sql_file

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("0001_books.sql")


def downgrade() -> None:
    raise NotImplementedError("the books are never dropped by a migration")
