// Package hub is district sync: the hub's side (enrolment, ingest of
// appliances' records, the feed of trust, revocations and policy) and the
// enrolled appliance's side (the client that pushes its records and pulls
// the feed). Bundles carry the same messages as signed files where there
// is no network.
//
// Messages are JSON, gzip-compressed on the wire, over HTTPS whose
// certificate chain is pinned at enrolment; an enrolled appliance
// authenticates with a bearer token it received then.
package districtsync

import "encoding/json"

// API paths, on the hub.
const (
	PathEnrol = "/sync/v1/enroll"
	PathPush  = "/sync/v1/push"
	PathPull  = "/sync/v1/pull"
)

// Limits on what either side accepts: a body larger than maxWire
// compressed or maxPlain decompressed is refused before it is parsed.
const (
	maxWire  = 32 << 20
	maxPlain = 128 << 20
	// MaxScanBatch and MaxEventBatch bound the records in one push.
	MaxScanBatch  = 20000
	MaxEventBatch = 5000
	// MaxRevocationPage bounds the revocations in one pull answer.
	MaxRevocationPage = 5000
)

// EnrolRequest asks the hub to enrol this appliance. Secret is the
// secret half of the enrolment code; the rest are public keys made by
// the appliance, whose private halves never leave it. Each key signs the
// request (EnrolMessage), which proves the appliance holds its private
// half: nobody can have someone else's key, or a key no one holds,
// certified.
type EnrolRequest struct {
	Secret    []byte `json:"secret"`
	IssuerAlg int    `json:"issuer_alg,omitempty"`
	IssuerKey []byte `json:"issuer_key,omitempty"` // raw public key; empty: the appliance only checks
	BundleKey []byte `json:"bundle_key"`           // Ed25519 public key signing its bundles
	Now       int64  `json:"now_ms"`               // the appliance's clock
	IssuerSig []byte `json:"issuer_sig,omitempty"` // the issuer key's signature of EnrolMessage
	BundleSig []byte `json:"bundle_sig"`           // the bundle key's signature of EnrolMessage
}

// EnrolResponse is everything an enrolled appliance starts from.
type EnrolResponse struct {
	District   DistrictInfo `json:"district"`
	Appliance  string       `json:"appliance"`             // its name at the hub
	Role       string       `json:"role,omitempty"`        // "gate" or "office" (store.ApplianceRole); empty from an older hub
	Token      []byte       `json:"token"`                 // bearer token for push and pull
	IssuerCert []byte       `json:"issuer_cert,omitempty"` // the hub root's certificate of IssuerKey
	HubCA      []byte       `json:"hub_ca"`                // DER certificate the hub's TLS chain ends in
	Trust      TrustList    `json:"trust"`
	Policy     PolicyInfo   `json:"policy"`
	Now        int64        `json:"now_ms"`
}

// DistrictInfo is the district an appliance joins.
type DistrictInfo struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// PseudonymKey is secret: one person has one subject district-wide.
	// Sent to offices only: with it, enumerating the ID space turns a
	// pseudonym back into an ID number.
	PseudonymKey []byte `json:"pseudonym_key,omitempty"`
	// CityPseudonymKey is the city's pseudonym key when the district has
	// joined the city: secret, to offices only, as PseudonymKey.
	CityPseudonymKey []byte `json:"city_pseudonym_key,omitempty"`
}

// TrustList is every root and issuer key the hub knows, revoked ones
// included (with when). Hash identifies the list's content, so a pull
// sends the list only when it changed.
type TrustList struct {
	Hash []byte     `json:"hash"`
	Keys []TrustKey `json:"keys"`
	// City is the city root the hub trusts; absent when it trusts none.
	City *CityKey `json:"city,omitempty"`
}

// TrustKey is one key of a trust list: public half only.
type TrustKey struct {
	KID       []byte `json:"kid"`
	Role      string `json:"role"` // "root" or "issuer"
	Alg       int    `json:"alg"`
	Public    []byte `json:"public"`
	Cert      []byte `json:"cert,omitempty"`
	District  string `json:"district"`
	NotBefore int64  `json:"not_before_ms,omitempty"`
	NotAfter  int64  `json:"not_after_ms,omitempty"`
	Revoked   int64  `json:"revoked_ms,omitempty"`
	// Rotation is the record by which the previous root of the
	// district handed over to this root (roots only).
	Rotation []byte `json:"rotation,omitempty"`
}

// PolicyInfo is the district policy. Version is when the hub's admin
// last changed it; an appliance applies a version newer than the last it
// applied.
type PolicyInfo struct {
	Version        int64 `json:"version"`
	Colors         []int `json:"colors"`
	MaxTestAgeMS   int64 `json:"max_test_age_ms"`
	MinDoses       int   `json:"min_doses"`
	AcceptPaper    bool  `json:"accept_paper"`
	RepeatWindowMS int64 `json:"repeat_window_ms"`
	ClockSkewMS    int64 `json:"clock_skew_ms"`
	// TimeZone is the district's zone (store.Policy.TimeZone); absent
	// from older hubs, and then the appliance keeps its own.
	TimeZone string `json:"time_zone,omitempty"`
	// StaleAfterMS: absent from a hub that predates it (the default).
	StaleAfterMS int64 `json:"stale_after_ms,omitempty"`
}

// PushRequest carries the next records of an appliance's streams. Each
// batch holds consecutive records of one epoch, starting right after the
// last one the hub acknowledged (or at the epoch's first id).
type PushRequest struct {
	Now     int64       `json:"now_ms"`  // the appliance's clock, for skew
	Backlog int64       `json:"backlog"` // records waiting after these
	Scans   *ScanBatch  `json:"scans,omitempty"`
	Events  *EventBatch `json:"events,omitempty"`
	// Checkpoint is the appliance's signed checkpoint of its audit
	// trail (see checkpoint.go); absent from older appliances.
	Checkpoint *AuditCheckpoint `json:"checkpoint,omitempty"`
}

// ScanBatch is consecutive scan records of one epoch.
type ScanBatch struct {
	Epoch   []byte       `json:"epoch"` // 16 bytes
	From    int64        `json:"from"`  // the epoch's first id
	Records []ScanRecord `json:"records"`
}

// ScanRecord is one scan as the appliance logged it. Short field names:
// a scan record should cost well under 100 bytes on the wire.
type ScanRecord struct {
	Seq      int64  `json:"q"` // the appliance's scans.id
	At       int64  `json:"t"` // ms since the epoch
	Source   string `json:"s"`
	Decision string `json:"d"`
	Reason   string `json:"r"`
	Repeat   bool   `json:"x,omitempty"`
	PassID   []byte `json:"p,omitempty"`
	Subject  []byte `json:"u,omitempty"`
	KID      []byte `json:"k,omitempty"`
}

// EventBatch is consecutive outbox records of one epoch.
type EventBatch struct {
	Epoch   []byte        `json:"epoch"`
	From    int64         `json:"from"`
	Records []EventRecord `json:"records"`
}

// EventRecord is one pass issued, status change, revocation or audit
// record, with the body the appliance's outbox holds.
type EventRecord struct {
	Seq  int64           `json:"q"`
	Kind string          `json:"kind"`
	At   int64           `json:"t"`
	Body json.RawMessage `json:"body"`
}

// Mark is how far the hub holds a stream of one epoch.
type Mark struct {
	Epoch []byte `json:"epoch"`
	Mark  int64  `json:"mark"`
}

// PushResponse acknowledges a push: the hub's mark for each batch's epoch
// after storing it. Records at or below the mark are held by the hub.
type PushResponse struct {
	Scans  *Mark `json:"scans,omitempty"`
	Events *Mark `json:"events,omitempty"`
	Now    int64 `json:"now_ms"`
	// CheckpointSize is the size of the newest audit checkpoint the hub
	// accepted from this appliance: the next push proves from it.
	CheckpointSize int64 `json:"checkpoint_size,omitempty"`
}

// PullRequest asks for what changed since the appliance last pulled.
type PullRequest struct {
	Now              int64  `json:"now_ms"`
	Backlog          int64  `json:"backlog"`
	RevocationsAfter int64  `json:"revocations_after"` // last hub revocation seq applied
	TrustHash        []byte `json:"trust_hash,omitempty"`
	PolicyVersion    int64  `json:"policy_version"`
	// Generation is the hub feed generation RevocationsAfter and
	// TrustHash are positions in; absent before the first answer that
	// carried one.
	Generation []byte `json:"generation,omitempty"`
	// TrustVersion is the hub's trust version of the list applied (0:
	// unknown). Deltas says the appliance takes a TrustDelta instead of
	// the whole list; Wait that it waits for a change (a long poll).
	// Older appliances send none of them and get whole lists at once.
	TrustVersion int64 `json:"trust_version,omitempty"`
	Deltas       bool  `json:"deltas,omitempty"`
	// CityKeyCheck is the check value of the city pseudonym key the
	// appliance holds (pass.CityKeyCheck), absent when it holds none: an
	// office without it is sent it.
	CityKeyCheck []byte `json:"city_key_check,omitempty"`
	Wait         bool   `json:"wait,omitempty"`
}

// TrustDelta is a trust list told as its change from the list whose hash
// is Base: keys added or changed (whole), key IDs removed. Hash is the
// hash of the resulting list, checked by the appliance exactly as a whole
// list's: a delta cannot make a list the hub's whole list would not be.
type TrustDelta struct {
	Base    []byte     `json:"base"`
	Hash    []byte     `json:"hash"`
	Version int64      `json:"version"`
	Add     []TrustKey `json:"add,omitempty"`
	Remove  [][]byte   `json:"remove,omitempty"`
	// City is the city root of the list the delta makes, as in TrustList.
	City *CityKey `json:"city,omitempty"`
}

// PullResponse is the increment: the trust list if its hash differs,
// revocations after the given seq (at most MaxRevocationPage; More says
// there are more), and the policy if newer.
type PullResponse struct {
	Now        int64       `json:"now_ms"`
	Trust      *TrustList  `json:"trust,omitempty"`
	TrustDelta *TrustDelta `json:"trust_delta,omitempty"`
	// TrustVersion is the hub's version of the list it holds now.
	TrustVersion int64              `json:"trust_version,omitempty"`
	Revocations  []RevocationRecord `json:"revocations,omitempty"`
	More         bool               `json:"more,omitempty"`
	Policy       *PolicyInfo        `json:"policy,omitempty"`
	// Role is the role the hub's admins gave the appliance, in every
	// answer: an appliance enrolled before roles learns it, and one whose
	// role changed applies the change.
	Role string `json:"role,omitempty"`
	// Generation changes whenever the hub's history could have gone
	// backwards (it was opened again, maybe from a backup): positions
	// taken in another generation mean nothing, and the appliance reads
	// the whole feed again. RevocationsEnd is the end of the hub's
	// revocation numbering: a position beyond it means the same. Both
	// absent from an older hub.
	Generation     []byte `json:"generation,omitempty"`
	RevocationsEnd int64  `json:"revocations_end,omitempty"`
	// Draining: the hub's admins are retiring the appliance; it issues
	// no new passes and keeps sending what it holds.
	Draining bool `json:"draining,omitempty"`
	// CityPseudonymKey is sent to an office whose CityKeyCheck is not
	// the hub's city key's: secret, never to a gate.
	CityPseudonymKey []byte `json:"city_pseudonym_key,omitempty"`
}

// RevocationRecord is one revocation of the hub's list.
type RevocationRecord struct {
	Seq    int64  `json:"seq"`    // the hub's sequence: the list's version
	Kind   int    `json:"kind"`   // 1 subject, 2 pass, 3 issuer key
	Target []byte `json:"target"` // subject, pass id or key id
	Before int64  `json:"before_ms,omitempty"`
	Reason string `json:"reason"`
	At     int64  `json:"at_ms"`
	// ID is the revocation's identity at the hub, when not Seq (one the
	// hub took back after a restore keeps its first number); Tag is the
	// hub's proof that it made it, which the appliance keeps to hand it
	// back should the hub lose it (restore.go). Absent from older hubs.
	ID  int64  `json:"id,omitempty"`
	Tag []byte `json:"tag,omitempty"`
}

// Error is the body of every error answer.
type Error struct {
	Code    string `json:"code"` // stable: bad_request, unauthorized, retired, gap, ...
	Message string `json:"message"`
	// Expected is set with code "gap": the id the hub expects next in
	// the batch's epoch.
	Expected int64 `json:"expected,omitempty"`
}
