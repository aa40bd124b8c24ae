package store

import (
	"errors"
	"time"

	"passgate/pass"
)

// Errors, returned wrapped with the operation; test them with errors.Is.
// Not-found is always an error, never a nil result.
var (
	// ErrNotFound: no such row, or a row it refers to does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique value (name, id, key) is already taken.
	ErrConflict = errors.New("already exists")
	// ErrNotInitialized: Setup has not stored a district yet.
	ErrNotInitialized = errors.New("data directory not initialised")
	// ErrClosed: Close has begun.
	ErrClosed = errors.New("store closed")
	// ErrInvalid: a value is out of range or malformed (also a password
	// hash string that cannot be parsed).
	ErrInvalid = errors.New("invalid value")
	// ErrCorrupt: PRAGMA integrity_check found damage.
	ErrCorrupt = errors.New("database corrupt")
	// ErrSchemaTooNew: the file was migrated by a newer passgate.
	ErrSchemaTooNew = errors.New("database schema is newer than this program")
)

// District is this appliance's district: its identity and pseudonym key.
type District struct {
	ID           string // short identifier, carried in passes as iss
	Name         string // display name
	PseudonymKey []byte // 32 bytes; secret; nil on a gate (store.ErrGate)
	// CityPseudonymKey is the city's pseudonym key once the district
	// joined the city (ImportCityPseudonymKey): 32 bytes, secret, nil on
	// a gate and before.
	CityPseudonymKey []byte
	Appliance        string // this appliance's name
	CreatedAt        time.Time
}

// Key roles.
const (
	RoleRoot   = "root"
	RoleIssuer = "issuer"
)

// Key is a root or issuer key. Private is nil when this appliance only
// trusts the key; Cert is the encoded certificate of an issuer key.
type Key struct {
	KID       pass.KeyID
	Role      string
	Alg       pass.Alg
	Public    []byte
	Private   []byte
	Cert      []byte
	District  string
	NotBefore time.Time
	NotAfter  time.Time
	CreatedAt time.Time
	RevokedAt time.Time // zero when not revoked
	// Rotation is the record by which the district's previous root
	// handed over to this one (roots only; empty for a first root).
	Rotation []byte
}

// KeyFilter selects keys.
type KeyFilter struct {
	Role       string // "" for any
	HasPrivate bool   // only keys whose private half is held here
}

// UserRole is what a staff account may do. Its string is what the users
// table and the account form carry.
type UserRole string

// User roles.
const (
	UserStaff  UserRole = "staff"
	UserIssuer UserRole = "issuer"
	UserAdmin  UserRole = "admin"
)

// User is a staff account.
type User struct {
	ID           int64
	Username     string
	Role         UserRole
	PasswordHash string // argon2id, PHC string format
	CreatedAt    time.Time
	DisabledAt   time.Time
}

// Actor is the user as the audit trail names them.
func (u *User) Actor() Actor { return Actor(u.Username) }

// Person is a registered resident, known by pseudonym only.
type Person struct {
	Subject    pass.Subject
	MaskedName string
	IDTail     string
	IDType     string // IDMainland, IDPassport or IDOther; "" keeps the stored one (mainland for a new person)
	Phone      string // digits, optional
	Color      pass.Color
	TestedAt   time.Time // latest negative test sample; zero if none
	Doses      int
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// StatusChange is one entry of a person's status history.
type StatusChange struct {
	ID      int64
	Subject pass.Subject
	From    pass.Color // zero for the first status
	To      pass.Color
	Reason  string
	Actor   Actor
	At      time.Time
	// Appliance is where it was made, in exports (see Scan.Appliance).
	Appliance string
}

// IssuedPass records a pass that was issued here.
type IssuedPass struct {
	ID        pass.ID
	Subject   pass.Subject
	KID       pass.KeyID
	Kind      pass.Kind
	Color     pass.Color
	IssuedAt  time.Time
	ExpiresAt time.Time
	Actor     Actor
	Appliance string // in exports: where it was issued (see Scan.Appliance)
}

// RevocationKind is what a revocation voids. Its numbers are stored in the
// revocations table and carried on the wire, so they never change.
type RevocationKind int

// Revocation kinds.
const (
	RevokeSubject RevocationKind = 1 // passes of Target (a Subject) issued before Before are void
	RevokePass    RevocationKind = 2 // the pass with ID Target is void
	RevokeIssuer  RevocationKind = 3 // every pass signed by key Target (a KeyID) is void
)

// targetLen is the length of a revocation target of kind k (a Subject, a
// pass ID, a KeyID); 0 for a number that is no kind.
func (k RevocationKind) targetLen() int {
	switch k {
	case RevokeSubject:
		return 16
	case RevokePass:
		return 12
	case RevokeIssuer:
		return 8
	default:
		return 0
	}
}

// Revocation voids passes. Seq orders revocations and is the version of
// the revocation list: a reader asks for everything after the Seq it has.
type Revocation struct {
	Seq    int64
	Kind   RevocationKind
	Target []byte
	Before time.Time // RevokeSubject only
	Reason string
	At     time.Time
	// ID is the revocation's identity in its hub's feed: the number it
	// was first given there, which a revocation taken back after a
	// restore keeps (its Seq is new). Tag is the hub's proof that it
	// made the revocation (RevocationTagSize bytes; see revrestore.go).
	// Both are set on the feed a hub serves and on what an appliance
	// hands back; zero elsewhere.
	ID  int64
	Tag []byte
}

// Policy is the appliance's check policy.
type Policy struct {
	Colors       []pass.Color  // colours allowed through
	MaxTestAge   time.Duration // 0: no test required
	MinDoses     int
	AcceptPaper  bool
	RepeatWindow time.Duration
	ClockSkew    time.Duration
	// ScanRetention is how long scans are kept before they are purged;
	// zero when saving means DefaultScanRetention.
	ScanRetention time.Duration
	// PassRetention is how long a pass record is kept after the pass
	// expires; zero when saving means DefaultPassRetention.
	PassRetention time.Duration
	// AuditRetention is how long audit records are kept; zero when
	// saving means DefaultAuditRetention.
	AuditRetention time.Duration
	// BacklogWarn is how old the oldest record waiting for the hub may
	// get before the status page and /readyz warn; zero when saving
	// means DefaultBacklogWarn.
	BacklogWarn time.Duration
	// TimeZone is the district's zone (an IANA name such as
	// "Asia/Shanghai"): a date typed into a form or a flag means midnight
	// there, and pages and files show times there. Empty when saving
	// means DefaultTimeZone. Read it through Location.
	TimeZone string
	// StaleAfter is how long an enrolled appliance's lists may go
	// without a pull from the hub before the gate and /readyz warn;
	// zero when saving means DefaultStaleAfter.
	StaleAfter time.Duration
	UpdatedAt  time.Time
	UpdatedBy  Actor // actor of the last ChangePolicy; "setup" at first
}

// DefaultScanRetention is how long scans are kept unless an admin sets
// otherwise.
const DefaultScanRetention = 28 * 24 * time.Hour

// DefaultTimeZone is the district's zone unless an admin sets another.
const DefaultTimeZone = "Asia/Shanghai"

// DefaultPassRetention and DefaultAuditRetention are the schema's
// defaults (migration 7): a pass record is kept 90 days after its pass
// expires, an audit record one year.
const (
	DefaultPassRetention  = 90 * 24 * time.Hour
	DefaultAuditRetention = 365 * 24 * time.Hour
)

// DefaultBacklogWarn is the schema's default BacklogWarn: a record
// waiting longer than this for the hub is a link to look at.
const DefaultBacklogWarn = 15 * time.Minute

// DefaultStaleAfter is how old an enrolled appliance's lists may grow
// before it warns: it pulls every 2 seconds while its hub answers, so two
// minutes without a pull is a link down, not a slow one.
const DefaultStaleAfter = 2 * time.Minute

// DefaultPolicy is the policy of a new district: green only, a negative
// test within 72 h, no dose minimum, paper accepted, repeats flagged
// within 5 minutes, 5 minutes of clock skew tolerated.
func DefaultPolicy() Policy {
	return Policy{
		Colors:         []pass.Color{pass.Green},
		MaxTestAge:     72 * time.Hour,
		AcceptPaper:    true,
		RepeatWindow:   5 * time.Minute,
		ClockSkew:      5 * time.Minute,
		ScanRetention:  DefaultScanRetention,
		PassRetention:  DefaultPassRetention,
		TimeZone:       DefaultTimeZone,
		AuditRetention: DefaultAuditRetention,
		BacklogWarn:    DefaultBacklogWarn,
		StaleAfter:     DefaultStaleAfter,
	}
}

// Device is a scanner or gateway allowed to post to the scan API.
type Device struct {
	ID        int64
	Name      string
	CreatedAt time.Time
	RevokedAt time.Time
}

// Scan is one logged check. It holds no name and no payload.
type Scan struct {
	ID       int64
	At       time.Time
	Source   string
	Decision string // "allow" or "deny"
	Reason   string
	Repeat   bool
	PassID   pass.ID      // zero when the payload did not decode
	Subject  pass.Subject // zero when unknown
	KID      pass.KeyID   // zero when unknown
	// Appliance is where the scan was logged, in exports: this appliance's
	// name, or on a hub the enrolled appliance that sent it.
	Appliance string
	// Epoch is, in a hub's exports, the sending appliance's epoch of ID
	// (ID is then the appliance's own scan id); zero for scans logged
	// here and for ones stored before epochs were kept.
	Epoch [EpochSize]byte
}

// ScanFilter selects scans, newest first unless AfterID is set (then
// oldest first, for paging forward).
type ScanFilter struct {
	AfterID int64     // only scans with a larger ID, oldest first
	Since   time.Time // at or after; zero: no bound
	Until   time.Time // strictly before; zero: no bound
	Source  string    // "" for any
	Limit   int       // 0: 100; at most MaxScanLimit
}
