package store

import (
	"context"
	"database/sql"
	"fmt"
)

// applicationID marks the file as a passgate database ("PGTE") in the
// SQLite header, so Open refuses to migrate some other program's file.
const applicationID = 0x50475445

// migrations are the schema steps, applied in order, each in its own
// transaction together with PRAGMA user_version = its position (1-based).
// Never edit or reorder a released step: append a new one.
var migrations = []string{
	// 1: initial schema.
	`
CREATE TABLE district (
	id            INTEGER PRIMARY KEY CHECK (id = 1), -- a single row
	district_id   TEXT    NOT NULL CHECK (district_id <> ''),
	name          TEXT    NOT NULL,
	pseudonym_key BLOB    NOT NULL CHECK (length(pseudonym_key) = 32),
	appliance     TEXT    NOT NULL,
	created_ms    INTEGER NOT NULL
) STRICT;

CREATE TABLE keys (
	kid           BLOB    PRIMARY KEY CHECK (length(kid) = 8),
	role          TEXT    NOT NULL CHECK (role IN ('root', 'issuer')),
	alg           INTEGER NOT NULL,
	public        BLOB    NOT NULL CHECK (length(public) > 0),
	private       BLOB,   -- NULL when the key is only trusted here
	cert          BLOB,   -- encoded certificate of an issuer key
	district      TEXT    NOT NULL,
	not_before_ms INTEGER, -- NULL: no bound
	not_after_ms  INTEGER, -- NULL: no bound
	created_ms    INTEGER NOT NULL,
	revoked_ms    INTEGER
) STRICT;

CREATE TABLE users (
	id            INTEGER PRIMARY KEY,
	-- NOCASE: "Admin" and "admin" must not be two accounts.
	username      TEXT    NOT NULL UNIQUE COLLATE NOCASE CHECK (username <> ''),
	role          TEXT    NOT NULL CHECK (role IN ('staff', 'issuer', 'admin')),
	password_hash TEXT    NOT NULL CHECK (password_hash <> ''),
	created_ms    INTEGER NOT NULL,
	disabled_ms   INTEGER
) STRICT;

CREATE TABLE people (
	subject     BLOB    PRIMARY KEY CHECK (length(subject) = 16),
	masked_name TEXT    NOT NULL,
	id_tail     TEXT    NOT NULL,
	color       INTEGER NOT NULL CHECK (color BETWEEN 1 AND 3),
	tested_ms   INTEGER, -- NULL: no negative test on record
	doses       INTEGER NOT NULL CHECK (doses BETWEEN 0 AND 255),
	created_ms  INTEGER NOT NULL,
	updated_ms  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Append-only: who changed whose colour, when and why.
CREATE TABLE status_changes (
	id         INTEGER PRIMARY KEY,
	subject    BLOB    NOT NULL REFERENCES people (subject),
	from_color INTEGER CHECK (from_color BETWEEN 1 AND 3), -- NULL: first status
	to_color   INTEGER NOT NULL CHECK (to_color BETWEEN 1 AND 3),
	reason     TEXT    NOT NULL,
	actor      TEXT    NOT NULL CHECK (actor <> ''),
	at_ms      INTEGER NOT NULL
) STRICT;
CREATE INDEX status_changes_subject ON status_changes (subject, id);
CREATE TRIGGER status_changes_append_only BEFORE UPDATE ON status_changes
BEGIN
	SELECT RAISE(ABORT, 'status_changes is append-only');
END;

CREATE TABLE passes (
	id         BLOB    PRIMARY KEY CHECK (length(id) = 12),
	subject    BLOB    NOT NULL REFERENCES people (subject),
	kid        BLOB    NOT NULL REFERENCES keys (kid),
	kind       INTEGER NOT NULL CHECK (kind IN (1, 2)),
	color      INTEGER NOT NULL CHECK (color BETWEEN 1 AND 3),
	issued_ms  INTEGER NOT NULL,
	expires_ms INTEGER NOT NULL CHECK (expires_ms > issued_ms),
	actor      TEXT    NOT NULL CHECK (actor <> '')
) STRICT, WITHOUT ROWID;
CREATE INDEX passes_subject ON passes (subject, issued_ms);
CREATE INDEX passes_kid ON passes (kid);

-- AUTOINCREMENT: seq is the version of the revocation list that checkers
-- sync from, so a number must never be handed out twice, even after the
-- newest rows are deleted.
CREATE TABLE revocations (
	seq       INTEGER PRIMARY KEY AUTOINCREMENT,
	kind      INTEGER NOT NULL CHECK (kind IN (1, 2, 3)),
	target    BLOB    NOT NULL CHECK (length(target) = CASE kind WHEN 1 THEN 16 WHEN 2 THEN 12 ELSE 8 END),
	before_ms INTEGER CHECK ((kind = 1) = (before_ms IS NOT NULL)),
	reason    TEXT    NOT NULL,
	at_ms     INTEGER NOT NULL
) STRICT;
CREATE INDEX revocations_target ON revocations (target);
CREATE TRIGGER revocations_append_only BEFORE UPDATE ON revocations
BEGIN
	SELECT RAISE(ABORT, 'revocations is append-only');
END;

CREATE TABLE policy (
	id               INTEGER PRIMARY KEY CHECK (id = 1), -- a single row
	colors           INTEGER NOT NULL CHECK (colors BETWEEN 1 AND 14), -- bit c set: colour c allowed
	max_test_age_ms  INTEGER NOT NULL CHECK (max_test_age_ms >= 0), -- 0: no test required
	min_doses        INTEGER NOT NULL CHECK (min_doses BETWEEN 0 AND 255),
	accept_paper     INTEGER NOT NULL CHECK (accept_paper IN (0, 1)),
	repeat_window_ms INTEGER NOT NULL CHECK (repeat_window_ms >= 0),
	clock_skew_ms    INTEGER NOT NULL CHECK (clock_skew_ms >= 0),
	updated_ms       INTEGER NOT NULL,
	updated_by       TEXT    NOT NULL
) STRICT;

CREATE TABLE devices (
	id         INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL UNIQUE CHECK (name <> ''),
	token_hash BLOB    NOT NULL UNIQUE CHECK (length(token_hash) = 32), -- SHA-256 of the token
	created_ms INTEGER NOT NULL,
	revoked_ms INTEGER
) STRICT;

-- The scan log. No name, no payload: a pseudonym and identifiers only.
-- Unknown identifiers are NULL.
CREATE TABLE scans (
	id       INTEGER PRIMARY KEY,
	at_ms    INTEGER NOT NULL,
	source   TEXT    NOT NULL,
	decision TEXT    NOT NULL CHECK (decision IN ('allow', 'deny')),
	reason   TEXT    NOT NULL,
	repeat   INTEGER NOT NULL CHECK (repeat IN (0, 1)),
	pass_id  BLOB    CHECK (length(pass_id) = 12),
	subject  BLOB    CHECK (length(subject) = 16),
	kid      BLOB    CHECK (length(kid) = 8)
) STRICT;
-- LastSeen on every check; partial because undecodable input has no id.
CREATE INDEX scans_pass_at ON scans (pass_id, at_ms) WHERE pass_id IS NOT NULL;
-- Time ranges (exports, retention); decision included so the gate's
-- counters are answered from the index alone.
CREATE INDEX scans_at ON scans (at_ms, decision);
`,
	// 2: staff sessions; document type and phone of residents.
	`
-- A session is known by the SHA-256 of its cookie token: a copy of the
-- database does not hand out live sessions.
CREATE TABLE sessions (
	token_hash   BLOB    PRIMARY KEY CHECK (length(token_hash) = 32),
	user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	created_ms   INTEGER NOT NULL,
	expires_ms   INTEGER NOT NULL,
	last_seen_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_ms);

-- mainland: 18-character resident ID (GB 11643); passport; other.
ALTER TABLE people ADD COLUMN id_type TEXT NOT NULL DEFAULT 'mainland'
	CHECK (id_type IN ('mainland', 'passport', 'other'));
-- Optional, for contacting the resident; never in a pass or a scan.
ALTER TABLE people ADD COLUMN phone TEXT NOT NULL DEFAULT '';
`,
	// 3: scanner inputs configured by an admin.
	`
-- Serial and evdev scanners the appliance reads itself. spec is the
-- device path with its options, as on the command line.
CREATE TABLE inputs (
	name       TEXT    PRIMARY KEY CHECK (name <> '' AND length(name) <= 64),
	kind       TEXT    NOT NULL CHECK (kind IN ('serial', 'evdev')),
	spec       TEXT    NOT NULL CHECK (spec <> '' AND length(spec) <= 512),
	created_ms INTEGER NOT NULL,
	actor      TEXT    NOT NULL
) STRICT;
`,
	// 4: the hash-chained audit trail.
	`
-- Who did what: logins, user, status, pass and policy changes, exports,
-- tracing queries, purges. hash chains each record to the one before it
-- (see auditHash in audit.go), so passgate audit verify finds a record
-- altered, removed or reordered in the file itself; the triggers keep the
-- program (and anyone using SQL through it) from doing so at all, except
-- retention removing the oldest. seq is assigned by the appender as
-- previous + 1, never reused.
CREATE TABLE audit (
	seq       INTEGER PRIMARY KEY,
	at_ms     INTEGER NOT NULL,
	actor     TEXT    NOT NULL CHECK (actor <> ''),
	action    TEXT    NOT NULL CHECK (action <> ''),
	subject   TEXT    NOT NULL,
	detail    TEXT    NOT NULL, -- a JSON object, or '' for none
	prev_hash BLOB    NOT NULL CHECK (length(prev_hash) = 32),
	hash      BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;
CREATE INDEX audit_at ON audit (at_ms);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
	SELECT RAISE(ABORT, 'audit is append-only');
END;
-- Only records at or before the purge boundary (audit_base) may be
-- removed: retention moves the boundary, audited, then deletes.
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
WHEN old.seq > coalesce((SELECT seq FROM audit_base WHERE id = 1), 0)
BEGIN
	SELECT RAISE(ABORT, 'audit is append-only');
END;
-- The newest record, updated with every append: without it, removing
-- the last records would leave a shorter chain that is still whole.
CREATE TABLE audit_head (
	id   INTEGER PRIMARY KEY CHECK (id = 1), -- a single row
	seq  INTEGER NOT NULL,
	hash BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN
	SELECT RAISE(ABORT, 'audit_head cannot be deleted');
END;
-- The last record removed by retention: the chain now starts after it.
-- It only moves forward, and every move is itself an audited purge.
CREATE TABLE audit_base (
	id   INTEGER PRIMARY KEY CHECK (id = 1), -- a single row
	seq  INTEGER NOT NULL,
	hash BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;
CREATE TRIGGER audit_base_no_delete BEFORE DELETE ON audit_base
BEGIN
	SELECT RAISE(ABORT, 'audit_base cannot be deleted');
END;
CREATE TRIGGER audit_base_forward BEFORE UPDATE ON audit_base
WHEN new.seq < old.seq
BEGIN
	SELECT RAISE(ABORT, 'audit_base only moves forward');
END;
`,
	// 5: how long scans are kept.
	`
-- Scans older than this are purged (28 days by default): the log is
-- personal data and is kept no longer than needed.
ALTER TABLE policy ADD COLUMN scan_retention_ms INTEGER NOT NULL DEFAULT 2419200000
	CHECK (scan_retention_ms >= 86400000);
`,
	// 6: contact tracing.
	`
-- Every check of one person in a time window; also the repeat lookup of
-- a pass (its holder's few recent checks), which is why the pass index
-- goes: each index on random keys costs the scan insert path about a
-- quarter of its speed, and one serves both.
DROP INDEX scans_pass_at;
CREATE INDEX scans_subject_at ON scans (subject, at_ms) WHERE subject IS NOT NULL;
-- Everyone checked at one place around a time.
CREATE INDEX scans_source_at ON scans (source, at_ms);
`,
	// 7: how long issued passes and audit records are kept.
	`
-- A pass record is purged this long after the pass expires (90 days by
-- default); an audit record this long after it was written (one year).
ALTER TABLE policy ADD COLUMN pass_retention_ms INTEGER NOT NULL DEFAULT 7776000000
	CHECK (pass_retention_ms >= 86400000);
ALTER TABLE policy ADD COLUMN audit_retention_ms INTEGER NOT NULL DEFAULT 31536000000
	CHECK (audit_retention_ms >= 2592000000);
`,
	// 8: district sync. An enrolled appliance pushes its records to the
	// hub and pulls trust, revocations and policy from it; a hub keeps
	// every appliance's records beside its own.
	`
-- Appliance side. The hub this appliance is enrolled with: one row, or
-- none on a standalone appliance or a hub.
CREATE TABLE sync_hub (
	id            INTEGER PRIMARY KEY CHECK (id = 1), -- a single row
	url           TEXT    NOT NULL,                   -- https://host:port of the hub
	hub_ca        BLOB    NOT NULL,                   -- DER certificate the hub's TLS chain must end in (pinned at enrolment)
	appliance     TEXT    NOT NULL CHECK (appliance <> ''),
	token         BLOB    NOT NULL CHECK (length(token) = 32), -- bearer secret for the sync API
	bundle_key    BLOB    NOT NULL,                   -- private key signing this appliance's bundles
	enrolled_ms   INTEGER NOT NULL
) STRICT;

-- Record streams are numbered by the tables' own ids (scans.id,
-- outbox.seq). A new epoch starts every time the database is opened
-- while enrolled: records written after a restore from backup reuse
-- ids, and the epoch keeps the hub from taking them for records it
-- already holds. An id belongs to the epoch with the greatest *_from
-- at or below it.
CREATE TABLE sync_epochs (
	epoch       BLOB    PRIMARY KEY CHECK (length(epoch) = 16),
	scans_from  INTEGER NOT NULL,
	events_from INTEGER NOT NULL,
	started_ms  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX sync_epochs_scans ON sync_epochs (scans_from);
CREATE INDEX sync_epochs_events ON sync_epochs (events_from);

-- Passes issued, status changes, revocations and audit records made
-- here, bound for the hub. Filled by triggers in the same transaction as
-- the record itself, only while enrolled.
CREATE TABLE outbox (
	seq   INTEGER PRIMARY KEY AUTOINCREMENT,
	kind  TEXT    NOT NULL CHECK (kind IN ('pass', 'status', 'revocation', 'audit')),
	at_ms INTEGER NOT NULL,
	body  TEXT    NOT NULL -- a JSON object (see store/outbox.go)
) STRICT;

-- Revocations pulled from the hub are not sent back to it.
ALTER TABLE revocations ADD COLUMN origin TEXT NOT NULL DEFAULT '';

CREATE TRIGGER outbox_pass AFTER INSERT ON passes
WHEN EXISTS (SELECT 1 FROM sync_hub)
BEGIN
	INSERT INTO outbox (kind, at_ms, body) VALUES ('pass', new.issued_ms, json_object(
		'id', hex(new.id), 'subject', hex(new.subject), 'kid', hex(new.kid), 'kind', new.kind,
		'color', new.color, 'issued_ms', new.issued_ms, 'expires_ms', new.expires_ms, 'actor', new.actor));
END;
-- A status change carries the person's masked name, ID tail and document
-- type (never the ID number), so the hub knows everyone registered in the
-- district and its admins can change their status too.
CREATE TRIGGER outbox_status AFTER INSERT ON status_changes
WHEN EXISTS (SELECT 1 FROM sync_hub)
BEGIN
	INSERT INTO outbox (kind, at_ms, body) SELECT 'status', new.at_ms, json_object(
		'subject', hex(new.subject), 'from_color', new.from_color, 'to_color', new.to_color,
		'reason', new.reason, 'actor', new.actor, 'at_ms', new.at_ms,
		'masked_name', p.masked_name, 'id_tail', p.id_tail, 'id_type', p.id_type,
		'tested_ms', p.tested_ms, 'doses', p.doses)
	FROM people p WHERE p.subject = new.subject;
END;
CREATE TRIGGER outbox_revocation AFTER INSERT ON revocations
WHEN new.origin = '' AND EXISTS (SELECT 1 FROM sync_hub)
BEGIN
	INSERT INTO outbox (kind, at_ms, body) VALUES ('revocation', new.at_ms, json_object(
		'kind', new.kind, 'target', hex(new.target), 'before_ms', new.before_ms,
		'reason', new.reason, 'at_ms', new.at_ms));
END;
CREATE TRIGGER outbox_audit AFTER INSERT ON audit
WHEN EXISTS (SELECT 1 FROM sync_hub)
BEGIN
	INSERT INTO outbox (kind, at_ms, body) VALUES ('audit', new.at_ms, json_object(
		'seq', new.seq, 'at_ms', new.at_ms, 'actor', new.actor, 'action', new.action,
		'subject', new.subject, 'detail', new.detail, 'hash', hex(new.hash)));
END;

-- Appliance side: how far each stream has been acknowledged by the hub,
-- and what has been pulled from it.
CREATE TABLE sync_state (
	id               INTEGER PRIMARY KEY CHECK (id = 1), -- a single row
	scans_acked      INTEGER NOT NULL DEFAULT 0, -- last scans.id the hub holds
	events_acked     INTEGER NOT NULL DEFAULT 0, -- last outbox.seq the hub holds
	revocations_seq  INTEGER NOT NULL DEFAULT 0, -- last hub revocation applied here
	trust_hash       BLOB,                       -- hash of the last trust list applied
	policy_ms        INTEGER NOT NULL DEFAULT 0, -- version of the last hub policy applied
	bundle_in_seq    INTEGER NOT NULL DEFAULT 0, -- last bundle from the hub imported
	bundle_out_seq   INTEGER NOT NULL DEFAULT 0, -- last bundle written for the hub
	last_push_ms     INTEGER,
	last_pull_ms     INTEGER,
	last_error       TEXT    NOT NULL DEFAULT '',
	last_error_ms    INTEGER
) STRICT;

-- Hub side. Appliances enrolled (or being enrolled) with this hub.
CREATE TABLE appliances (
	id              INTEGER PRIMARY KEY,
	name            TEXT    NOT NULL UNIQUE CHECK (name <> '' AND length(name) <= 64),
	may_issue       INTEGER NOT NULL CHECK (may_issue IN (0, 1)),
	code_hash       BLOB    UNIQUE CHECK (length(code_hash) = 32), -- enrolment code; NULL once used
	code_expires_ms INTEGER,
	token_hash      BLOB    UNIQUE CHECK (length(token_hash) = 32), -- sync bearer token; NULL until enrolled
	bundle_key      BLOB,   -- public key of the appliance's bundles
	issuer_kid      BLOB    CHECK (length(issuer_kid) = 8),
	created_ms      INTEGER NOT NULL,
	enrolled_ms     INTEGER,
	retired_ms      INTEGER,
	bundle_in_seq   INTEGER NOT NULL DEFAULT 0, -- last bundle from it imported
	bundle_out_seq  INTEGER NOT NULL DEFAULT 0, -- last bundle written for it
	last_contact_ms INTEGER,
	clock_skew_ms   INTEGER NOT NULL DEFAULT 0, -- its clock minus ours at last contact
	backlog         INTEGER NOT NULL DEFAULT 0, -- records it reported waiting
	revocations_seq INTEGER NOT NULL DEFAULT 0  -- last revocation it reported applied
) STRICT;

-- Exactly once: per appliance, stream and epoch, the last id stored. A
-- batch is stored in the same transaction that moves its mark, so a
-- batch sent again after a lost acknowledgement is not stored twice.
CREATE TABLE sync_marks (
	appliance_id INTEGER NOT NULL REFERENCES appliances (id),
	stream       TEXT    NOT NULL CHECK (stream IN ('scans', 'events')),
	epoch        BLOB    NOT NULL CHECK (length(epoch) = 16),
	mark         INTEGER NOT NULL,
	updated_ms   INTEGER NOT NULL,
	PRIMARY KEY (appliance_id, stream, epoch)
) STRICT, WITHOUT ROWID;

-- Scans logged by enrolled appliances, in the order each sent them.
CREATE TABLE district_scans (
	id           INTEGER PRIMARY KEY,
	appliance_id INTEGER NOT NULL REFERENCES appliances (id),
	seq          INTEGER NOT NULL, -- the appliance's scans.id
	at_ms        INTEGER NOT NULL,
	source       TEXT    NOT NULL,
	decision     TEXT    NOT NULL CHECK (decision IN ('allow', 'deny')),
	reason       TEXT    NOT NULL,
	repeat       INTEGER NOT NULL CHECK (repeat IN (0, 1)),
	pass_id      BLOB    CHECK (length(pass_id) = 12),
	subject      BLOB    CHECK (length(subject) = 16),
	kid          BLOB    CHECK (length(kid) = 8),
	received_ms  INTEGER NOT NULL
) STRICT;
CREATE INDEX district_scans_at ON district_scans (at_ms);
CREATE INDEX district_scans_subject_at ON district_scans (subject, at_ms) WHERE subject IS NOT NULL;
CREATE INDEX district_scans_source_at ON district_scans (appliance_id, source, at_ms);

-- Passes, status changes, revocations and audit records of enrolled
-- appliances, as they sent them.
CREATE TABLE district_events (
	id           INTEGER PRIMARY KEY,
	appliance_id INTEGER NOT NULL REFERENCES appliances (id),
	seq          INTEGER NOT NULL, -- the appliance's outbox.seq
	kind         TEXT    NOT NULL CHECK (kind IN ('pass', 'status', 'revocation', 'audit')),
	at_ms        INTEGER NOT NULL,
	body         TEXT    NOT NULL,
	received_ms  INTEGER NOT NULL
) STRICT;
CREATE INDEX district_events_kind_at ON district_events (kind, at_ms);
`,
	`-- camera: one row the readiness probe rewrites, so /readyz proves the
-- scan log takes a write instead of only taking the lock.
CREATE TABLE write_probe (
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	at_ms INTEGER NOT NULL
) STRICT;
`,
	`-- trust: the rotation record (signed by the root it replaced) that introduced a root
ALTER TABLE keys ADD COLUMN rotation BLOB;
`,
	`
-- enrol: where each enrolment request came from and the SHA-256
-- fingerprint of the issuer key it proved possession of, for the admin.
ALTER TABLE appliances ADD COLUMN enrolled_from TEXT CHECK (length(enrolled_from) <= 300);
ALTER TABLE appliances ADD COLUMN issuer_fpr BLOB CHECK (length(issuer_fpr) = 32);
`,
	`
-- enrol: keys sealed with a key from outside the data directory. Holds
-- the sealed pseudonym key (the district row keeps zeros in its place)
-- and a check value that tells a wrong key from the right one.
CREATE TABLE sealed (
	name TEXT PRIMARY KEY CHECK (name IN ('check', 'pseudonym_key')),
	blob BLOB NOT NULL
) STRICT;
`,
	`
-- audit: the audit trail's Merkle tree and checkpoints, to anchor the
-- trail outside this file (see store/checkpoint.go).
-- The stored hashes of the tree over audit records (tlog's layout: id is
-- tlog.StoredHashIndex). Append-only: a tree hash never changes.
CREATE TABLE audit_tree (
	id   INTEGER PRIMARY KEY,
	hash BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;
CREATE TRIGGER audit_tree_no_update BEFORE UPDATE ON audit_tree
BEGIN
	SELECT RAISE(ABORT, 'audit_tree is append-only');
END;
CREATE TRIGGER audit_tree_no_delete BEFORE DELETE ON audit_tree
BEGIN
	SELECT RAISE(ABORT, 'audit_tree is append-only');
END;

-- A standalone appliance's checkpoint-signing key (Ed25519 seed ‖
-- public); an enrolled one signs with its bundle key.
CREATE TABLE audit_key (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	private    BLOB    NOT NULL CHECK (length(private) >= 64), -- 64: clear; longer: sealed
	created_ms INTEGER NOT NULL
) STRICT;

-- Hub side: per appliance, the newest checkpoint accepted (proven
-- consistent with the one before it; NULL before the first) and how far
-- the chain of the audit records it pushed (district_events) was checked.
CREATE TABLE appliance_checkpoints (
	appliance_id INTEGER PRIMARY KEY REFERENCES appliances (id),
	size         INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0),
	root         BLOB    CHECK (length(root) = 32),
	note         BLOB,
	received_ms  INTEGER,
	chain_row    INTEGER NOT NULL DEFAULT 0, -- last district_events.id checked
	chain_seq    INTEGER NOT NULL DEFAULT 0, -- its audit seq
	chain_hash   BLOB,                       -- its chain hash
	status_row   INTEGER NOT NULL DEFAULT 0  -- last status event matched to its audit record
) STRICT;

-- Hub side: appliances whose trail was found rewritten, rolled back or
-- signed wrongly. Shown on the status page and /readyz.
CREATE TABLE checkpoint_alarms (
	id           INTEGER PRIMARY KEY,
	appliance_id INTEGER NOT NULL REFERENCES appliances (id),
	at_ms        INTEGER NOT NULL,
	reason       TEXT    NOT NULL
) STRICT;
`,
	`-- gate: entrances of scanner inputs, and how long a gate screen holds a result
-- A gate screen shows in its decision panel only the checks of its own
-- entrance; an admin says which entrance each appliance input and API
-- device stands at. source is the scan source the input logs under.
CREATE TABLE input_entrances (
	source     TEXT    PRIMARY KEY CHECK (source <> '' AND length(source) <= 64),
	entrance   TEXT    NOT NULL CHECK (entrance <> '' AND length(entrance) <= 64),
	updated_ms INTEGER NOT NULL,
	actor      TEXT    NOT NULL
) STRICT;
-- After this long a result leaves the panel, so the next person never sees
-- the previous one's answer.
ALTER TABLE policy ADD COLUMN gate_hold_ms INTEGER NOT NULL DEFAULT 8000
	CHECK (gate_hold_ms BETWEEN 2000 AND 60000);
`,
	`
-- roles: appliance roles enforced at the hub; a gate holds no pseudonym key.
-- The district table is rebuilt (SQLite cannot alter a CHECK) so that the
-- district of a gate has no pseudonym key: the key turns an ID number into
-- a pseudonym, and enumerating the ID space with it turns one back.
-- Secure delete while the old table is dropped: a gate enrolled before
-- roles drops its key, and its bytes must not stay in free pages.
PRAGMA secure_delete = ON;
CREATE TABLE district_old AS SELECT * FROM district;
DROP TABLE district;
CREATE TABLE district (
	id            INTEGER PRIMARY KEY CHECK (id = 1), -- a single row
	district_id   TEXT    NOT NULL CHECK (district_id <> ''),
	name          TEXT    NOT NULL,
	pseudonym_key BLOB    CHECK (pseudonym_key IS NULL OR length(pseudonym_key) = 32), -- NULL on a gate
	appliance     TEXT    NOT NULL,
	created_ms    INTEGER NOT NULL
) STRICT;
INSERT INTO district (id, district_id, name, pseudonym_key, appliance, created_ms)
	SELECT id, district_id, name, pseudonym_key, appliance, created_ms FROM district_old;
DROP TABLE district_old;
PRAGMA secure_delete = OFF;

-- Appliance side: the role the hub gave this appliance; NULL until it
-- said (appliances enrolled before roles learn it from the next pull).
ALTER TABLE sync_hub ADD COLUMN role TEXT CHECK (role IN ('gate', 'office'));

-- Hub side: the appliance whose status record first brought the person to
-- the hub, the only appliance whose status changes of the person the hub
-- accepts; NULL: registered at the hub itself. Filled for the people
-- already held from the status records that brought them.
ALTER TABLE people ADD COLUMN registrar INTEGER REFERENCES appliances (id);
UPDATE people SET registrar = (SELECT appliance_id FROM district_events WHERE id = (SELECT min(d.id) FROM district_events d
	WHERE d.kind = 'status' AND upper(d.body ->> 'subject') = hex(people.subject)));
`,
	`
-- review10: the hub looks up who claimed a pass ID (an office may revoke
-- only a pass it issued, and no office may claim another's pass), once
-- per pushed pass record: indexed so a push stays linear in its size.
CREATE INDEX district_events_pass_id ON district_events (upper(body ->> 'id')) WHERE kind = 'pass';
`,
	`
-- dash: the admin's dashboard reads counts kept as checks are logged, not
-- the scan log: a busy day holds hundreds of thousands of scans, and
-- counting them on every view of the page took a third of a second. Each
-- logged scan (an appliance's own, or one an appliance sent its hub) adds
-- one to two small tables in the same transaction. Buckets are aligned to
-- UTC: 5 minutes for the time chart and the reasons, 15 minutes per
-- source, so that a local day starts on a bucket in every time zone in
-- use. The counts hold no personal data. Scans of the last two days are
-- counted at upgrade; the dashboard shows only today.
CREATE TABLE scan_counts_time (
	bucket_ms INTEGER NOT NULL, -- at_ms rounded down to 5 minutes
	decision  TEXT    NOT NULL,
	reason    TEXT    NOT NULL,
	n         INTEGER NOT NULL,
	PRIMARY KEY (bucket_ms, decision, reason)
) STRICT, WITHOUT ROWID;
CREATE TABLE scan_counts_source (
	bucket_ms INTEGER NOT NULL, -- at_ms rounded down to 15 minutes
	appliance INTEGER NOT NULL, -- 0: this appliance; else appliances.id
	source    TEXT    NOT NULL,
	allow     INTEGER NOT NULL,
	deny      INTEGER NOT NULL,
	PRIMARY KEY (bucket_ms, appliance, source)
) STRICT, WITHOUT ROWID;
CREATE TRIGGER scans_count AFTER INSERT ON scans BEGIN
	INSERT INTO scan_counts_time VALUES (NEW.at_ms - NEW.at_ms % 300000, NEW.decision, NEW.reason, 1)
		ON CONFLICT DO UPDATE SET n = n + 1;
	INSERT INTO scan_counts_source VALUES (NEW.at_ms - NEW.at_ms % 900000, 0, NEW.source,
		NEW.decision = 'allow', NEW.decision = 'deny')
		ON CONFLICT DO UPDATE SET allow = allow + excluded.allow, deny = deny + excluded.deny;
END;
CREATE TRIGGER district_scans_count AFTER INSERT ON district_scans BEGIN
	INSERT INTO scan_counts_time VALUES (NEW.at_ms - NEW.at_ms % 300000, NEW.decision, NEW.reason, 1)
		ON CONFLICT DO UPDATE SET n = n + 1;
	INSERT INTO scan_counts_source VALUES (NEW.at_ms - NEW.at_ms % 900000, NEW.appliance_id, NEW.source,
		NEW.decision = 'allow', NEW.decision = 'deny')
		ON CONFLICT DO UPDATE SET allow = allow + excluded.allow, deny = deny + excluded.deny;
END;
INSERT INTO scan_counts_time
	SELECT b, decision, reason, count(*) FROM (
		SELECT at_ms - at_ms % 300000 AS b, decision, reason FROM scans WHERE at_ms >= (unixepoch() - 172800) * 1000
		UNION ALL
		SELECT at_ms - at_ms % 300000, decision, reason FROM district_scans WHERE at_ms >= (unixepoch() - 172800) * 1000)
	GROUP BY 1, 2, 3;
INSERT INTO scan_counts_source
	SELECT b, app, source, sum(decision = 'allow'), sum(decision = 'deny') FROM (
		SELECT at_ms - at_ms % 900000 AS b, 0 AS app, source, decision FROM scans WHERE at_ms >= (unixepoch() - 172800) * 1000
		UNION ALL
		SELECT at_ms - at_ms % 900000, appliance_id, source, decision FROM district_scans WHERE at_ms >= (unixepoch() - 172800) * 1000)
	GROUP BY 1, 2, 3;
`,
	`-- link: how old the oldest record waiting for the hub may get before the
-- status page and /readyz warn (15 minutes unless an admin says otherwise):
-- a gate on a slow or broken uplink must not hold its scans unseen.
ALTER TABLE policy ADD COLUMN backlog_warn_ms INTEGER NOT NULL DEFAULT 900000
	CHECK (backlog_warn_ms BETWEEN 60000 AND 604800000);
`,
	`-- auditpage: the district's time zone is policy, and the audit page's indexes, so that a date typed on a
-- machine set to UTC still means midnight in the district, and every page
-- and file shows the district's clock. An IANA name, checked by the policy's
-- validation; the bound keeps a stray value small.
ALTER TABLE policy ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'Asia/Shanghai'
	CHECK (time_zone <> '' AND length(time_zone) <= 64);
-- The audit page filters by action or actor, newest first, a page at a
-- time: each index holds seq (the rowid), so a page is a short range scan
-- however long the trail.
CREATE INDEX audit_action ON audit (action);
CREATE INDEX audit_actor ON audit (actor);
`,
	`-- restore: a hub's feed generation, drawn anew on every open (the file may
-- be a restored copy whose history went backwards), and on an appliance
-- the generation it last read and when its hub's history last changed.
CREATE TABLE feed_generation (
	id         INTEGER PRIMARY KEY CHECK (id = 1), -- a single row
	generation BLOB    NOT NULL CHECK (length(generation) = 16),
	opened_ms  INTEGER NOT NULL
) STRICT;
ALTER TABLE sync_state ADD COLUMN generation BLOB;
ALTER TABLE sync_state ADD COLUMN history_changed_ms INTEGER;
`,
	`-- stale: the epoch of every scan a hub holds; appliances draining before
-- retirement; and how long an enrolled appliance's lists may go without
-- a pull
-- before its gate screen and /readyz say how old they are (2 minutes by
-- default: it pulls every 2 seconds while the hub answers).
ALTER TABLE policy ADD COLUMN stale_after_ms INTEGER NOT NULL DEFAULT 120000
	CHECK (stale_after_ms >= 5000);

-- Hub side: the epoch of each appliance scan (seq is its id within that
-- epoch), so a hub row can be matched to the appliance's own log; NULL
-- for scans stored before it was kept.
ALTER TABLE district_scans ADD COLUMN epoch BLOB CHECK (epoch IS NULL OR length(epoch) = 16);

-- Draining: an appliance about to be retired issues no new passes and
-- still sends what it holds. Hub side: since when; appliance side: what
-- its hub last said.
ALTER TABLE appliances ADD COLUMN draining_ms INTEGER;
ALTER TABLE sync_hub ADD COLUMN draining INTEGER NOT NULL DEFAULT 0 CHECK (draining IN (0, 1));
`,
	`-- hubret: a hub collects the exactly-once marks of epochs no appliance can
-- still send (CollectSyncMarks). Per appliance and stream it keeps the time
-- before which every record of a collected epoch was logged, so that a
-- late copy of such a record (an appliance restored from an old backup) is
-- taken as held and never stored twice.
CREATE TABLE sync_collected (
	appliance_id INTEGER NOT NULL REFERENCES appliances (id),
	stream       TEXT    NOT NULL CHECK (stream IN ('scans', 'events')),
	before_ms    INTEGER NOT NULL,
	PRIMARY KEY (appliance_id, stream)
) STRICT, WITHOUT ROWID;
`,
	`-- scale: the trust list's version, bumped by the transaction of every
-- change to keys (enrolment, retirement, revocation, root import or
-- rotation, whoever makes it): a hub rebuilds its cached trust list
-- only when the version moved, instead of on every pull.
CREATE TABLE trust_version (
	id      INTEGER PRIMARY KEY CHECK (id = 1), -- a single row
	version INTEGER NOT NULL
) STRICT;
INSERT INTO trust_version (id, version) VALUES (1, 1);
CREATE TRIGGER keys_trust_version_insert AFTER INSERT ON keys
BEGIN
	UPDATE trust_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER keys_trust_version_update AFTER UPDATE ON keys
BEGIN
	UPDATE trust_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER keys_trust_version_delete AFTER DELETE ON keys
BEGIN
	UPDATE trust_version SET version = version + 1 WHERE id = 1;
END;
`,
	`-- city: the city root this passgate trusts. Set at a hub by its admin
-- (after comparing the fingerprint), taken by an appliance from its hub's
-- trust list. With it, another district's root is trusted only through a
-- city record (pass/SPEC.md section 17), kept in that root's keys.cert.
CREATE TABLE city_root (
	id         INTEGER PRIMARY KEY CHECK (id = 1), -- a single row
	city       TEXT    NOT NULL CHECK (city <> '' AND length(city) <= 64),
	kid        BLOB    NOT NULL CHECK (length(kid) = 8),
	alg        INTEGER NOT NULL,
	public     BLOB    NOT NULL CHECK (length(public) > 0),
	created_ms INTEGER NOT NULL
) STRICT;
`,
	`-- cityversion: the city root is part of the trust list a hub hands out,
-- so a change to it moves the trust list's version as a key's does.
CREATE TRIGGER city_root_trust_version_insert AFTER INSERT ON city_root
BEGIN
	UPDATE trust_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER city_root_trust_version_update AFTER UPDATE ON city_root
BEGIN
	UPDATE trust_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER city_root_trust_version_delete AFTER DELETE ON city_root
BEGIN
	UPDATE trust_version SET version = version + 1 WHERE id = 1;
END;
`,
	`-- perf16: the scan writer counts this appliance's scans for the dashboard
-- once per key per group commit (a batch of hundreds of scans holds a
-- handful of keys) instead of by a trigger making two UPSERTs per scan,
-- which cost the writer about 3.5 us of CPU per scan. Scans an
-- appliance sends its hub are still counted by their trigger.
DROP TRIGGER scans_count;
`,
	`-- restorepush: a hub restored from a backup takes back from its appliances
-- the revocations it made after the backup (store/revrestore.go). Hub side:
-- a revocation handed back keeps the number it was first given, as its
-- identity (restored_id), so it is taken back once. Appliance side: the
-- hub's tag of each revocation stored from its feed, the hub's number for
-- it, and the feed generation it was last seen in: one held but not seen
-- in the hub's current generation is one the hub lost.
ALTER TABLE revocations ADD COLUMN restored_id INTEGER;
CREATE UNIQUE INDEX revocations_restored_id ON revocations (restored_id) WHERE restored_id IS NOT NULL;
CREATE TABLE hub_revocation_tags (
	seq        INTEGER PRIMARY KEY REFERENCES revocations (seq) ON DELETE CASCADE,
	hub_id     INTEGER NOT NULL,
	tag        BLOB    NOT NULL CHECK (length(tag) = 16),
	generation BLOB    NOT NULL
) STRICT;
CREATE INDEX hub_revocation_tags_hub_id ON hub_revocation_tags (hub_id);
`,
	`-- perf16idx: the (subject, time) index of tracing and the repeat lookup
-- is built behind the scan log, in bulk, instead of row by row by the
-- scan writer: subjects arrive in random order, so every scan of a group
-- commit dirtied its own index page (about 38 us of the writer's 48 us
-- per scan). scan_subjects holds every scan up to scan_index_mark.mark;
-- an indexer adds the next range of scans, sorted, together with the new
-- mark in one transaction, and every query by subject reads the index up
-- to the mark plus the scans above it (seconds of scans at most). Keys
-- start with the day, so a range lands in the current day's pages
-- however long the log is kept; a query probes each day it covers.
CREATE TABLE scan_subjects (
	day     INTEGER NOT NULL, -- at_ms / 86400000 (UTC days)
	subject BLOB    NOT NULL CHECK (length(subject) = 16),
	at_ms   INTEGER NOT NULL,
	scan_id INTEGER NOT NULL,
	PRIMARY KEY (day, subject, at_ms, scan_id)
) STRICT, WITHOUT ROWID;
CREATE TABLE scan_index_mark (
	id   INTEGER PRIMARY KEY CHECK (id = 1), -- a single row
	mark INTEGER NOT NULL CHECK (mark >= 0)  -- scans.id up to which scan_subjects is complete
) STRICT;
INSERT INTO scan_subjects (day, subject, at_ms, scan_id)
	SELECT at_ms / 86400000, subject, at_ms, id FROM scans WHERE subject IS NOT NULL ORDER BY 1, 2, 3, 4;
INSERT INTO scan_index_mark (id, mark) VALUES (1, coalesce((SELECT max(id) FROM scans), 0));
DROP INDEX scans_subject_at;
-- A deleted scan (retention) leaves the index in the same statement.
CREATE TRIGGER scans_unindex AFTER DELETE ON scans WHEN old.subject IS NOT NULL
BEGIN
	DELETE FROM scan_subjects
	WHERE day = old.at_ms / 86400000 AND subject = old.subject AND at_ms = old.at_ms AND scan_id = old.id;
END;
-- scans.id has no AUTOINCREMENT: once the newest scans are deleted the
-- next ones reuse their ids, which must not fall at or below the mark
-- (neither indexed nor in the tail above it), so the mark comes down.
CREATE TRIGGER scans_unmark AFTER DELETE ON scans
	WHEN old.id > coalesce((SELECT max(id) FROM scans), 0)
BEGIN
	UPDATE scan_index_mark SET mark = coalesce((SELECT max(id) FROM scans), 0)
	WHERE mark > coalesce((SELECT max(id) FROM scans), 0);
END;
`,
	`-- citynats: a hub's link to the city stream (store/citylink.go). city_link
-- holds the last of this district's revocations the stream acknowledged
-- (a crash republishes after it) and the last stream sequence applied
-- here, moved in the transaction that stores what it brought.
-- city_revocations names the district and district sequence of each
-- revocation taken from the city: unique, so a message delivered twice,
-- or published twice, is stored once.
CREATE TABLE city_link (
	id            INTEGER PRIMARY KEY CHECK (id = 1),
	published_seq INTEGER NOT NULL DEFAULT 0,
	published_ms  INTEGER,
	consumed_seq  INTEGER NOT NULL DEFAULT 0,
	consumed_ms   INTEGER
) STRICT;
CREATE TABLE city_revocations (
	seq        INTEGER PRIMARY KEY REFERENCES revocations (seq) ON DELETE CASCADE,
	district   TEXT    NOT NULL CHECK (district <> ''),
	origin_seq INTEGER NOT NULL,
	stream_seq INTEGER NOT NULL,
	UNIQUE (district, origin_seq)
) STRICT;
`,
	`-- citytrace: the city pseudonym key (store/citykey.go): one person has one
-- subject city-wide. Held by the hub and its offices, never by a gate;
-- sealed like the other secrets when the data directory is.
CREATE TABLE city_pseudonym (
	id          INTEGER PRIMARY KEY CHECK (id = 1), -- a single row
	key         BLOB    NOT NULL,
	check_value BLOB    NOT NULL CHECK (length(check_value) = 8),
	since_ms    INTEGER NOT NULL
) STRICT;
-- A person registered under the city subject who was known here under the
-- district subject: a status change of either reaches the other, so a
-- pass issued before the district joined the city is voided with the new.
CREATE TABLE subject_links (
	city_subject     BLOB NOT NULL CHECK (length(city_subject) = 16),
	district_subject BLOB NOT NULL CHECK (length(district_subject) = 16),
	PRIMARY KEY (city_subject, district_subject)
) STRICT, WITHOUT ROWID;
CREATE INDEX subject_links_district ON subject_links (district_subject);
`,
	`-- citytrust: the city link's trust records at a hub. city_trust_link
-- holds the last stream sequence of the trust consumer applied here,
-- moved in the transaction that applies what it brought, so a store
-- restored from an older backup reads the stream again from there.
-- city_trust_published holds the SHA-256 of each of this district's
-- certify records the stream acknowledged, so none is sent every tick.
CREATE TABLE city_trust_link (
	id           INTEGER PRIMARY KEY CHECK (id = 1),
	consumed_seq INTEGER NOT NULL DEFAULT 0,
	consumed_ms  INTEGER
) STRICT;
CREATE TABLE city_trust_published (
	digest       BLOB    PRIMARY KEY CHECK (length(digest) = 32),
	published_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
`,
}

// migrate brings the schema up to date. Every pending step runs in one
// immediate transaction that first re-reads user_version, so two
// processes opening the same new file at once apply each step once; a
// step that fails leaves the file as it was, never part-way between two
// versions; and a new file costs one commit instead of one per step.
func (db *DB) migrate(ctx context.Context) error {
	err := db.update(ctx, func(tx *sql.Tx) error {
		var version, appID int
		if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
			return err
		}
		switch {
		case version > len(migrations):
			return fmt.Errorf("%w: file is at version %d, this program knows up to %d", ErrSchemaTooNew, version, len(migrations))
		case version == 0:
			if err := checkEmpty(ctx, tx); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", applicationID)); err != nil {
				return err
			}
		case appID != applicationID:
			return fmt.Errorf("not a passgate database (application_id %#x)", appID)
		case version == len(migrations):
			return nil
		}
		for ; version < len(migrations); version++ {
			if _, err := tx.ExecContext(ctx, migrations[version]); err != nil {
				return fmt.Errorf("migration %d: %w", version+1, err)
			}
		}
		// PRAGMA takes no parameters; version is an int from this code.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", version)); err != nil {
			return fmt.Errorf("migration %d: %w", version, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// checkEmpty refuses to lay the schema over a file that already has
// tables: it belongs to something else.
func checkEmpty(ctx context.Context, tx *sql.Tx) error {
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("not a passgate database: version 0 but %d schema objects", n)
	}
	return nil
}
