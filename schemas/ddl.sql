-- CNSS EDI back office: PostgreSQL schema. Applied idempotently at every start.
-- Money is BIGINT centimes; periods are CHAR(6) YYYYMM; affiliates and insured numbers are integers.

-- A receipt is a file taken from a drop box: the server renamed it out of the depositor's reach
-- (<inbox>/.processing/<id>). Its id is the order of receipt, on the server's clock and claim
-- order, never the client's modification time. A receipt without an edi_file is not judged yet.
CREATE TABLE IF NOT EXISTS receipt (
    id         BIGSERIAL PRIMARY KEY,
    box        TEXT        NOT NULL,            -- the drop-box folder, e.g. 1234567/in; '' = flat
    file_name  TEXT        NOT NULL,            -- as uploaded, unprintable bytes escaped
    usable_name BOOLEAN    NOT NULL,            -- false: not UTF-8, control characters, too long
    size_bytes BIGINT      NOT NULL,
    claimed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

-- A declarant: an SFTP login and the affiliates it may declare for (an employer: one; a group:
-- its companies; a mandated accountant: its clients). Its login names its drop box.
CREATE TABLE IF NOT EXISTS declarant (
    login       TEXT        PRIMARY KEY CHECK (login ~ '^[a-z][a-z0-9_-]{2,31}$'),
    kind        TEXT        NOT NULL CHECK (kind IN ('employer', 'group', 'accountant')),
    affiliates  INTEGER[]   NOT NULL CHECK (cardinality(affiliates) >= 1),
    allow_from  CIDR[]      NOT NULL DEFAULT '{}',   -- empty: any source network
    public_keys TEXT[]      NOT NULL DEFAULT '{}',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Where reminders and notices are announced (the files themselves go to the login's out/).
ALTER TABLE declarant ADD COLUMN IF NOT EXISTS emails TEXT[] NOT NULL DEFAULT '{}';

CREATE TABLE IF NOT EXISTS edi_file (
    id                   BIGSERIAL PRIMARY KEY,
    file_name            TEXT        NOT NULL,
    sha256               CHAR(64)    NOT NULL,
    size_bytes           BIGINT      NOT NULL,
    kind                 TEXT        NOT NULL CHECK (kind IN ('declaration', 'preetabli')),
    status               TEXT        NOT NULL CHECK (status IN ('accepted', 'rejected', 'duplicate')),
    affiliate            INTEGER,
    period               CHAR(6),
    depositor            TEXT,                    -- the login that dropped it; NULL: an operator
    receipt_id           BIGINT UNIQUE REFERENCES receipt (id),  -- NULL: loaded by an operator
    -- Rejected for where, when or under which name it came (drop box, name, date of receipt),
    -- not for its bytes: the same bytes sent again correctly are judged again.
    rejected_for_context BOOLEAN     NOT NULL DEFAULT false,
    duplicate_of         BIGINT REFERENCES edi_file (id),
    anomaly_count        INTEGER     NOT NULL DEFAULT 0,
    blocking_count       INTEGER     NOT NULL DEFAULT 0,
    received_at          TIMESTAMPTZ NOT NULL,
    processed_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    source_path          TEXT        NOT NULL,    -- where it was dropped, relative to the inbox
    archive_path         TEXT        NOT NULL,    -- relative to the archive folder; '' = none
    acknowledgement_path TEXT        NOT NULL,    -- relative to the outbox; '' = none
    acknowledgement_xml  TEXT        NOT NULL,
    finished_at          TIMESTAMPTZ             -- acknowledgement written and input archived
);
-- Databases created before receipts (2026-12) gain the new columns.
ALTER TABLE edi_file ADD COLUMN IF NOT EXISTS depositor TEXT;
ALTER TABLE edi_file ADD COLUMN IF NOT EXISTS receipt_id BIGINT UNIQUE REFERENCES receipt (id);
ALTER TABLE edi_file ADD COLUMN IF NOT EXISTS rejected_for_context BOOLEAN NOT NULL DEFAULT false;
DROP INDEX IF EXISTS edi_file_one_original;
-- A byte-identical re-delivery is a duplicate: only one judgement per content. A rejection for
-- the context is no judgement of the content.
CREATE UNIQUE INDEX IF NOT EXISTS edi_file_one_judgement ON edi_file (sha256)
    WHERE status <> 'duplicate' AND NOT rejected_for_context;
CREATE INDEX IF NOT EXISTS edi_file_unfinished ON edi_file (id) WHERE finished_at IS NULL;
CREATE INDEX IF NOT EXISTS edi_file_period ON edi_file (period, affiliate);

CREATE TABLE IF NOT EXISTS anomaly (
    edi_file_id BIGINT  NOT NULL REFERENCES edi_file (id),
    seq         INTEGER NOT NULL,
    code        TEXT    NOT NULL,
    severity    TEXT    NOT NULL,
    line        INTEGER,
    record      TEXT,
    field       TEXT,
    value       TEXT,
    message     TEXT    NOT NULL,
    PRIMARY KEY (edi_file_id, seq)
);

CREATE TABLE IF NOT EXISTS declaration (
    id            BIGSERIAL PRIMARY KEY,
    edi_file_id   BIGINT  NOT NULL UNIQUE REFERENCES edi_file (id),
    affiliate     INTEGER NOT NULL,
    period        CHAR(6) NOT NULL,
    version       INTEGER NOT NULL,
    -- A corrected declaration supersedes the earlier one, which stays as history.
    superseded_by BIGINT REFERENCES declaration (id) DEFERRABLE INITIALLY DEFERRED,
    receipt_id    BIGINT,                       -- order of receipt: the latest one is current
    employees     INTEGER NOT NULL,
    entrants      INTEGER NOT NULL,
    total_gross   BIGINT  NOT NULL,
    total_capped  BIGINT  NOT NULL,
    employer_due  BIGINT  NOT NULL,
    employee_due  BIGINT  NOT NULL,
    total_due     BIGINT  NOT NULL,
    UNIQUE (affiliate, period, version)
);
ALTER TABLE declaration ADD COLUMN IF NOT EXISTS receipt_id BIGINT;
CREATE UNIQUE INDEX IF NOT EXISTS declaration_current ON declaration (affiliate, period)
    WHERE superseded_by IS NULL;

-- The line tables carry no foreign key and no primary key on purpose: a per-row RI trigger
-- and a b-tree made COPY two to five times slower (measured: 72k and 185k vs 320k rows/s).
-- A line's identity (declaration, line_no) is unique by construction: the loader writes a
-- declaration and all its lines in one transaction, once. BRIN indexes (tiny, cheap to keep
-- up because ids only grow) serve the per-declaration reads of the reconciliation.
CREATE TABLE IF NOT EXISTS declaration_line (
    declaration_id        BIGINT   NOT NULL,
    line_no               INTEGER  NOT NULL,
    block                 CHAR(3)  NOT NULL CHECK (block IN ('B02', 'B04')),
    insured_number        BIGINT   NOT NULL,
    full_name             TEXT     NOT NULL,
    cin                   TEXT,
    children              SMALLINT,
    af_to_pay             BIGINT,
    af_to_deduct          BIGINT,
    af_net                BIGINT,
    af_to_reverse         BIGINT,
    days                  SMALLINT NOT NULL,
    gross_salary          BIGINT   NOT NULL,
    capped_salary         BIGINT   NOT NULL,
    situation             TEXT     NOT NULL,
    control_sum           BIGINT   NOT NULL,
    employer_contribution BIGINT   NOT NULL,
    employee_contribution BIGINT   NOT NULL
);
CREATE INDEX IF NOT EXISTS declaration_line_declaration ON declaration_line
    USING brin (declaration_id);

CREATE TABLE IF NOT EXISTS contribution (
    declaration_id BIGINT NOT NULL REFERENCES declaration (id),
    branch         TEXT   NOT NULL,
    base           BIGINT NOT NULL,
    employer       BIGINT NOT NULL,
    employee       BIGINT NOT NULL,
    PRIMARY KEY (declaration_id, branch)
);

CREATE TABLE IF NOT EXISTS preetabli (
    id          BIGSERIAL PRIMARY KEY,
    edi_file_id BIGINT  NOT NULL UNIQUE REFERENCES edi_file (id),
    affiliate   INTEGER NOT NULL,
    period      CHAR(6) NOT NULL,
    transfer_id BIGINT,
    employees   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS preetabli_period ON preetabli (affiliate, period, id);

CREATE TABLE IF NOT EXISTS preetabli_line (
    preetabli_id   BIGINT   NOT NULL,
    line_no        INTEGER  NOT NULL,
    insured_number BIGINT   NOT NULL,
    full_name      TEXT     NOT NULL,
    children       SMALLINT NOT NULL,
    af_to_pay      BIGINT   NOT NULL,
    af_to_deduct   BIGINT   NOT NULL,
    af_net         BIGINT   NOT NULL
);
-- A b-tree here: each declaration reads its préétabli's lines back, and préétablis are loaded
-- at month end, away from the deadline-day peak.
CREATE INDEX IF NOT EXISTS preetabli_line_preetabli ON preetabli_line (preetabli_id);

-- Payments received, from finance's CSV exports (`cnss-edi payments import`). A file is loaded
-- whole or not at all, and once: its SHA-256 is unique. A payment is its bank reference: a row
-- already loaded from another file (a cumulative export) is skipped, one that differs refuses
-- the file.
CREATE TABLE IF NOT EXISTS payment_file (
    id          BIGSERIAL   PRIMARY KEY,
    sha256      CHAR(64)    NOT NULL UNIQUE,
    file_name   TEXT        NOT NULL,
    rows        INTEGER     NOT NULL,             -- payments in the file
    new_rows    INTEGER     NOT NULL,             -- of which not already loaded
    imported_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS payment (
    reference       TEXT    PRIMARY KEY,
    affiliate       INTEGER NOT NULL,
    period          CHAR(6) NOT NULL,
    amount          BIGINT  NOT NULL CHECK (amount > 0),   -- centimes
    paid_on         DATE    NOT NULL,
    payment_file_id BIGINT  NOT NULL REFERENCES payment_file (id),
    line_no         INTEGER NOT NULL                       -- in that file (1: the header)
);
-- What an employer paid for a period, by date: the penalties read it in that order.
CREATE INDEX IF NOT EXISTS payment_period ON payment (affiliate, period, paid_on);

-- A reminder sent (or being sent, in the transaction that decided it): never twice for the
-- same employer, period and step, whatever reruns, retries or backfills do.
CREATE TABLE IF NOT EXISTS reminder (
    affiliate  INTEGER     NOT NULL,
    period     CHAR(6)     NOT NULL,
    step       SMALLINT    NOT NULL,  -- days before the deadline (0: on the day)
    deadline   DATE        NOT NULL,
    sent_on    DATE        NOT NULL,  -- the run's day
    logins     TEXT[]      NOT NULL,
    emails     INTEGER     NOT NULL,  -- messages handed to the SMTP server
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (affiliate, period, step)
);

-- The monthly reconciliation (cnss-edi reconcile, the edi_reconcile DAG). Each run of a period
-- is kept; the latest one is current (superseded_by IS NULL) and the earlier ones are history.
-- `ran_at` is when the figures were read (one snapshot). The summary is the month in figures.
CREATE TABLE IF NOT EXISTS reconciliation_run (
    id            BIGSERIAL   PRIMARY KEY,
    period        CHAR(6)     NOT NULL,
    ran_at        TIMESTAMPTZ NOT NULL,
    superseded_by BIGINT REFERENCES reconciliation_run (id) DEFERRABLE INITIALLY DEFERRED,
    summary       JSONB       NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS reconciliation_run_current ON reconciliation_run (period)
    WHERE superseded_by IS NULL;

-- One row per employer and run: expected (a préétabli or a declarant account), declared or
-- paying. Money in centimes; difference = paid - due.
CREATE TABLE IF NOT EXISTS reconciliation (
    run_id               BIGINT  NOT NULL REFERENCES reconciliation_run (id),
    affiliate            INTEGER NOT NULL,
    period               CHAR(6) NOT NULL,
    status               TEXT    NOT NULL
        CHECK (status IN ('balanced', 'underpaid', 'overpaid', 'not declared')),
    expected             BOOLEAN NOT NULL,
    declaration_id       BIGINT,              -- the current declaration; NULL: not declared
    declaration_version  INTEGER,
    versions             INTEGER NOT NULL,    -- declarations received (corrections + 1)
    due                  BIGINT  NOT NULL,
    paid                 BIGINT  NOT NULL,
    difference           BIGINT  NOT NULL,
    payments             INTEGER NOT NULL,
    roster_employees     INTEGER,             -- NULL: no préétabli
    declared_employees   INTEGER NOT NULL,
    missing_employees    INTEGER NOT NULL,
    unexpected_employees INTEGER NOT NULL,
    declared_twice       INTEGER NOT NULL,
    totals_differing     TEXT    NOT NULL,    -- declared totals the lines disagree with; '' none
    PRIMARY KEY (run_id, affiliate)
);

-- Who is behind the counts: missing, unexpected, declared_twice (insured numbers only).
CREATE TABLE IF NOT EXISTS reconciliation_employee (
    run_id         BIGINT  NOT NULL REFERENCES reconciliation_run (id),
    affiliate      INTEGER NOT NULL,
    insured_number BIGINT  NOT NULL,
    issue          TEXT    NOT NULL CHECK (issue IN ('missing', 'unexpected', 'declared_twice'))
);
CREATE INDEX IF NOT EXISTS reconciliation_employee_run ON reconciliation_employee (run_id, affiliate);

CREATE TABLE IF NOT EXISTS reconciliation_branch (
    run_id   BIGINT NOT NULL REFERENCES reconciliation_run (id),
    branch   TEXT   NOT NULL,                 -- a branch, or 'unallocated': paid beyond the due
    due      BIGINT NOT NULL,
    received BIGINT NOT NULL,
    PRIMARY KEY (run_id, branch)
);

-- The current result: one row per employer and period. Created once: CREATE OR REPLACE at
-- every start would lock the view against finance's readers each time a worker connects.
DO $$ BEGIN
    IF to_regclass('reconciliation_current') IS NULL THEN
        CREATE VIEW reconciliation_current AS
            SELECT r.* FROM reconciliation r JOIN reconciliation_run u ON u.id = r.run_id
            WHERE u.superseded_by IS NULL;
    END IF;
END $$;

-- Late penalties (cnss_edi.penalty_run): the history of what each employer owed for a period,
-- one row per day the amount changed. A daily run computes every employer and period whose
-- deadline has passed, as of its day (declarations received and payments made by then), and
-- writes a row only where the penalty differs from the latest row before that day: the
-- current penalty of a period is its latest row, a period that never cost anything has none.
-- The computation reads no earlier row, so computing a day again changes nothing and a run
-- that catches up over months reaches the same amounts as one run a month.
CREATE TABLE IF NOT EXISTS penalty (
    affiliate          INTEGER NOT NULL,
    period             CHAR(6) NOT NULL,
    computed_on        DATE    NOT NULL,           -- the day computed for ("as of")
    deadline           DATE    NOT NULL,           -- the period's deadline, extensions included
    late_after         DATE    NOT NULL,           -- penalties run after it
    declaration_id     BIGINT  REFERENCES declaration (id),  -- NULL: not declared by that day
    declared_on        DATE,                       -- first received (Morocco's date)
    employees          INTEGER NOT NULL,           -- of the declaration the astreinte counts
    due                BIGINT  NOT NULL,           -- contributions of the declaration (centimes)
    paid               BIGINT  NOT NULL,           -- paid for the period by computed_on
    months_late        INTEGER NOT NULL,           -- months of delay begun with something unpaid
    majoration_general BIGINT  NOT NULL,
    majoration_amo     BIGINT  NOT NULL,
    majoration         BIGINT  NOT NULL,
    astreinte_months   INTEGER NOT NULL,           -- months begun before it was declared
    astreinte          BIGINT  NOT NULL,
    total              BIGINT  NOT NULL,
    rules              TEXT[]  NOT NULL,           -- ids of the dated rules applied (schemas/)
    notice_name        TEXT,                       -- NULL: nothing owed, no notice
    notice_xml         TEXT,
    notified_at        TIMESTAMPTZ,                -- published in every declarant's out/
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (affiliate, period, computed_on),
    CHECK (majoration = majoration_general + majoration_amo),
    CHECK (total = majoration + astreinte),
    CHECK ((notice_name IS NULL) = (notice_xml IS NULL))
);
CREATE INDEX IF NOT EXISTS penalty_unnotified ON penalty (computed_on)
    WHERE notified_at IS NULL AND notice_name IS NOT NULL;
