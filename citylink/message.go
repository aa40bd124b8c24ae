package citylink

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"passgate/pass"
	"passgate/store"
)

// messageVersion is the version of a revocation message.
const messageVersion = 1

// wireRevocation is a revocation message: JSON, one object, every field
// named, nothing else. It carries no name, ID number or scan: only what
// a gate needs to void passes.
type wireRevocation struct {
	V        int    `json:"v"`
	District string `json:"district"`
	Seq      int64  `json:"seq"`
	Kind     int    `json:"kind"`
	Target   string `json:"target"` // lower-case hex
	BeforeMS *int64 `json:"before_ms,omitempty"`
	Reason   string `json:"reason"`
	AtMS     int64  `json:"at_ms"`
}

// Encode is the message of district's revocation r.
func Encode(district string, r *store.Revocation) ([]byte, error) {
	w := wireRevocation{V: messageVersion, District: district, Seq: r.Seq, Kind: int(r.Kind),
		Target: hex.EncodeToString(r.Target), Reason: r.Reason, AtMS: r.At.UnixMilli()}
	if r.Kind == store.RevokeSubject {
		b := r.Before.UnixMilli()
		w.BeforeMS = &b
	}
	b, err := json.Marshal(&w)
	if err != nil {
		return nil, fmt.Errorf("encode city revocation: %w", err)
	}
	if len(b) > MaxMessage {
		return nil, fmt.Errorf("encode city revocation: %d bytes, over %d", len(b), MaxMessage)
	}
	return b, nil
}

// MsgID is the de-duplication id of district's revocation seq: the same
// revocation published again (after a crash) has the same id.
func MsgID(district string, seq int64) string { return district + "-" + strconv.FormatInt(seq, 10) }

// SubjectDistrict is the district whose revocations subject subj is, or
// an error.
func SubjectDistrict(subj string) (string, error) {
	return subjectDistrict(subj, revocationsToken, "revocations")
}

// subjectDistrict is the district of subj, "city.<district><token>",
// named what in the error when subj is none.
func subjectDistrict(subj, token, what string) (string, error) {
	d, ok := strings.CutPrefix(subj, subjectPrefix)
	if ok {
		d, ok = strings.CutSuffix(d, token)
	}
	if !ok || pass.CheckIdent("district", d) != nil {
		return "", fmt.Errorf("subject %.80q is no district's %s subject", subj, what)
	}
	return d, nil
}

// Parse reads a revocation message: at most MaxMessage bytes, one JSON
// object of exactly the fields of version 1, the district a valid
// identifier, the target hex of the size its kind has, a cutoff for a
// subject revocation and none otherwise. Whether it belongs to its
// subject's district is the store's judgement (ApplyCityMessage).
func Parse(data []byte) (*store.CityRevocation, error) {
	if len(data) > MaxMessage {
		return nil, fmt.Errorf("parse city revocation: %d bytes, over %d", len(data), MaxMessage)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var w wireRevocation
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("parse city revocation: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("parse city revocation: data after the object")
	}
	kind := store.RevocationKind(w.Kind)
	want := map[store.RevocationKind]int{store.RevokeSubject: 16, store.RevokePass: 12, store.RevokeIssuer: 8}[kind]
	target, err := hex.DecodeString(w.Target)
	switch {
	case w.V != messageVersion:
		return nil, fmt.Errorf("parse city revocation: version %d", w.V)
	case pass.CheckIdent("district", w.District) != nil:
		return nil, errors.New("parse city revocation: malformed district")
	case w.Seq <= 0:
		return nil, errors.New("parse city revocation: sequence not positive")
	case want == 0:
		return nil, fmt.Errorf("parse city revocation: kind %d", w.Kind)
	case err != nil || len(target) != want || w.Target != hex.EncodeToString(target):
		return nil, errors.New("parse city revocation: target is not lower-case hex of its kind's size")
	case (kind == store.RevokeSubject) != (w.BeforeMS != nil):
		return nil, errors.New("parse city revocation: a cutoff goes with a subject revocation only, and it must have one")
	case w.BeforeMS != nil && *w.BeforeMS <= 0, w.AtMS <= 0:
		return nil, errors.New("parse city revocation: time not positive")
	}
	r := &store.CityRevocation{District: w.District, Seq: w.Seq, Kind: kind, Target: target, Reason: w.Reason, At: time.UnixMilli(w.AtMS)}
	if w.BeforeMS != nil {
		r.Before = time.UnixMilli(*w.BeforeMS)
	}
	return r, nil
}
