"""Money: the payout books in PostgreSQL (asyncpg).

An append-only double-entry journal with balances derived in the same transaction, block credits
written exactly once per block hash, payout batches sent at most once. Stands above pool.shares (it
reads the PPLNS window and block records from Redis) and below admin and app.
"""
