-- bench/pg/transfer.sql - the seed document's transfer transaction as a
-- pgbench script: one durable transfer between two distinct random accounts.
--
--   BEGIN
--   INSERT the idempotency key (client, seq)          -- a duplicate fails
--   SELECT ... FOR UPDATE both accounts, lower id first (no deadlocks)
--   check funds and the limit in the client, as the seed's service does
--   UPDATE each account SET balance, version + 1 WHERE id AND version = read
--   INSERT the audit row
--   COMMIT                                            -- fsync'd WAL flush
--
-- pgbench -D accounts=N -D seq=BASE: seq counts this client's transactions, so
-- (client_id, seq) is a fresh idempotency key every time. A version-checked
-- UPDATE that matched no row would make its \gset fail and count as a
-- failed transaction (it cannot happen under the row locks).
\set from random(1, :accounts)
\set to random(1, :accounts - 1)
\set to :to + case when :to >= :from then 1 else 0 end
\set amount random(1, 100)
\set seq :seq + 1
\set lo least(:from, :to)
\set hi greatest(:from, :to)
BEGIN;
INSERT INTO idempotency_keys (client_id, client_seq, operation, status, created_at)
  VALUES (:client_id, :seq, 'transfer', 'COMPLETED', now());
SELECT balance AS lo_balance, version AS lo_version FROM accounts WHERE id = :lo FOR UPDATE \gset
SELECT balance AS hi_balance, version AS hi_version FROM accounts WHERE id = :hi FOR UPDATE \gset
\set from_balance case when :from = :lo then :lo_balance else :hi_balance end
\set from_version case when :from = :lo then :lo_version else :hi_version end
\set to_balance case when :from = :lo then :hi_balance else :lo_balance end
\set to_version case when :from = :lo then :hi_version else :lo_version end
\set from_new_balance :from_balance - :amount
\set to_new_balance :to_balance + :amount
\if :from_balance < :amount or :amount > 1000000
ROLLBACK;
\else
UPDATE accounts SET balance = :from_new_balance, version = version + 1, updated_at = now()
  WHERE id = :from AND version = :from_version RETURNING version AS from_new_version \gset
UPDATE accounts SET balance = :to_new_balance, version = version + 1, updated_at = now()
  WHERE id = :to AND version = :to_version RETURNING version AS to_new_version \gset
INSERT INTO transactions (id, from_account_id, to_account_id, amount, status, client_id, client_seq, created_at)
  VALUES (gen_random_uuid(), :from, :to, :amount, 'COMPLETED', :client_id, :seq, now());
COMMIT;
\endif
