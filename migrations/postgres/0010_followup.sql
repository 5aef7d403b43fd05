-- Follow-up: when the rating question was put and answered, and the due clocks' lookups.
ALTER TABLE requests ADD COLUMN rating_asked_at BIGINT;
ALTER TABLE requests ADD COLUMN rated_at BIGINT;
-- A resident's text is first checked against their open rating question.
CREATE INDEX requests_caller_phone ON requests (caller_phone, status);
-- Figures for a period read requests by intake time.
CREATE INDEX requests_created_at ON requests (created_at);
-- The monthly ranking sums the ledger by time.
CREATE INDEX points_ledger_at ON points_ledger (at, volunteer_id);
