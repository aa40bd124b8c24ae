package store

import (
	"errors"
	"testing"
)

// FuzzParsePHC feeds stored-hash strings, which are outside bytes as far
// as VerifyPassword is concerned: parsing must never panic, and anything
// it accepts must be within the bounds that keep a login cheap.
func FuzzParsePHC(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$MDEyMzQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY")
	f.Add("$argon2id$v=19$m=4294967295,t=2,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5")
	f.Add("$argon2id$v=19$m=19456,t=2,p=256$$")
	f.Add("$$$$$")
	f.Fuzz(func(t *testing.T, s string) {
		ph, err := parsePHC(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		if ph.m > maxArgonMemory || ph.t > maxArgonTime || ph.p < 1 || ph.p > maxArgonThreads ||
			len(ph.key) > maxArgonKeyLen || len(ph.salt) > maxArgonSaltLen {
			t.Fatalf("accepted out-of-bounds parameters %+v", ph)
		}
	})
}
