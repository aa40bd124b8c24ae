package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Bundles: the sync of one direction as a signed file, for appliances
// with no network. The file format is the hub package's; here are the
// sequence numbers that make every bundle importable once, and the
// transactions that read and store what bundles carry.
//
// Each direction of each appliance numbers its bundles 1, 2, 3...: the
// writer counts in *_out_seq, the reader keeps the last it imported in
// *_in_seq and refuses any bundle at or below it. A later bundle always
// carries everything an earlier one did that is still needed (an up
// bundle starts at what the hub acknowledged, a down bundle carries the
// whole increment), so a bundle that arrives after a newer one was
// imported is simply refused, and nothing is lost.

// Errors of bundle import, wrapped with the detail.
var (
	// ErrBundleReplayed: this bundle, or a newer one from the same
	// sender, was imported already.
	ErrBundleReplayed = errors.New("bundle already imported")
	// ErrBundleForeign: the bundle is for another district, another
	// appliance, or from an appliance this hub does not know.
	ErrBundleForeign = errors.New("bundle is not for this passgate")
)

// UpBundle is what an enrolled appliance puts in a bundle for its hub:
// every record after what the hub acknowledged (several runs, one epoch
// each) and how far it has applied the hub's feed.
type UpBundle struct {
	Seq       int64
	District  string
	Appliance string
	BundleKey []byte // the private key that signs it (sync_hub.bundle_key)
	Scans     []*ScanRun
	Events    []*EventRun
	Backlog   int64 // records left for a later bundle
	Feed      FeedState
	// InSeq is the last bundle from the hub imported here. The hub moves
	// its own numbering past it: restored from an older backup, it would
	// otherwise number its next bundles as ones already imported here.
	InSeq int64
}

// Records counts the records in the bundle.
func (b *UpBundle) Records() int {
	n := 0
	for _, r := range b.Scans {
		n += len(r.Records)
	}
	for _, r := range b.Events {
		n += len(r.Records)
	}
	return n
}

// PrepareUpBundle numbers the next bundle for the hub and reads what it
// carries: runs of at most runScans scans and runEvents outbox records,
// up to maxRecords records in all (the rest waits for a later bundle,
// counted in Backlog). ErrNotEnrolled on a standalone appliance or a hub.
//
// The number is taken in its own short transaction and the records are
// read from a snapshot afterwards, so a large bundle never holds the
// write lock the gate's scan log needs. A number taken for a bundle that
// is then not written is only a gap in the numbering, which import
// allows.
func (db *DB) PrepareUpBundle(ctx context.Context, runScans, runEvents, maxRecords int) (*UpBundle, error) {
	if runScans <= 0 || runEvents <= 0 || maxRecords <= 0 {
		return nil, fmt.Errorf("prepare bundle: %w: sizes %d, %d, %d", ErrInvalid, runScans, runEvents, maxRecords)
	}
	if err := db.StartSyncing(ctx); err != nil {
		return nil, fmt.Errorf("prepare bundle: %w", err)
	}
	b := &UpBundle{}
	err := db.update(ctx, func(tx *sql.Tx) error {
		if _, err := readCursor(ctx, tx); err != nil {
			return err
		}
		if err := saveBundleOutSeq(ctx, tx); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT bundle_out_seq FROM sync_state WHERE id = 1`).Scan(&b.Seq)
	})
	if err != nil {
		return nil, fmt.Errorf("prepare bundle: %w", err)
	}
	err = db.view(ctx, func(tx *sql.Tx) error {
		d, err := findDistrict(ctx, tx)
		if err != nil {
			return err
		}
		b.District = d.ID
		if err := tx.QueryRowContext(ctx, `SELECT appliance, bundle_key FROM sync_hub WHERE id = 1`).Scan(&b.Appliance, &b.BundleKey); err != nil {
			return mapErr(err)
		}
		if b.BundleKey, err = db.unseal(bundleKeyLabel, b.BundleKey); err != nil {
			return err
		}
		cur, err := readCursor(ctx, tx)
		if err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, `SELECT revocations_seq, trust_hash, policy_ms, bundle_in_seq FROM sync_state WHERE id = 1`).
			Scan(&b.Feed.RevocationsSeq, &b.Feed.TrustHash, &b.Feed.PolicyVersion, &b.InSeq)
		if err != nil {
			return err
		}
		// Scans first: they are most of the records, and the ones
		// retention waits on.
		left := maxRecords
		after := cur.scansAcked
		for left > 0 {
			run, err := nextScans(ctx, tx, after, min(runScans, left))
			if err != nil {
				return fmt.Errorf("scans: %w", err)
			}
			if run == nil {
				break
			}
			b.Scans = append(b.Scans, run)
			left -= len(run.Records)
			after = run.Records[len(run.Records)-1].ID
		}
		scansAfter := after
		after = cur.eventsAcked
		for left > 0 {
			run, err := nextEvents(ctx, tx, after, min(runEvents, left))
			if err != nil {
				return fmt.Errorf("events: %w", err)
			}
			if run == nil {
				break
			}
			b.Events = append(b.Events, run)
			left -= len(run.Records)
			after = run.Records[len(run.Records)-1].Seq
		}
		b.Backlog, err = backlogAfter(ctx, tx, scansAfter, after)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("prepare bundle %d: %w", b.Seq, err)
	}
	return b, nil
}

// saveBundleOutSeq moves the appliance's bundle counter on by one.
func saveBundleOutSeq(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO sync_state (id, bundle_out_seq) VALUES (1, 1)
		ON CONFLICT (id) DO UPDATE SET bundle_out_seq = bundle_out_seq + 1`)
	return err
}

// UpImport is an appliance's bundle as the hub stores it.
type UpImport struct {
	Appliance string
	Seq       int64
	// WrittenAt is the appliance's clock when it wrote the bundle. It is
	// reported, never compared with the hub's clock for skew: a bundle
	// spends hours or days in transit, and only the online exchange
	// measures an appliance's clock.
	WrittenAt time.Time
	Backlog   int64
	Scans     []*ScanRun
	Events    []*EventRun
	// RevocationsSeq is how far the appliance had applied the hub's
	// revocations when it wrote the bundle: the hub's answer starts there.
	RevocationsSeq int64
	// PeerInSeq is the last bundle from the hub the appliance imported:
	// the hub's numbering for it moves past it.
	PeerInSeq int64
}

// UpImportResult is what an imported bundle changed at the hub.
type UpImportResult struct {
	Appliance *Appliance // as it was before the import
	Stored    int        // records stored
	Skipped   int        // records the hub held already
	Refused   int        // records outside the appliance's role: audited, not stored
	// WrittenAt: see UpImport; Transit is the hub's clock at import
	// minus it (the bundle's time in transit, plus any clock skew).
	WrittenAt time.Time
	Transit   time.Duration
}

// BundleAppliance returns the appliance an up bundle claims to come
// from, for checking its signature: ErrBundleForeign when this hub has
// no such enrolled appliance. A retired appliance's bundle is returned
// too: its records logged before the retirement are still taken.
func (db *DB) BundleAppliance(ctx context.Context, name string) (*Appliance, error) {
	a, err := db.ApplianceByName(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: no appliance named %q is registered at this hub", ErrBundleForeign, name)
	}
	if err != nil {
		return nil, err
	}
	if err := finalBundleUsable(a); err != nil {
		return nil, err
	}
	return a, nil
}

// finalBundleUsable is bundleUsable for an up bundle, which a retired
// appliance may still send: its records logged before the retirement are
// taken (its last scans are not lost with it), later ones refused and
// audited (ImportUpBundle).
func finalBundleUsable(a *Appliance) error {
	if a.Retired() {
		r := *a
		r.RetiredAt = time.Time{}
		return bundleUsable(&r)
	}
	return bundleUsable(a)
}

func bundleUsable(a *Appliance) error {
	switch {
	case a.Retired():
		return fmt.Errorf("%w: appliance %q was retired on %s", ErrRetired, a.Name, a.RetiredAt.UTC().Format(time.RFC3339))
	case !a.Enrolled() || len(a.BundleKey) == 0:
		return fmt.Errorf("%w: appliance %q has not completed enrolment", ErrBundleForeign, a.Name)
	}
	return nil
}

// ImportUpBundle stores an appliance's bundle as pushes of its runs
// would be stored (records above the hub's marks stored, the rest
// skipped, marks moved, the appliance's revocations joined to the hub's
// list), and records its number. bundleKey is the key its signature was
// checked with: if the appliance was re-keyed or retired meanwhile,
// nothing is stored.
//
// Everything that refuses a bundle is checked first, on one snapshot,
// before anything is stored: ErrBundleForeign, ErrRetired,
// ErrBundleReplayed when a bundle with this number or a later one was
// imported, *GapError when a run starts beyond what the hub holds. The
// runs are then stored one transaction each, every run with its mark as
// a push is, so a bundle of hundreds of thousands of records never holds
// the write lock for long: the hub's own gates keep logging their scans
// meanwhile. Should the import stop half way, the bundle is not recorded
// as imported, and importing it again stores the rest exactly once.
//
// A gap means the hub lost records it had acknowledged (it was restored
// from an older backup). The appliance learns it from the hub's next
// bundle, whose marks are below what it holds as acknowledged, and sends
// them again; so that this next bundle is not refused as a replay (the
// restored hub numbers its bundles from the backup's count), the hub's
// numbering still moves past the last bundle the appliance imported.
func (db *DB) ImportUpBundle(ctx context.Context, in *UpImport, bundleKey []byte) (*UpImportResult, error) {
	if in == nil {
		return nil, fmt.Errorf("import bundle: %w: nothing to import", ErrInvalid)
	}
	for _, r := range in.Scans {
		if r == nil {
			return nil, fmt.Errorf("import bundle: %w: missing run", ErrInvalid)
		}
		if err := CheckScanRun(r); err != nil {
			return nil, fmt.Errorf("import bundle: %w", err)
		}
	}
	for _, r := range in.Events {
		if r == nil {
			return nil, fmt.Errorf("import bundle: %w: missing run", ErrInvalid)
		}
		if err := CheckEventRun(r); err != nil {
			return nil, fmt.Errorf("import bundle: %w", err)
		}
	}
	res := &UpImportResult{}
	err := db.view(ctx, func(tx *sql.Tx) error {
		a, err := upBundleAppliance(ctx, tx, in, bundleKey)
		if err != nil {
			return err
		}
		res.Appliance = a
		return checkUpGaps(ctx, tx, a.ID, in)
	})
	if err != nil {
		var gap *GapError
		if errors.As(err, &gap) && in.PeerInSeq > 0 {
			if uerr := db.update(ctx, func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `UPDATE appliances SET bundle_out_seq = max(bundle_out_seq, ?)
					WHERE name = ? AND retired_ms IS NULL`, in.PeerInSeq, in.Appliance)
				return err
			}); uerr != nil {
				err = errors.Join(err, uerr)
			}
		}
		return nil, fmt.Errorf("import bundle %d from %q: %w", in.Seq, in.Appliance, err)
	}

	ir := &IngestResult{}
	inTx := func(ingest func(tx *sql.Tx, a *Appliance, now time.Time) error) error {
		return db.update(ctx, func(tx *sql.Tx) error {
			// Checked again in every transaction: the appliance may be
			// retired, or the same bundle imported by another process,
			// while this one runs.
			a, err := upBundleAppliance(ctx, tx, in, bundleKey)
			if err != nil {
				return err
			}
			return ingest(tx, a, db.now())
		})
	}
	for _, r := range in.Scans {
		err = inTx(func(tx *sql.Tx, a *Appliance, now time.Time) error {
			if a.Retired() {
				return ingestFinalScans(ctx, tx, a, r, now, ir)
			}
			_, err := ingestScans(ctx, tx, a.ID, r, now, ir)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("import bundle %d from %q: %w", in.Seq, in.Appliance, err)
		}
	}
	for _, r := range in.Events {
		err = inTx(func(tx *sql.Tx, a *Appliance, now time.Time) error {
			_, err := ingestEvents(ctx, tx, a, r, now, 0, ir)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("import bundle %d from %q: %w", in.Seq, in.Appliance, err)
		}
	}
	res.Stored, res.Skipped, res.Refused = ir.Stored, ir.Skipped, ir.Refused
	err = inTx(func(tx *sql.Tx, a *Appliance, now time.Time) error {
		if !in.WrittenAt.IsZero() {
			res.WrittenAt, res.Transit = in.WrittenAt, now.Sub(in.WrittenAt)
		}
		// clock_skew_ms is left as the last online exchange measured it.
		// revocations_seq is set to what the appliance reports, not
		// kept at the maximum: if it was restored from an older backup it
		// needs the revocations again, and the answer bundle starts there.
		_, err := tx.ExecContext(ctx, `UPDATE appliances SET bundle_in_seq = ?, bundle_out_seq = max(bundle_out_seq, ?),
			last_contact_ms = ?, backlog = ?, revocations_seq = ? WHERE id = ?`,
			in.Seq, max(in.PeerInSeq, 0), now.UnixMilli(), max(in.Backlog, 0), max(in.RevocationsSeq, 0), a.ID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("import bundle %d from %q: %w", in.Seq, in.Appliance, err)
	}
	return res, nil
}

// refuseAfterRetirement: a retired appliance's final bundle carries a
// record it logged after its retirement.
const refuseAfterRetirement refusal = "logged after the appliance was retired"

// ingestFinalScans stores a run of a retired appliance's final bundle:
// the scans up to the first one logged after the retirement are stored
// as a push would store them; that one and every later one (whatever
// its time: the clock that wrote it is no longer trusted) are refused,
// with one audit record for the run, and the mark moves past them so a
// bundle written again does not bring them back.
func ingestFinalScans(ctx context.Context, tx *sql.Tx, a *Appliance, r *ScanRun, now time.Time, res *IngestResult) error {
	cut := len(r.Records)
	for i, sc := range r.Records {
		if sc.At.After(a.RetiredAt) {
			cut = i
			break
		}
	}
	mark, _, err := startMark(ctx, tx, a.ID, StreamScans, r.Epoch, r.From, len(r.Records),
		func(i int) (int64, time.Time) { return r.Records[i].ID, r.Records[i].At })
	if err != nil {
		return err
	}
	if cut > 0 {
		if mark, err = ingestScans(ctx, tx, a.ID, &ScanRun{Epoch: r.Epoch, From: r.From, Records: r.Records[:cut]}, now, res); err != nil {
			return err
		}
	}
	late := r.Records[cut:]
	for len(late) > 0 && late[0].ID <= mark {
		late = late[1:] // held already
		res.Skipped++
	}
	if len(late) == 0 {
		return nil
	}
	first, last := late[0], late[len(late)-1]
	err = appendAudit(ctx, tx, &AuditRecord{Actor: ActorSync, Action: AuditRecordRefused, Subject: a.Name,
		Detail: AuditDetail(map[string]any{"appliance": a.Name, "role": a.Role, "kind": "scans",
			"first_seq": first.ID, "last_seq": last.ID, "count": len(late), "first_at_ms": first.At.UnixMilli(),
			"retired_ms": a.RetiredAt.UnixMilli(), "why": string(refuseAfterRetirement)})}, now)
	if err != nil {
		return err
	}
	res.Refused += len(late)
	return writeMark(ctx, tx, a.ID, StreamScans, r.Epoch, last.ID, now)
}

// upBundleAppliance checks that the bundle's appliance is enrolled here,
// not retired, still has the key the bundle was verified with, and has
// not had this bundle or a later one imported.
func upBundleAppliance(ctx context.Context, tx *sql.Tx, in *UpImport, bundleKey []byte) (*Appliance, error) {
	a, err := scanAppliance(tx.QueryRowContext(ctx, `SELECT `+applianceColumns+` FROM appliances WHERE name = ?`, in.Appliance))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: no appliance named %q is registered at this hub", ErrBundleForeign, in.Appliance)
	}
	if err != nil {
		return nil, err
	}
	if err := finalBundleUsable(a); err != nil {
		return nil, err
	}
	if !bytes.Equal(a.BundleKey, bundleKey) {
		return nil, fmt.Errorf("%w: the bundle key of %q changed while the bundle was checked", ErrBundleForeign, a.Name)
	}
	if in.Seq <= a.BundleInSeq {
		return nil, fmt.Errorf("%w: bundle %d from %q (the last imported from it is %d)", ErrBundleReplayed, in.Seq, a.Name, a.BundleInSeq)
	}
	return a, nil
}

// checkUpGaps refuses a bundle any of whose runs would leave a hole in
// what the hub holds, following the marks as the runs before it would
// move them: the same test ingestScans and ingestEvents make, done for
// the whole bundle before any of it is stored.
func checkUpGaps(ctx context.Context, tx *sql.Tx, applianceID int64, in *UpImport) error {
	marks := map[string]int64{}
	follow := func(stream string, epoch []byte, from, first, last int64, n int, rec func(int) (int64, time.Time)) error {
		key := stream + string(epoch)
		m, ok := marks[key]
		if !ok {
			var err error
			if m, _, err = startMark(ctx, tx, applianceID, stream, epoch, from, n, rec); err != nil {
				return err
			}
		}
		if first > m+1 {
			return &GapError{Stream: stream, Expected: m + 1}
		}
		marks[key] = max(m, last)
		return nil
	}
	for _, r := range in.Scans {
		if err := follow(StreamScans, r.Epoch, r.From, r.Records[0].ID, r.Records[len(r.Records)-1].ID, len(r.Records),
			func(i int) (int64, time.Time) { return r.Records[i].ID, r.Records[i].At }); err != nil {
			return err
		}
	}
	for _, r := range in.Events {
		if err := follow(StreamEvents, r.Epoch, r.From, r.Records[0].Seq, r.Records[len(r.Records)-1].Seq, len(r.Records),
			func(i int) (int64, time.Time) { return r.Records[i].Seq, r.Records[i].At }); err != nil {
			return err
		}
	}
	return nil
}

// BundleMark is the hub's mark of one epoch of one of an appliance's
// streams: it holds every record of the epoch up to Mark.
type BundleMark struct {
	Stream string // StreamScans or StreamEvents
	Epoch  []byte
	Mark   int64
}

// DownBundle is what the hub puts in a bundle for an appliance, apart
// from the feed (built like a pull's answer).
type DownBundle struct {
	Seq       int64
	District  string
	Appliance *Appliance
	Marks     []BundleMark
}

// PrepareDownBundle numbers the next bundle for the named appliance and
// reads the hub's marks for it. ErrBundleForeign for an appliance this
// hub does not know or that has not enrolled; ErrRetired for a retired
// one (it gets nothing more from the district).
func (db *DB) PrepareDownBundle(ctx context.Context, name string) (*DownBundle, error) {
	b := &DownBundle{}
	err := db.update(ctx, func(tx *sql.Tx) error {
		d, err := findDistrict(ctx, tx)
		if err != nil {
			return err
		}
		if err := requireHub(ctx, tx); err != nil {
			return err
		}
		b.District = d.ID
		res, err := tx.ExecContext(ctx, `UPDATE appliances SET bundle_out_seq = bundle_out_seq + 1 WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: no appliance named %q is registered at this hub", ErrBundleForeign, name)
		}
		if b.Appliance, err = scanAppliance(tx.QueryRowContext(ctx, `SELECT `+applianceColumns+` FROM appliances WHERE name = ?`, name)); err != nil {
			return err
		}
		if err := bundleUsable(b.Appliance); err != nil {
			return err
		}
		b.Seq = b.Appliance.BundleOutSeq
		rows, err := tx.QueryContext(ctx, `SELECT stream, epoch, mark FROM sync_marks WHERE appliance_id = ? ORDER BY stream, updated_ms, epoch`, b.Appliance.ID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var m BundleMark
			if err := rows.Scan(&m.Stream, &m.Epoch, &m.Mark); err != nil {
				return err
			}
			b.Marks = append(b.Marks, m)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("prepare bundle for %q: %w", name, err)
	}
	return b, nil
}

// DownImport is a hub's bundle as an appliance checks it before applying
// its feed.
type DownImport struct {
	District  string
	Appliance string
	Seq       int64
	Marks     []BundleMark
	// PeerInSeq is the last bundle from this appliance the hub imported:
	// this appliance's numbering moves past it, so that after a restore
	// from an older backup its next bundle is not taken for a replay.
	PeerInSeq int64
}

// DownImportResult is what a bundle from the hub changed here.
type DownImportResult struct {
	Feed        *FeedResult
	ScansAcked  int64
	EventsAcked int64
	// Resent lists the streams whose acknowledged records the hub no
	// longer holds (it was restored from an older backup): they go again
	// in the next bundle, or, if purged here meanwhile, are lost for good
	// and the rest goes on in a new epoch (Lost).
	Resent []string
	Lost   []string
	// Ahead is set when the hub holds more of an epoch than this
	// appliance has: it was restored from an older backup. Its own
	// records are still sent.
	Ahead bool
}

// CheckDownBundle refuses a bundle from the hub that is not for this
// appliance (ErrBundleForeign) or was imported already
// (ErrBundleReplayed), before anything of it is applied.
func (db *DB) CheckDownBundle(ctx context.Context, in *DownImport) error {
	err := db.view(ctx, func(tx *sql.Tx) error {
		return checkDownBundle(ctx, tx, in)
	})
	if err != nil {
		return fmt.Errorf("check bundle %d: %w", in.Seq, err)
	}
	return nil
}

func checkDownBundle(ctx context.Context, tx *sql.Tx, in *DownImport) error {
	d, err := findDistrict(ctx, tx)
	if err != nil {
		return err
	}
	if _, err := readCursor(ctx, tx); err != nil {
		return err
	}
	var appliance string
	var last int64
	err = tx.QueryRowContext(ctx, `SELECT h.appliance, coalesce(s.bundle_in_seq, 0)
		FROM sync_hub h LEFT JOIN sync_state s ON s.id = 1 WHERE h.id = 1`).Scan(&appliance, &last)
	if err != nil {
		return mapErr(err)
	}
	switch {
	case in.District != d.ID:
		return fmt.Errorf("%w: it is for district %q, this appliance is in %q", ErrBundleForeign, in.District, d.ID)
	case in.Appliance != appliance:
		return fmt.Errorf("%w: it is for appliance %q, this is %q", ErrBundleForeign, in.Appliance, appliance)
	case in.Seq <= last:
		return fmt.Errorf("%w: bundle %d from the hub (the last imported is %d)", ErrBundleReplayed, in.Seq, last)
	}
	return nil
}

// ImportDownBundle applies a bundle from the hub: the feed (ApplyFeed:
// keys, revocations, policy), then, in one transaction that checks the
// bundle again, the hub's marks as acknowledgements of this appliance's
// records (acknowledged outbox rows are deleted) and the bundle's number.
//
// The feed goes first and in its own transaction: applying it again is
// harmless (keys merge, identical revocations are skipped, an older
// policy is ignored), so if the process stops between the two the bundle
// can simply be imported again; the other order could mark a bundle
// imported whose revocations were never applied.
func (db *DB) ImportDownBundle(ctx context.Context, in *DownImport, feed *Feed) (*DownImportResult, error) {
	if in == nil || feed == nil {
		return nil, fmt.Errorf("import bundle: %w: nothing to import", ErrInvalid)
	}
	for _, m := range in.Marks {
		if (m.Stream != StreamScans && m.Stream != StreamEvents) || len(m.Epoch) != EpochSize || m.Mark < 0 {
			return nil, fmt.Errorf("import bundle: %w: mark %q %x %d", ErrInvalid, m.Stream, m.Epoch, m.Mark)
		}
	}
	if err := db.CheckDownBundle(ctx, in); err != nil {
		return nil, fmt.Errorf("import bundle: %w", err)
	}
	res := &DownImportResult{}
	var err error
	if res.Feed, err = db.ApplyFeed(ctx, feed); err != nil {
		return nil, fmt.Errorf("import bundle %d: %w", in.Seq, err)
	}
	type rewind struct {
		stream         string
		from, expected int64
	}
	var rewinds []rewind
	now := db.now()
	err = db.update(ctx, func(tx *sql.Tx) error {
		rewinds = rewinds[:0]
		if err := checkDownBundle(ctx, tx, in); err != nil {
			return err
		}
		cur, err := readCursor(ctx, tx)
		if err != nil {
			return err
		}
		var aheadS, aheadE bool
		if res.ScansAcked, aheadS, err = ackFromMarks(ctx, tx, StreamScans, cur.scansAcked, in.Marks); err != nil {
			return err
		}
		if res.EventsAcked, aheadE, err = ackFromMarks(ctx, tx, StreamEvents, cur.eventsAcked, in.Marks); err != nil {
			return err
		}
		res.Ahead = aheadS || aheadE
		for _, st := range []struct {
			name  string
			acked int64
		}{{StreamScans, cur.scansAcked}, {StreamEvents, cur.eventsAcked}} {
			from, expected, lost, err := hubLost(ctx, tx, st.name, st.acked, in.Marks)
			if err != nil {
				return err
			}
			if lost {
				rewinds = append(rewinds, rewind{st.name, from, expected})
			}
		}
		if err := saveCursor(ctx, tx, res.ScansAcked, res.EventsAcked); err != nil {
			return err
		}
		if res.EventsAcked > cur.eventsAcked {
			if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE seq <= ?`, res.EventsAcked); err != nil {
				return err
			}
		}
		// The hub holding more of this appliance's records is a push
		// completed, as the status page counts it.
		pushed := res.ScansAcked > cur.scansAcked || res.EventsAcked > cur.eventsAcked
		_, err = tx.ExecContext(ctx, `UPDATE sync_state SET bundle_in_seq = ?, bundle_out_seq = max(bundle_out_seq, ?),
			last_push_ms = CASE WHEN ? THEN ? ELSE last_push_ms END WHERE id = 1`, in.Seq, max(in.PeerInSeq, 0), pushed, now.UnixMilli())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("import bundle %d: %w", in.Seq, err)
	}
	// After the bundle is recorded: moving the acknowledged ids back
	// only makes records go again, which the hub skips if it has them.
	for _, r := range rewinds {
		resent, err := db.RewindPush(ctx, r.stream, r.from, r.expected)
		if err != nil {
			return nil, fmt.Errorf("import bundle %d: %w", in.Seq, err)
		}
		if resent {
			res.Resent = append(res.Resent, r.stream)
		} else {
			res.Lost = append(res.Lost, r.stream)
		}
	}
	return res, nil
}

// hubLost finds the first record this appliance holds as acknowledged
// that the hub's marks say it does not hold: in the first epoch (in id
// order) whose mark, or its start when the hub has no mark of it, is
// below the acknowledged ids within it. It returns that epoch's start
// and the id the hub expects next, as a gap answer would.
func hubLost(ctx context.Context, tx *sql.Tx, stream string, acked int64, marks []BundleMark) (from, expected int64, lost bool, err error) {
	byEpoch := map[string]int64{}
	for _, m := range marks {
		if m.Stream == stream {
			byEpoch[string(m.Epoch)] = m.Mark
		}
	}
	for pos := int64(1); pos <= acked; {
		e, next, err := epochOf(ctx, tx, stream, pos)
		if errors.Is(err, ErrNotFound) {
			// Ids before the first epoch: none were ever sent.
			var first sql.NullInt64
			col := map[string]string{StreamScans: "scans_from", StreamEvents: "events_from"}[stream]
			if err := tx.QueryRowContext(ctx, `SELECT min(`+col+`) FROM sync_epochs WHERE `+col+` > ?`, pos).Scan(&first); err != nil {
				return 0, 0, false, err
			}
			if !first.Valid {
				return 0, 0, false, nil
			}
			pos = first.Int64
			continue
		}
		if err != nil {
			return 0, 0, false, err
		}
		start := e.ScansFrom
		if stream == StreamEvents {
			start = e.EventsFrom
		}
		end := acked
		if next > 0 {
			end = min(end, next-1)
		}
		mark, ok := byEpoch[string(e.ID)]
		if !ok {
			mark = start - 1
		}
		if mark < end {
			return start, mark + 1, true, nil
		}
		if next == 0 {
			break
		}
		pos = next
	}
	return 0, 0, false, nil
}

// ackFromMarks moves a stream's acknowledged id forward through the
// epochs the hub holds: from the epoch of the next unacknowledged id, as
// far as the hub's mark for it, and on into the next epoch when the mark
// reaches the end of this one. It never passes the last id handed out
// here nor the end of the epoch the mark belongs to: a mark beyond them,
// or of an epoch unknown here, is the hub holding records of a timeline
// this copy lost; ahead is set, and this appliance's own records are
// still sent.
func ackFromMarks(ctx context.Context, tx *sql.Tx, stream string, acked int64, marks []BundleMark) (int64, bool, error) {
	byEpoch := map[string]int64{}
	for _, m := range marks {
		if m.Stream == stream {
			byEpoch[string(m.Epoch)] = m.Mark
		}
	}
	q := `SELECT coalesce((SELECT max(id) FROM scans), 0)`
	if stream == StreamEvents {
		q = `SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0), coalesce((SELECT max(seq) FROM outbox), 0))`
	}
	var last int64
	if err := tx.QueryRowContext(ctx, q).Scan(&last); err != nil {
		return 0, false, err
	}
	// A mark of an epoch this file never had is the hub holding records
	// of a timeline this copy lost (it was restored from an older backup).
	ahead := false
	for epoch := range byEpoch {
		var known bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sync_epochs WHERE epoch = ?)`, []byte(epoch)).Scan(&known); err != nil {
			return 0, false, err
		}
		ahead = ahead || !known
	}
	for acked < last {
		e, next, err := epochOf(ctx, tx, stream, acked+1)
		if errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil {
			return 0, false, err
		}
		mark, ok := byEpoch[string(e.ID)]
		if !ok || mark <= acked {
			break
		}
		end := last
		if next > 0 {
			end = min(end, next-1)
		}
		if mark > end {
			ahead = true
		}
		acked = min(mark, end)
		if next == 0 || acked < next-1 {
			break
		}
	}
	return acked, ahead, nil
}
