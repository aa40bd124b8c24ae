package district

import (
	"context"
	"errors"

	"passgate/pass"
	"passgate/store"
)

// Subjects returns the subjects of a normalised ID number here: first
// the one a person is registered and issued under now (the city subject
// once the district holds the city pseudonym key, the district's own
// before), then the district subject when it differs, under which passes
// issued before the district joined the city stay valid until they
// expire. store.ErrGate on a gate.
func Subjects(d *store.District, id string) ([]pass.Subject, error) {
	key, err := d.PseudonymKeyOrErr()
	if err != nil {
		return nil, err
	}
	own := pass.Pseudonym(key, id)
	if len(d.CityPseudonymKey) != pass.CityKeyLen {
		return []pass.Subject{own}, nil
	}
	return []pass.Subject{pass.Pseudonym(d.CityPseudonymKey, id), own}, nil
}

// SubjectKey is the key new subjects are made with: the city pseudonym
// key once the district holds it, its own before. Callers check
// PseudonymKeyOrErr first (a gate holds neither).
func SubjectKey(d *store.District) []byte {
	if len(d.CityPseudonymKey) == pass.CityKeyLen {
		return d.CityPseudonymKey
	}
	return d.PseudonymKey
}

// SubjectsOf is Subjects for an ID number as typed.
func SubjectsOf(ctx context.Context, db *store.DB, idNumber string) ([]pass.Subject, error) {
	id := pass.NormalizeID(idNumber)
	if id == "" {
		return nil, fieldErr("id_number", "required")
	}
	d, err := db.District(ctx)
	if err != nil {
		return nil, err
	}
	return Subjects(d, id)
}

// adoptDistrictRecord makes a person known here under their district
// subject (subjects[1]) known under the city subject (subjects[0]) too,
// with the status, test and doses they have, and links the two
// (store.LinkSubjects): a red person stays red when their next pass
// carries the city subject, and a later status change voids the passes
// of both. It does nothing when the district holds no city key or the
// person is not known under the district subject.
func adoptDistrictRecord(ctx context.Context, db *store.DB, subjects []pass.Subject, actor store.Actor) error {
	if len(subjects) < 2 {
		return nil
	}
	old, err := db.FindPerson(ctx, subjects[1])
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := db.FindPerson(ctx, subjects[0]); errors.Is(err, store.ErrNotFound) {
		p := *old
		p.Subject = subjects[0]
		if _, _, err := db.RegisterPeople(ctx, []*store.Person{&p}, actor); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	return db.LinkSubjects(ctx, subjects[0], subjects[1], actor)
}

// JoinCitySubject carries a person known here under the district subject
// over to the city subject (see adoptDistrictRecord) before a bulk import
// stores anything under the city subject; without the city key it does
// nothing.
func JoinCitySubject(ctx context.Context, db *store.DB, d *store.District, id string, actor store.Actor) error {
	if len(d.CityPseudonymKey) != pass.CityKeyLen {
		return nil
	}
	subjects, err := Subjects(d, id)
	if err != nil {
		return err
	}
	return adoptDistrictRecord(ctx, db, subjects, actor)
}
