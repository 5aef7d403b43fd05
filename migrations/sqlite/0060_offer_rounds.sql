-- An operator's "offer again" starts a new round of offers: volunteers who
-- declined, let it expire or were withdrawn in an earlier round may be asked
-- again; within one round a volunteer is asked once, and never holds two
-- pending offers for one request. One accepted offer per request stays.
ALTER TABLE requests ADD COLUMN offer_round INTEGER NOT NULL DEFAULT 1;
ALTER TABLE offers ADD COLUMN offer_round INTEGER NOT NULL DEFAULT 1;
DROP INDEX offers_once_per_volunteer;
CREATE UNIQUE INDEX offers_once_per_round ON offers (request_id, volunteer_id, offer_round);
CREATE UNIQUE INDEX offers_one_pending ON offers (request_id, volunteer_id) WHERE status = 'pending';
