-- bench/pg/schema.sql - the tables of the PostgreSQL transfer that arbiter is
-- compared with (the seed document's transaction; bench/pg/transfer.sql runs
-- it). Amounts are bigint minor units, as in arbiter's ledger. psql runs this
-- with -v accounts=N -v deposit=AMOUNT.
--
-- No foreign keys from transactions to accounts: the seed does not show
-- them, and they would only make PostgreSQL slower (each insert would take a
-- KEY SHARE lock on both accounts). Every other check is there.

SET client_min_messages = warning;
DROP TABLE IF EXISTS transactions, idempotency_keys, accounts;

CREATE TABLE accounts (
    id         bigint      PRIMARY KEY,
    owner      text        NOT NULL,
    currency   text        NOT NULL,
    balance    bigint      NOT NULL CHECK (balance >= 0),
    version    bigint      NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per request, keyed like arbiter's outcomes: (client, client_seq).
CREATE TABLE idempotency_keys (
    client_id  bigint      NOT NULL,
    client_seq bigint      NOT NULL,
    operation  text        NOT NULL,
    status     text        NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (client_id, client_seq)
);

-- The audit trail: one immutable row per completed transfer.
CREATE TABLE transactions (
    id              uuid        PRIMARY KEY,
    from_account_id bigint      NOT NULL,
    to_account_id   bigint      NOT NULL,
    amount          bigint      NOT NULL CHECK (amount > 0),
    status          text        NOT NULL,
    client_id       bigint      NOT NULL,
    client_seq      bigint      NOT NULL,
    created_at      timestamptz NOT NULL
);

INSERT INTO accounts (id, owner, currency, balance)
SELECT k, 'lg' || (k % 256), 'EUR', :deposit
FROM generate_series(1, :accounts) AS k;

VACUUM ANALYZE;
