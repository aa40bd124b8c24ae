package district

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"passgate/pass"
	"passgate/store"
)

// RegisterRequest registers a resident at the desk.
type RegisterRequest struct {
	Name     string // full name; only its masked form is kept
	IDType   string // store.IDMainland, store.IDPassport or store.IDOther
	IDNumber string // only its pseudonym and tail are kept
	Phone    string // optional
	Actor    store.Actor
	// AllowBadCheckDigit accepts a legacy mainland ID number whose check
	// character is wrong (see AllowBadCheckDigit); never set by default.
	AllowBadCheckDigit bool
}

// Resident is a validated registration, ready to store.
type Resident struct {
	Person   *store.Person
	IDNumber string // normalised; never stored
}

// CheckResident validates a registration and returns every field error
// found (not only the first), so a form can mark them all at once. The
// person is not stored.
func CheckResident(key []byte, req RegisterRequest, now time.Time) (*Resident, store.FieldErrors) {
	var errs store.FieldErrors
	add := func(err error) {
		var fe *store.FieldError
		if errors.As(err, &fe) {
			errs = append(errs, fe)
		}
	}
	name := strings.TrimSpace(req.Name)
	switch {
	case name == "":
		add(fieldErr("name", "required"))
	case !utf8.ValidString(name):
		add(fieldErr("name", "bad_chars"))
	case utf8.RuneCountInString(name) > 64:
		add(fieldErr("name", "too_long"))
	default:
		for _, r := range name {
			if r < 0x20 || r == 0x7f {
				add(fieldErr("name", "bad_chars"))
				break
			}
		}
	}
	opts := IDOptions(req.AllowBadCheckDigit)
	id, err := CheckID(req.IDType, req.IDNumber, now, opts...)
	add(err)
	phone, err := CheckPhone(req.Phone)
	add(err)
	if len(errs) > 0 {
		return nil, errs
	}
	return &Resident{
		IDNumber: id,
		Person: &store.Person{
			Subject: pass.Pseudonym(key, id), MaskedName: pass.MaskName(name), IDTail: pass.IDTail(id),
			IDType: req.IDType, Phone: phone, Color: pass.Green,
		},
	}, nil
}

// Register validates and stores a resident. A resident already
// registered keeps their status; name, document type and phone are
// updated. It returns the stored person and whether it was new; field
// errors come back as store.FieldErrors.
func Register(ctx context.Context, db *store.DB, req RegisterRequest) (*store.Person, bool, error) {
	if req.Actor == "" {
		return nil, false, errors.New("register resident: no actor")
	}
	d, err := db.District(ctx)
	if err != nil {
		return nil, false, err
	}
	if _, err := d.PseudonymKeyOrErr(); err != nil {
		return nil, false, err
	}
	key := SubjectKey(d)
	res, errs := CheckResident(key, req, db.Now())
	if errs != nil {
		return nil, false, errs
	}
	subjects, err := Subjects(d, res.IDNumber)
	if err != nil {
		return nil, false, err
	}
	if err := adoptDistrictRecord(ctx, db, subjects, req.Actor); err != nil {
		return nil, false, err
	}
	created, _, err := db.RegisterPeople(ctx, []*store.Person{res.Person}, req.Actor)
	if err != nil {
		return nil, false, err
	}
	p, err := db.FindPerson(ctx, res.Person.Subject)
	if err != nil {
		return nil, false, err
	}
	return p, created == 1, nil
}

// SubjectOf returns the pseudonym of an ID number of any document type
// that a person is registered and issued under now (Subjects).
func SubjectOf(ctx context.Context, db *store.DB, idNumber string) (pass.Subject, error) {
	s, err := SubjectsOf(ctx, db, idNumber)
	if err != nil {
		return pass.Subject{}, err
	}
	return s[0], nil
}

// RecordTest records one test result of a registered person. A sample
// time in the future (beyond a minute of clock skew) is a field error.
// A positive result turns the person red and voids their earlier passes;
// a negative one becomes their latest test unless a newer one is known.
func RecordTest(ctx context.Context, db *store.DB, s pass.Subject, sampledAt time.Time, positive bool, actor store.Actor) (changed bool, err error) {
	if sampledAt.IsZero() {
		return false, fieldErr("sample_time", "required")
	}
	if sampledAt.After(db.Now().Add(time.Minute)) {
		return false, fieldErr("sample_time", "future")
	}
	n, missing, err := db.RecordTests(ctx, []store.TestResult{{Subject: s, SampledAt: sampledAt, Positive: positive}}, actor)
	if err != nil {
		return false, err
	}
	if len(missing) > 0 {
		return false, fmt.Errorf("record test: %w", store.ErrNotFound)
	}
	return n == 1, nil
}

// SetDoses sets the number of vaccine doses of a registered person.
func SetDoses(ctx context.Context, db *store.DB, s pass.Subject, doses int, actor store.Actor) error {
	if doses < 0 || doses > 20 {
		return fieldErr("doses", "doses_range")
	}
	p, err := db.FindPerson(ctx, s)
	if err != nil {
		return err
	}
	p.Doses = doses
	return db.SavePerson(ctx, p, actor)
}

// SetSubjectStatus changes the colour of a registered person with a
// mandatory reason, and voids their earlier passes.
func SetSubjectStatus(ctx context.Context, db *store.DB, s pass.Subject, to pass.Color, reason string, actor store.Actor) (*store.StatusChange, error) {
	reason, err := CheckStatusChange(to, reason)
	if err != nil {
		return nil, err
	}
	return db.SetStatus(ctx, s, to, reason, actor)
}

// CheckStatusChange checks a status change's colour and reason as an
// officer typed them, and returns the reason trimmed; a *store.FieldError names
// what is wrong.
func CheckStatusChange(to pass.Color, reason string) (string, error) {
	if !to.Valid() {
		return "", fieldErr("color", "unknown")
	}
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return "", fieldErr("reason", "required")
	}
	if len(reason) > 500 {
		return "", fieldErr("reason", "reason_length")
	}
	return reason, nil
}

// CheckCityStatusChange checks a city-wide status change as an officer
// typed it: as CheckStatusChange, and the reason is text every hub takes
// (pass.CheckText: no control or format characters), since it travels to
// all of them.
func CheckCityStatusChange(to pass.Color, reason string) (string, error) {
	reason, err := CheckStatusChange(to, reason)
	if err != nil {
		return "", err
	}
	if pass.CheckText("reason", reason, 500) != nil {
		return "", fieldErr("reason", "bad_chars")
	}
	return reason, nil
}
