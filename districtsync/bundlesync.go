package districtsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"passgate/pass"
	"passgate/store"
)

// Bundle export and import: what `passgate bundle` runs. An appliance's
// bundle carries what a push would (every record after what the hub
// acknowledged); the hub's carries what a pull would answer (trust list,
// every revocation after what the appliance last reported, the policy)
// and the hub's marks, from which the appliance learns which of its
// records the hub holds.

// Bounds on what one bundle carries.
const (
	// maxBundleRecords bounds the records of an up bundle: about 70 MB
	// of JSON for scans with pass, subject and key ids, well under
	// maxBundlePlain, and about 1 GB of memory at its peak to write (a
	// million overflowed maxBundlePlain). The rest goes in the next
	// bundle, once the hub's answer acknowledged these.
	maxBundleRecords = 500_000
	// maxBundleRevocations bounds the revocations of a down bundle; the
	// next bundle continues after them.
	maxBundleRevocations = 1_000_000
)

// ErrBundleDirection: the bundle goes the other way (an appliance's
// bundle brought to an appliance, or the hub's to the hub).
var ErrBundleDirection = errors.New("the bundle is for the other side")

// UpExport tells what ExportUp wrote.
type UpExport struct {
	Header  BundleHeader
	Records int   // records in the bundle
	Backlog int64 // records left for a later bundle
}

// ExportUp writes an enrolled appliance's bundle for its hub to w.
// store.ErrNotEnrolled on a hub or a standalone appliance.
func ExportUp(ctx context.Context, db *store.DB, w io.Writer) (*UpExport, error) {
	for limit := maxBundleRecords; ; limit /= 2 {
		ub, err := db.PrepareUpBundle(ctx, MaxScanBatch, MaxEventBatch, limit)
		if err != nil {
			return nil, err
		}
		key, err := ParseBundleKey(ub.BundleKey)
		if err != nil {
			return nil, fmt.Errorf("this appliance's bundle key: %w", err)
		}
		signer, err := NewBundleSigner(key)
		if err != nil {
			return nil, err
		}
		now := db.Now().UnixMilli()
		p := &UpPayload{Now: now, Backlog: ub.Backlog,
			Feed: PullRequest{Now: now, Backlog: ub.Backlog, RevocationsAfter: ub.Feed.RevocationsSeq,
				TrustHash: ub.Feed.TrustHash, PolicyVersion: ub.Feed.PolicyVersion}}
		p.Pushes = upPushes(ub, now)
		p.DownSeq = ub.InSeq
		p.Checkpoint = auditCheckpoint(ctx, db, 0, slog.New(slog.DiscardHandler))
		h := BundleHeader{Direction: DirectionUp, District: ub.District, Appliance: ub.Appliance, Seq: ub.Seq, Created: now}
		// Encoded in memory first: a bundle over the size limit (audit
		// records with large details) is made again with fewer records
		// rather than written half.
		var buf bytes.Buffer
		err = EncodeBundle(&buf, h, p, signer)
		if errors.Is(err, ErrBundleTooLarge) && limit > 1 {
			continue
		}
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return nil, fmt.Errorf("write bundle: %w", err)
		}
		h.Version, h.KID = BundleVersion, signer.Public().KID[:]
		return &UpExport{Header: h, Records: ub.Records(), Backlog: ub.Backlog}, nil
	}
}

// upPushes lays the bundle's runs out as pushes: the i-th scans run with
// the i-th events run, each within the batch limits the hub accepts.
func upPushes(ub *store.UpBundle, now int64) []PushRequest {
	n := max(len(ub.Scans), len(ub.Events))
	pushes := make([]PushRequest, n)
	for i := range pushes {
		pushes[i].Now = now
		if i < len(ub.Scans) {
			r := ub.Scans[i]
			b := &ScanBatch{Epoch: r.Epoch, From: r.From, Records: make([]ScanRecord, len(r.Records))}
			for j, s := range r.Records {
				b.Records[j] = recordOf(s)
			}
			pushes[i].Scans = b
		}
		if i < len(ub.Events) {
			r := ub.Events[i]
			b := &EventBatch{Epoch: r.Epoch, From: r.From, Records: make([]EventRecord, len(r.Records))}
			for j, e := range r.Records {
				b.Records[j] = EventRecord{Seq: e.Seq, Kind: e.Kind, At: e.At.UnixMilli(), Body: []byte(e.Body)}
			}
			pushes[i].Events = b
		}
	}
	return pushes
}

// DownExport tells what ExportDown wrote.
type DownExport struct {
	Header      BundleHeader
	Revocations int
	Trust       int // keys in the trust list
	Marks       int
}

// ExportDown writes the hub's bundle for the named appliance to w: the
// whole trust list and policy, the revocations after the last one the
// appliance reported applied, and the hub's marks for its records.
// store.ErrBundleForeign for an appliance the hub does not know,
// store.ErrRetired for a retired one.
func ExportDown(ctx context.Context, db *store.DB, appliance string, w io.Writer) (*DownExport, error) {
	root, err := bundleSigningRoot(ctx, db)
	if err != nil {
		return nil, err
	}
	signer, err := NewBundleSigner(root)
	if err != nil {
		return nil, err
	}
	prep, err := db.PrepareDownBundle(ctx, appliance)
	if err != nil {
		return nil, err
	}
	// No trust hash and policy version 0: the whole list and the policy
	// always go, since the hub cannot know what reached the appliance;
	// applying them again changes nothing.
	feed, err := BuildPull(ctx, db, &PullRequest{RevocationsAfter: prep.Appliance.RevocSeq})
	if err != nil {
		return nil, err
	}
	feed.Role, feed.Draining = string(prep.Appliance.Role), !prep.Appliance.DrainingAt.IsZero()
	for feed.More && len(feed.Revocations) < maxBundleRevocations {
		after := feed.Revocations[len(feed.Revocations)-1].Seq
		revs, more, err := db.RevocationsPage(ctx, after, min(MaxRevocationPage, maxBundleRevocations-len(feed.Revocations)))
		if err != nil {
			return nil, err
		}
		for _, r := range revs {
			feed.Revocations = append(feed.Revocations, RevocationToWire(r))
		}
		feed.More = more
	}
	p := &DownPayload{Now: db.Now().UnixMilli(), Feed: *feed, UpSeq: prep.Appliance.BundleInSeq}
	for _, m := range prep.Marks {
		wm := Mark{Epoch: m.Epoch, Mark: m.Mark}
		if m.Stream == store.StreamScans {
			p.ScanMarks = append(p.ScanMarks, wm)
		} else {
			p.EventMarks = append(p.EventMarks, wm)
		}
	}
	h := BundleHeader{Direction: DirectionDown, District: prep.District, Appliance: prep.Appliance.Name, Seq: prep.Seq, Created: p.Now}
	if err := EncodeBundle(w, h, p, signer); err != nil {
		return nil, err
	}
	h.Version, h.KID = BundleVersion, signer.Public().KID[:]
	res := &DownExport{Header: h, Revocations: len(feed.Revocations), Marks: len(prep.Marks)}
	if feed.Trust != nil {
		res.Trust = len(feed.Trust.Keys)
	}
	return res, nil
}

// ImportResult tells what ImportBundle changed.
type ImportResult struct {
	Header BundleHeader
	// Up bundles, at the hub.
	Stored, Skipped int
	Refused         int // records outside the appliance's role: audited, not stored
	// WrittenAt is the appliance's clock when it wrote the bundle, and
	// Transit the hub's clock at import minus it: how long the bundle
	// travelled, not a clock fault (only the online exchange measures
	// an appliance's clock).
	WrittenAt time.Time
	Transit   time.Duration
	// Down bundles, at the appliance.
	Feed        *store.FeedResult
	ScansAcked  int64
	EventsAcked int64
	Ahead       bool
	// Resent and Lost name the streams whose acknowledged records the
	// hub's answer shows it lacks: sent again, or (purged here) not.
	Resent, Lost []string
}

// ImportBundle reads a bundle from r and imports it: an appliance's at
// its hub, the hub's at the appliance it is for. It refuses, changing
// nothing, a bundle that is damaged or truncated (ErrBundleMalformed,
// ErrBundleTruncated, ErrBundleVersion, ErrBundleTooLarge), altered
// (ErrBundleSignature), for another district or appliance or from one
// this hub does not know (store.ErrBundleForeign), from a retired
// appliance (store.ErrRetired), going the wrong way (ErrBundleDirection),
// or imported already (store.ErrBundleReplayed).
func ImportBundle(ctx context.Context, db *store.DB, r io.Reader) (*ImportResult, error) {
	b, err := ReadBundle(r)
	if err != nil {
		return nil, err
	}
	d, err := db.District(ctx)
	if err != nil {
		return nil, err
	}
	if b.Header.District != d.ID {
		return nil, fmt.Errorf("%w: it belongs to district %q, this passgate to %q", store.ErrBundleForeign, b.Header.District, d.ID)
	}
	_, err = db.SyncHubInfo(ctx)
	enrolled := err == nil
	if err != nil && !errors.Is(err, store.ErrNotEnrolled) {
		return nil, err
	}
	switch {
	case b.Header.Direction == DirectionUp && enrolled:
		return nil, fmt.Errorf("%w: it is appliance %q's bundle for the hub, and this passgate is an appliance enrolled with a hub", ErrBundleDirection, b.Header.Appliance)
	case b.Header.Direction == DirectionDown && !enrolled:
		return nil, fmt.Errorf("%w: it is the hub's bundle for appliance %q, and this passgate is not an enrolled appliance", ErrBundleDirection, b.Header.Appliance)
	case b.Header.Direction == DirectionUp:
		return importUp(ctx, db, b)
	}
	return importDown(ctx, db, b, d.ID)
}

func importUp(ctx context.Context, db *store.DB, b *Bundle) (*ImportResult, error) {
	a, err := db.BundleAppliance(ctx, b.Header.Appliance)
	if err != nil {
		return nil, err
	}
	pub, err := ParseBundlePublicKey(a.BundleKey)
	if err != nil {
		return nil, fmt.Errorf("the bundle key registered for %q: %w", a.Name, err)
	}
	if err := b.Verify(pub); err != nil {
		return nil, err
	}
	p, err := b.Up()
	if err != nil {
		return nil, err
	}
	// A replay is refused here already, before the records are
	// converted; the import transaction checks again.
	if b.Header.Seq <= a.BundleInSeq {
		return nil, fmt.Errorf("%w: bundle %d from %q (the last imported from it is %d)", store.ErrBundleReplayed, b.Header.Seq, a.Name, a.BundleInSeq)
	}
	in := &store.UpImport{Appliance: a.Name, Seq: b.Header.Seq, Backlog: max(p.Backlog, 0),
		RevocationsSeq: max(p.Feed.RevocationsAfter, 0), PeerInSeq: p.DownSeq}
	if p.Now > 0 {
		in.WrittenAt = time.UnixMilli(p.Now)
	}
	for i := range p.Pushes {
		ing, err := ingestOf(&p.Pushes[i])
		if err != nil {
			return nil, fmt.Errorf("%w: batch %d: %v", ErrBundleMalformed, i, err)
		}
		if ing.Scans != nil {
			in.Scans = append(in.Scans, ing.Scans)
		}
		if ing.Events != nil {
			in.Events = append(in.Events, ing.Events)
		}
	}
	res, err := db.ImportUpBundle(ctx, in, a.BundleKey)
	if err != nil {
		return nil, err
	}
	checkTrail(ctx, db, slog.Default(), a, p.Checkpoint)
	return &ImportResult{Header: b.Header, Stored: res.Stored, Skipped: res.Skipped, Refused: res.Refused, WrittenAt: res.WrittenAt, Transit: res.Transit}, nil
}

func importDown(ctx context.Context, db *store.DB, b *Bundle, district string) (*ImportResult, error) {
	root, err := bundleRoot(ctx, db, district, b.Header.KID)
	if err != nil {
		return nil, err
	}
	if err := b.Verify(root); err != nil {
		return nil, err
	}
	p, err := b.Down()
	if err != nil {
		return nil, err
	}
	in := &store.DownImport{District: b.Header.District, Appliance: b.Header.Appliance, Seq: b.Header.Seq, PeerInSeq: p.UpSeq}
	if err := db.CheckDownBundle(ctx, in); err != nil {
		return nil, err
	}
	for _, m := range p.ScanMarks {
		in.Marks = append(in.Marks, store.BundleMark{Stream: store.StreamScans, Epoch: m.Epoch, Mark: m.Mark})
	}
	for _, m := range p.EventMarks {
		in.Marks = append(in.Marks, store.BundleMark{Stream: store.StreamEvents, Epoch: m.Epoch, Mark: m.Mark})
	}
	// FeedFromWire bounds revocations to a network page; a bundle holds
	// many pages, bounded by maxBundleRevocations.
	revs := p.Feed.Revocations
	if len(revs) > maxBundleRevocations {
		return nil, fmt.Errorf("%w: %d revocations", ErrBundleMalformed, len(revs))
	}
	p.Feed.Revocations = nil
	feed, err := FeedFromWire(&p.Feed)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBundleMalformed, err)
	}
	for i := range revs {
		feed.Revocations = append(feed.Revocations, RevocationFromWire(&revs[i]))
	}
	if n := len(revs); n > 0 {
		feed.RevocationsSeq = revs[n-1].Seq
	}
	if p.Now > 0 {
		feed.At = time.UnixMilli(p.Now)
	}
	res, err := db.ImportDownBundle(ctx, in, feed)
	if err != nil {
		return nil, err
	}
	return &ImportResult{Header: b.Header, Feed: res.Feed, ScansAcked: res.ScansAcked, EventsAcked: res.EventsAcked,
		Ahead: res.Ahead, Resent: res.Resent, Lost: res.Lost}, nil
}

// bundleRoot is the district root key with the given ID, as this
// appliance trusts it: a root of its own district, not revoked.
func bundleRoot(ctx context.Context, db *store.DB, district string, kid []byte) (*pass.PublicKey, error) {
	roots, err := db.FindKeys(ctx, store.KeyFilter{Role: store.RoleRoot})
	if err != nil {
		return nil, err
	}
	for _, k := range roots {
		if !bytes.Equal(k.KID[:], kid) || k.District != district {
			continue
		}
		if !k.RevokedAt.IsZero() || (!k.NotAfter.IsZero() && db.Now().After(k.NotAfter)) {
			return nil, fmt.Errorf("%w: signed with district root key %x, which is no longer trusted", ErrBundleSignature, kid)
		}
		return pass.ParsePublicKey(k.Alg, k.Public)
	}
	return nil, fmt.Errorf("%w: not signed by a root key of district %q", ErrBundleSignature, district)
}

// bundleSigningRoot is the root that signs the hub's bundles: the oldest
// root of the district still in force. After a rotation that is the old
// root, which every appliance trusts, until its grace ends: the bundle
// carrying the rotation record must verify at an appliance that does not
// know the new root yet.
func bundleSigningRoot(ctx context.Context, db *store.DB) (*pass.PrivateKey, error) {
	d, err := db.District(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := db.FindKeys(ctx, store.KeyFilter{Role: store.RoleRoot, HasPrivate: true})
	if err != nil {
		return nil, err
	}
	now := db.Now()
	for _, k := range keys {
		if k.District == d.ID && k.RevokedAt.IsZero() && (k.NotAfter.IsZero() || now.Before(k.NotAfter)) {
			return pass.ParsePrivateKey(k.Private)
		}
	}
	return districtRoot(ctx, db)
}
