-- Purge (`hotline580 purge`): a purged request keeps its resident's grid (the
-- link to the resident is removed) and says when it was purged.
ALTER TABLE requests ADD COLUMN grid TEXT;
ALTER TABLE requests ADD COLUMN purged_at INTEGER;
