-- hotline580 schema (SQLite). Times are Unix milliseconds (UTC); the same on PostgreSQL.

CREATE TABLE residents (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    phone       TEXT NOT NULL UNIQUE,
    address     TEXT NOT NULL DEFAULT '',
    lat         REAL CHECK (lat IS NULL OR (lat BETWEEN -90 AND 90)),
    lon         REAL CHECK (lon IS NULL OR (lon BETWEEN -180 AND 180)),
    language    TEXT NOT NULL DEFAULT 'zh' CHECK (language IN ('zh', 'en')),
    grid        TEXT,
    contact     TEXT CHECK (contact IS NULL OR contact IN ('sms', 'call')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE volunteers (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL,
    phone           TEXT NOT NULL UNIQUE,
    lat             REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon             REAL NOT NULL CHECK (lon BETWEEN -180 AND 180),
    skills          TEXT NOT NULL,            -- ';'-separated categories
    languages       TEXT NOT NULL DEFAULT 'zh',
    max_active      INTEGER NOT NULL DEFAULT 1 CHECK (max_active >= 1),
    available       BOOLEAN NOT NULL DEFAULT TRUE,
    opted_out       BOOLEAN NOT NULL DEFAULT FALSE,
    quiet_hours     TEXT,                     -- NULL: dispatch.quiet_hours; 'off' or '22:00-07:00'
    points          INTEGER NOT NULL DEFAULT 0, -- sum of points_ledger, kept in the same transaction
    last_offered_at INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
-- Matching narrows by a bounding box on these before computing exact distances.
CREATE INDEX volunteers_position ON volunteers (lat, lon);

CREATE TABLE operators (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'operator')),
    created_at    INTEGER NOT NULL
);

CREATE TABLE requests (
    id                INTEGER PRIMARY KEY,
    status            TEXT NOT NULL CHECK (status IN ('new','offering','assigned','done','closed','escalated','cancelled')),
    category          TEXT CHECK (category IS NULL OR category IN ('repair','errands','escort','companion','other','emergency')),
    grade             TEXT CHECK (grade IS NULL OR grade IN ('red','yellow','blue')),
    channel           TEXT NOT NULL CHECK (channel IN ('voice','sms','operator')),
    language          TEXT NOT NULL DEFAULT 'zh' CHECK (language IN ('zh', 'en')),
    description       TEXT,
    recording_url     TEXT,
    transcription     TEXT,
    resident_id       INTEGER REFERENCES residents (id),
    caller_phone      TEXT,
    caller_name       TEXT,           -- what an unknown caller said (or its recording URL)
    address           TEXT,           -- a corrected or new address given during the call
    lat               REAL,
    lon               REAL,
    volunteer_id      INTEGER REFERENCES volunteers (id),
    rating            INTEGER CHECK (rating IS NULL OR rating BETWEEN 1 AND 5),
    complaint         TEXT,
    escalation_reason TEXT CHECK (escalation_reason IS NULL OR escalation_reason IN
                        ('call_back','no_volunteer','sla','unknown_sender','no_keyword','revisit','emergency','delivery_failed','operator')),
    wave              INTEGER NOT NULL DEFAULT 0,
    classified_at     INTEGER,
    accepted_at       INTEGER,
    done_at           INTEGER,
    closed_at         INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX requests_status ON requests (status, id);
CREATE INDEX requests_resident ON requests (resident_id);

CREATE TABLE offers (
    id           INTEGER PRIMARY KEY,
    request_id   INTEGER NOT NULL REFERENCES requests (id),
    volunteer_id INTEGER NOT NULL REFERENCES volunteers (id),
    wave         INTEGER NOT NULL,
    code         TEXT NOT NULL UNIQUE,
    status       TEXT NOT NULL CHECK (status IN ('pending','accepted','declined','expired','withdrawn','failed')),
    distance_m   REAL,
    sent_at      INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    answered_at  INTEGER
);
-- Two volunteers can never both hold the job.
CREATE UNIQUE INDEX offers_one_accepted ON offers (request_id) WHERE status = 'accepted';
-- A volunteer is offered a request at most once.
CREATE UNIQUE INDEX offers_once_per_volunteer ON offers (request_id, volunteer_id);
CREATE INDEX offers_volunteer_status ON offers (volunteer_id, status);

CREATE TABLE outbox (
    id             INTEGER PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('sms', 'call')),
    to_phone       TEXT NOT NULL,
    from_phone     TEXT NOT NULL,
    body           TEXT NOT NULL,      -- the SMS text, or the TwiML URL of a call
    request_id     INTEGER REFERENCES requests (id),
    offer_id       INTEGER REFERENCES offers (id),
    status         TEXT NOT NULL CHECK (status IN ('queued','sending','sent','delivered','failed','undelivered')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    provider_sid   TEXT,
    last_error     TEXT,
    -- set when a send was under way at a crash: it may have gone out already
    maybe_duplicate BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX outbox_request ON outbox (request_id);
CREATE INDEX outbox_provider_sid ON outbox (provider_sid);
CREATE INDEX outbox_status ON outbox (status);

CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    request_id INTEGER REFERENCES requests (id),
    type       TEXT NOT NULL,
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,          -- 'system', 'resident', 'volunteer:7', 'operator:alice'
    data       TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_request ON events (request_id, id);

-- Each inbound call by its CallSid: the IVR's state, so any instance answers any step.
CREATE TABLE calls (
    call_sid    TEXT PRIMARY KEY,
    request_id  INTEGER REFERENCES requests (id),
    from_phone  TEXT NOT NULL,
    direction   TEXT NOT NULL DEFAULT 'inbound' CHECK (direction IN ('inbound', 'outbound')),
    state       TEXT NOT NULL,          -- JSON of the IVR engine's state
    status      TEXT NOT NULL DEFAULT 'in-progress',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Each answered voice step, so a retried webhook gets the same TwiML and has its effect once.
CREATE TABLE call_steps (
    call_sid   TEXT NOT NULL REFERENCES calls (call_sid),
    step       TEXT NOT NULL,
    twiml      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (call_sid, step)
);

-- Each inbound SMS by its MessageSid, so a retry has its effect once.
CREATE TABLE messages (
    message_sid TEXT PRIMARY KEY,
    from_phone  TEXT NOT NULL,
    body        TEXT NOT NULL,
    request_id  INTEGER REFERENCES requests (id),
    received_at INTEGER NOT NULL
);

CREATE TABLE points_ledger (
    id           INTEGER PRIMARY KEY,
    volunteer_id INTEGER NOT NULL REFERENCES volunteers (id),
    request_id   INTEGER REFERENCES requests (id),
    points       INTEGER NOT NULL,
    reason       TEXT NOT NULL,
    at           INTEGER NOT NULL
);
CREATE UNIQUE INDEX points_once_per_request ON points_ledger (volunteer_id, request_id) WHERE request_id IS NOT NULL;

-- Messages "delivered" by the simulated provider, for the demo's phones and for tests.
CREATE TABLE simulated_deliveries (
    id         INTEGER PRIMARY KEY,
    outbox_id  INTEGER REFERENCES outbox (id),
    kind       TEXT NOT NULL,
    to_phone   TEXT NOT NULL,
    from_phone TEXT NOT NULL,
    body       TEXT NOT NULL,
    sid        TEXT NOT NULL UNIQUE,
    at         INTEGER NOT NULL
);

CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    data        TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
);
