package district

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"passgate/pass"
	"passgate/store"
)

// StatusElsewhereError refuses to issue for a person whose status the
// district changed elsewhere (at the hub or another appliance) after the
// last change recorded here: the status must be recorded here first.
type StatusElsewhereError struct {
	Subject pass.Subject
	At      time.Time // when the district changed it, in the district's zone
	Reason  string
}

func (e *StatusElsewhereError) Error() string {
	return fmt.Sprintf("this person's status was changed elsewhere in the district on %s (%s): record their current status here before issuing",
		e.At.Format("2006-01-02 15:04"), e.Reason)
}

// InputError is a request a person got wrong: the message is safe to show.
type InputError struct {
	Msg string
	err error // the field error behind it, if any
}

func (e *InputError) Error() string { return e.Msg }

// Unwrap lets callers find the *store.FieldError behind the message (a wrong
// check digit, say) and offer the right way out.
func (e *InputError) Unwrap() error { return e.err }

func inputErrorf(format string, args ...any) error {
	return &InputError{Msg: fmt.Sprintf(format, args...)}
}

// IssueRequest asks for a pass for a resident, registering them first if
// needed.
type IssueRequest struct {
	Name     string     // full name; only its masked form is kept
	IDNumber string     // national ID or document number; only its pseudonym and tail are kept
	Color    pass.Color // 0: keep the registered colour (green for a new person)
	TestedAt time.Time  // zero: keep the registered test time
	Doses    int        // negative: keep the registered doses
	Kind     pass.Kind  // 0: phone
	Validity time.Duration
	Actor    store.Actor
	// AllowBadCheckDigit accepts a legacy mainland ID number whose check
	// character is wrong (see AllowBadCheckDigit); never set by default.
	AllowBadCheckDigit bool
}

// Issued is a signed pass.
type Issued struct {
	Text   string
	Claims pass.Claims
	Person *store.Person
}

// Issue registers or updates the resident and signs a pass for them. A
// colour different from the registered one is a status change: it is
// recorded with its reason and voids the person's earlier passes.
func Issue(ctx context.Context, db *store.DB, req IssueRequest) (*Issued, error) {
	if req.Actor == "" {
		return nil, errors.New("issue pass: no actor") // a caller's bug, not a user's
	}
	if req.Kind == 0 {
		req.Kind = pass.Phone
	}
	if !req.Kind.Valid() {
		return nil, inputErrorf("unknown pass kind")
	}
	if req.Color != 0 && !req.Color.Valid() {
		return nil, inputErrorf("unknown colour")
	}
	if req.Doses > 255 {
		return nil, inputErrorf("doses must be between 0 and 255")
	}
	d, err := db.District(ctx)
	if err != nil {
		return nil, err
	}
	now := db.Now()
	opts := IDOptions(req.AllowBadCheckDigit)
	id, err := checkIDNumber(req.IDNumber, now, opts...)
	if err != nil {
		return nil, err
	}
	if !req.TestedAt.IsZero() && req.TestedAt.After(now.Add(time.Minute)) {
		return nil, inputErrorf("test time %s is in the future", req.TestedAt.Format(time.RFC3339))
	}
	subjects, err := Subjects(d, id)
	if err != nil {
		return nil, err
	}
	if err := adoptDistrictRecord(ctx, db, subjects, req.Actor); err != nil {
		return nil, err
	}
	subject := subjects[0]

	p, err := db.FindPerson(ctx, subject)
	switch {
	case errors.Is(err, store.ErrNotFound):
		name, err := checkName(req.Name)
		if err != nil {
			return nil, err
		}
		p = &store.Person{Subject: subject, MaskedName: pass.MaskName(name), IDTail: pass.IDTail(id), Color: pass.Green, IDType: store.IDOther}
		if looksMainland(id) && checkMainland(id, now, opts) == nil {
			p.IDType = store.IDMainland // the request names no type: a valid mainland number is one
		}
		if req.Color != 0 {
			p.Color = req.Color
		}
	case err != nil:
		return nil, err
	default:
		if req.Name != "" {
			name, err := checkName(req.Name)
			if err != nil {
				return nil, err
			}
			p.MaskedName = pass.MaskName(name)
		}
		if req.Color != 0 {
			p.Color = req.Color // a change is a status change, recorded by IssuePass
		}
	}
	if !req.TestedAt.IsZero() {
		p.TestedAt = req.TestedAt
	}
	if req.Doses >= 0 {
		p.Doses = req.Doses
	}

	is, err := loadIssuer(ctx, db)
	if err != nil {
		return nil, err
	}
	var iss *Issued
	_, err = db.IssuePass(ctx, store.PassIssue{
		Person: p, StatusReason: ReasonSetAtIssue, Actor: req.Actor,
		Sign: func(cutoff time.Time, elsewhere *store.Revocation) (*store.IssuedPass, error) {
			iat, err := issueTime(subject, now, cutoff, elsewhere, is.skew, is.loc)
			if err != nil {
				return nil, err
			}
			var rec *store.IssuedPass
			iss, rec, err = is.sign(p, req.Kind, req.Validity, iat, req.Actor)
			return rec, err
		},
	})
	if err != nil {
		return nil, err
	}
	return iss, nil
}

// issuer signs passes with this appliance's issuer key.
type issuer struct {
	district string
	key      *store.Key
	signer   *pass.Signer
	skew     time.Duration  // the policy's clock tolerance (issueTime)
	loc      *time.Location // the district's time zone, for messages
}

// loadIssuer loads the district and the signing key. It refuses with
// store.ErrDraining at an appliance its hub is retiring: every pass
// issued here goes through it.
func loadIssuer(ctx context.Context, db *store.DB) (*issuer, error) {
	if draining, err := db.Draining(ctx); err != nil {
		return nil, err
	} else if draining {
		return nil, store.ErrDraining
	}
	d, err := db.District(ctx)
	if err != nil {
		return nil, err
	}
	key, err := db.SigningKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("find signing key: %w", err)
	}
	priv, err := pass.ParsePrivateKey(key.Private)
	if err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
	}
	signer, err := pass.NewSigner(priv, key.Cert)
	if err != nil {
		return nil, err
	}
	pol, err := db.Policy(ctx)
	if err != nil {
		return nil, err
	}
	return &issuer{district: d.ID, key: key, signer: signer, skew: pol.ClockSkew, loc: pol.Location()}, nil
}

// LoadSigner returns a signer with this appliance's issuer key, for tools
// that sign passes of their own (the load tool).
func LoadSigner(ctx context.Context, db *store.DB) (*pass.Signer, error) {
	is, err := loadIssuer(ctx, db)
	if err != nil {
		return nil, err
	}
	return is.signer, nil
}

// sign makes the pass of person p as registered, issued at iat, valid for
// validity (0: the default of its kind), and the record of it.
func (is *issuer) sign(p *store.Person, kind pass.Kind, validity time.Duration, iat time.Time, actor store.Actor) (*Issued, *store.IssuedPass, error) {
	c := is.claims(p, kind, validity, iat)
	if _, err := rand.Read(c.ID[:]); err != nil {
		return nil, nil, err
	}
	text, err := is.signer.Sign(&c)
	if err != nil {
		return nil, nil, fmt.Errorf("sign pass: %w", err)
	}
	rec := &store.IssuedPass{
		ID: c.ID, Subject: p.Subject, KID: is.key.KID, Kind: c.Kind, Color: c.Color,
		IssuedAt: c.IssuedAt, ExpiresAt: c.ExpiresAt, Actor: actor,
	}
	return &Issued{Text: text, Claims: c, Person: p}, rec, nil
}

// claims are the claims of the pass of person p as registered, issued at
// iat and valid for validity (0: the default of its kind), without an id.
func (is *issuer) claims(p *store.Person, kind pass.Kind, validity time.Duration, iat time.Time) pass.Claims {
	if validity <= 0 {
		validity = pass.PhoneValidity
		if kind == pass.Paper {
			validity = pass.PaperValidity
		}
	}
	exp := iat.Add(validity)
	if !is.key.NotAfter.IsZero() && exp.After(is.key.NotAfter) {
		exp = is.key.NotAfter // a pass cannot outlive its issuer's certificate
	}
	return pass.Claims{
		Subject: p.Subject, District: is.district, Name: p.MaskedName, IDTail: p.IDTail,
		Color: p.Color, TestedAt: p.TestedAt.Truncate(time.Second), Doses: p.Doses,
		IssuedAt: iat, ExpiresAt: exp, Kind: kind,
	}
}

// issueTime is the pass's issued-at, in whole seconds, and never before
// the subject's revocation cutoff plus the clock tolerance skew. Checkers
// void every pass issued before cutoff+skew (a pass dated ahead within
// the tolerance must not outlive a status change), so a pass issued
// within the tolerance after a change for the worse is dated at
// cutoff+skew: ahead of now by at most skew and a second, which every
// checker whose clock is within the tolerance accepts. Changes for the
// better make no cutoff (store.SetStatus), so a renewal after recovery is
// dated now. It refuses when the district changed the person's status
// elsewhere (at the hub or another appliance) since the last change
// recorded here: the register's colour is out of date, and the new pass
// would outlive the revocation.
func issueTime(subject pass.Subject, now, cutoff time.Time, elsewhere *store.Revocation, skew time.Duration, loc *time.Location) (time.Time, error) {
	if elsewhere != nil {
		return time.Time{}, &StatusElsewhereError{Subject: subject, At: elsewhere.At.In(loc), Reason: elsewhere.Reason}
	}
	iat := now.Truncate(time.Second)
	if !cutoff.IsZero() && iat.Before(cutoff.Add(skew)) {
		iat = cutoff.Add(skew)
	}
	return iat, nil
}

// currentIssueTime is issueTime from what the store holds now, for
// passes of registered people issued without a change to the register.
func currentIssueTime(ctx context.Context, db *store.DB, subject pass.Subject, now time.Time, skew time.Duration, loc *time.Location) (time.Time, error) {
	elsewhere, err := db.StatusChangedElsewhere(ctx, subject)
	if err != nil {
		return time.Time{}, err
	}
	cutoff, err := db.SubjectCutoff(ctx, subject)
	if err != nil {
		return time.Time{}, err
	}
	return issueTime(subject, now, cutoff, elsewhere, skew, loc)
}

// ReasonSetAtIssue is the history's reason for a status chosen while
// issuing a pass; pages show it in their own language.
const ReasonSetAtIssue = "set when issuing a pass"

// SetStatus changes the status of the resident with idNumber and voids
// their earlier passes.
func SetStatus(ctx context.Context, db *store.DB, idNumber string, to pass.Color, reason string, actor store.Actor, opts ...IDOption) (*store.StatusChange, error) {
	if !to.Valid() {
		return nil, inputErrorf("unknown colour")
	}
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return nil, inputErrorf("a reason is required for a status change")
	}
	if len(reason) > 500 {
		return nil, inputErrorf("reason is too long (at most 500 bytes)")
	}
	id, err := checkIDNumber(idNumber, db.Now(), opts...)
	if err != nil {
		return nil, err
	}
	d, err := db.District(ctx)
	if err != nil {
		return nil, err
	}
	subjects, err := Subjects(d, id)
	if err != nil {
		return nil, err
	}
	// Linked first, so that the change of either subject reaches the
	// other's passes (issued before the district joined the city).
	if err := adoptDistrictRecord(ctx, db, subjects, actor); err != nil {
		return nil, err
	}
	ch, err := db.SetStatus(ctx, subjects[0], to, reason, actor)
	if errors.Is(err, store.ErrNotFound) {
		return nil, inputErrorf("no resident with this ID number is registered here")
	}
	return ch, err
}

// checkIDNumber checks a number typed without its document type; a
// mainland number must pass CheckMainlandID (opts may waive its check
// character).
func checkIDNumber(raw string, now time.Time, opts ...IDOption) (string, error) {
	id := pass.NormalizeID(raw)
	if id == "" {
		return "", inputErrorf("an ID number is required")
	}
	if len(id) < 4 || len(id) > 32 {
		return "", inputErrorf("ID number must have 4 to 32 letters or digits")
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'Z') {
			return "", inputErrorf("ID number may hold only letters and digits")
		}
	}
	if looksMainland(id) {
		if err := checkMainland(id, now, opts); err != nil {
			return "", &InputError{Msg: "mainland ID number", err: err}
		}
	}
	return id, nil
}

func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", inputErrorf("a name is required")
	case !utf8.ValidString(name):
		return "", inputErrorf("name is not valid text")
	case utf8.RuneCountInString(name) > 64:
		return "", inputErrorf("name is too long (at most 64 characters)")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "", inputErrorf("name holds control characters")
		}
	}
	return name, nil
}
