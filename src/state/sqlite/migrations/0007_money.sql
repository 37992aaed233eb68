-- Schema 7 of the cardform state database (SQLite): every money figure derived from the journal.
-- An order records what the provider gave back when it failed (`refunded_amount`), so what it
-- cost is its charge less that; a card's `charged` is recomputed from its orders by the upgrade
-- (in Rust: the databases would sum decimal text as floating point). A state records the
-- provider it belongs to, so a run against another provider is refused before anything is sent.
ALTER TABLE orders ADD COLUMN refunded TEXT;
ALTER TABLE state_info ADD COLUMN provider TEXT;
