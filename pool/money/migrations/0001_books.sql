-- The payout books: an append-only double-entry journal, balances derived from it in the same
-- transaction, payout batches with their states. Amounts are integer millisatoshis (msat).
--
-- Sign convention: a positive balance is what the pool owes that account. Every journal transaction's
-- entries add up to zero, so the sum of all balances is zero: the counter-accounts that may go
-- negative are the pool's own ("@block_rewards" is where every block reward comes from).

CREATE TABLE accounts (
    name         text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 256),
    balance_msat bigint NOT NULL DEFAULT 0,
    -- Only counter-accounts may go negative; a miner's (or the pool fee) account never does.
    overdraft    boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT balance_not_negative CHECK (overdraft OR balance_msat >= 0)
);

INSERT INTO accounts (name, overdraft) VALUES
    ('@block_rewards', true),      -- the coinbase: every block credit is drawn from it
    ('@pps', true),                -- per-share payments (PPS/FPPS) are drawn from it
    ('@orphan_losses', true),      -- an orphaned block's credits that were already paid out
    ('@opening', true),            -- opening balances moved in from a Redis ledger
    ('@payouts_in_flight', false), -- debited from miners into a batch, not yet sent
    ('@paid', false);              -- sent by the wallet

CREATE TABLE journal (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('block_credit', 'orphan_reversal', 'pps_credit', 'payout',
                                             'payout_sent', 'payout_cancel', 'opening_balance')),
    -- The cause: a block hash, a payout batch key, a share batch id.
    ref        text NOT NULL CHECK (ref <> ''),
    memo       text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Exactly once per cause: a block is credited once, a batch paid once.
    CONSTRAINT one_per_cause UNIQUE (kind, ref)
);

CREATE TABLE entries (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    journal_id  bigint NOT NULL REFERENCES journal (id),
    account     text NOT NULL REFERENCES accounts (name),
    amount_msat bigint NOT NULL CHECK (amount_msat <> 0)
);
CREATE INDEX entries_by_journal ON entries (journal_id);
CREATE INDEX entries_by_account ON entries (account, journal_id);

-- Nothing in the journal is ever edited: corrections are new, compensating transactions.
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER journal_append_only BEFORE UPDATE OR DELETE ON journal
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER journal_no_truncate BEFORE TRUNCATE ON journal
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- After each INSERT into entries (one statement per journal transaction): every journal transaction it
-- touched must add up to zero, and the balances move by the same amounts in the same transaction.
CREATE FUNCTION entries_post() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT e.journal_id, sum(e.amount_msat) AS total INTO bad
      FROM entries e
     WHERE e.journal_id IN (SELECT DISTINCT journal_id FROM added)
     GROUP BY e.journal_id
    HAVING sum(e.amount_msat) <> 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'journal transaction % does not balance: its entries add up to % msat',
            bad.journal_id, bad.total USING ERRCODE = 'check_violation';
    END IF;
    -- Lock in name order so concurrent postings never deadlock.
    PERFORM 1 FROM accounts WHERE name IN (SELECT account FROM added) ORDER BY name FOR UPDATE;
    UPDATE accounts a SET balance_msat = a.balance_msat + d.delta
      FROM (SELECT account, sum(amount_msat)::bigint AS delta FROM added GROUP BY account) d
     WHERE a.name = d.account;
    RETURN NULL;
END $$;
CREATE TRIGGER entries_balance AFTER INSERT ON entries
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION entries_post();

-- A balance only moves through the journal (the trigger above runs at depth 2).
CREATE FUNCTION accounts_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'accounts are never deleted' USING ERRCODE = 'restrict_violation';
    END IF;
    IF pg_trigger_depth() < 2 AND (
        (TG_OP = 'INSERT' AND NEW.balance_msat <> 0)
        OR (TG_OP = 'UPDATE' AND (NEW.balance_msat <> OLD.balance_msat OR NEW.name <> OLD.name))) THEN
        RAISE EXCEPTION 'account %: a balance changes only through journal entries', NEW.name
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;
CREATE TRIGGER accounts_guard BEFORE INSERT OR UPDATE OR DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_guard();
CREATE TRIGGER accounts_no_truncate BEFORE TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- One journal transaction in one call: NULL when this cause (kind, ref) is already in the books.
CREATE FUNCTION post_journal(p_kind text, p_ref text, p_accounts text[], p_amounts bigint[],
                             p_memo text DEFAULT '') RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    jid bigint;
BEGIN
    IF cardinality(p_accounts) IS DISTINCT FROM cardinality(p_amounts) OR cardinality(p_accounts) < 1 THEN
        RAISE EXCEPTION 'post_journal: % accounts for % amounts', cardinality(p_accounts), cardinality(p_amounts)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO journal (kind, ref, memo) VALUES (p_kind, p_ref, p_memo)
        ON CONFLICT ON CONSTRAINT one_per_cause DO NOTHING
        RETURNING id INTO jid;
    IF jid IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO accounts (name) SELECT DISTINCT a FROM unnest(p_accounts) AS a ORDER BY 1 ON CONFLICT DO NOTHING;
    INSERT INTO entries (journal_id, account, amount_msat)
        SELECT jid, t.a, t.m FROM unnest(p_accounts, p_amounts) AS t(a, m);
    RETURN jid;
END $$;

-- Payout batches: created (miners debited into @payouts_in_flight) -> sending (committed before the
-- wallet is called) -> sent (txid known, @payouts_in_flight -> @paid) -> confirmed; created ->
-- cancelled (credited back). sending -> created only when the wallet refused (nothing was sent).
CREATE TABLE payout_batches (
    key          text PRIMARY KEY CHECK (key ~ '^[0-9a-f]{32}$'),
    status       text NOT NULL DEFAULT 'created'
                 CHECK (status IN ('created', 'sending', 'sent', 'confirmed', 'cancelled')),
    total_sat    bigint NOT NULL CHECK (total_sat > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    attempts     integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    attempt_at   timestamptz,
    txid         text CHECK (txid <> ''),
    sent_at      timestamptz,
    confirmed_at timestamptz,
    last_error   text NOT NULL DEFAULT '',
    CONSTRAINT paid_has_txid CHECK ((status IN ('sent', 'confirmed')) = (txid IS NOT NULL)),
    CONSTRAINT sending_was_attempted CHECK (status <> 'sending' OR attempt_at IS NOT NULL)
);
CREATE INDEX payout_batches_by_time ON payout_batches (created_at DESC);

CREATE TABLE payout_payments (
    batch_key  text NOT NULL REFERENCES payout_batches (key),
    account    text NOT NULL REFERENCES accounts (name),
    address    text NOT NULL CHECK (address <> ''),
    amount_sat bigint NOT NULL CHECK (amount_sat > 0),
    PRIMARY KEY (batch_key, account)
);
CREATE TRIGGER payout_payments_append_only BEFORE UPDATE OR DELETE ON payout_payments
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE FUNCTION payout_batches_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'payout batches are never deleted' USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.key <> OLD.key OR NEW.total_sat <> OLD.total_sat OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'payout batch %: key, total and creation time never change', OLD.key
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF OLD.txid IS NOT NULL AND NEW.txid IS DISTINCT FROM OLD.txid THEN
        RAISE EXCEPTION 'payout batch %: txid % never changes', OLD.key, OLD.txid USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.status <> OLD.status AND NOT (OLD.status, NEW.status) IN (
        ('created', 'sending'), ('created', 'cancelled'), ('sending', 'created'), ('sending', 'sent'),
        ('sent', 'confirmed')) THEN
        RAISE EXCEPTION 'payout batch %: % -> % is not a valid transition', OLD.key, OLD.status, NEW.status
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER payout_batches_guard BEFORE UPDATE OR DELETE ON payout_batches
    FOR EACH ROW EXECUTE FUNCTION payout_batches_guard();

-- Journal vs balances: rows here mean the books disagree with themselves (the view is empty when sound).
CREATE VIEW books_inconsistencies AS
    SELECT a.name AS account, a.balance_msat, coalesce(s.total, 0)::bigint AS entries_msat
      FROM accounts a
      LEFT JOIN (SELECT account, sum(amount_msat) AS total FROM entries GROUP BY account) s ON s.account = a.name
     WHERE a.balance_msat <> coalesce(s.total, 0);
