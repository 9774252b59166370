"""Bitcoin primitives on the bottom floor: payout addresses and the byte encodings every floor shares.

Nothing here knows about the pool: config (address checks) and chain (coinbases, blocks) both stand on it.
"""
