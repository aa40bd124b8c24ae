package store_test

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"passgate/pass"
	"passgate/store"
)

// sealSetup stores a district whose secrets are random, so they can be
// searched for in the files.
func sealSetup(t *testing.T, db *store.DB) (root, issuer, pseudonym []byte) {
	t.Helper()
	rnd := func(n int) []byte {
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	root, issuer, pseudonym = rnd(33), rnd(33), rnd(32)
	d := &store.District{ID: "xa", Name: "Xi'an", PseudonymKey: bytes.Clone(pseudonym), Appliance: "desk-1"}
	rk := &store.Key{KID: kid(1), Alg: pass.AlgEdDSA, Public: []byte("root-public"), Private: bytes.Clone(root), District: "xa"}
	ik := &store.Key{KID: kid(2), Alg: pass.AlgEdDSA, Public: []byte("issuer-public"), Private: bytes.Clone(issuer),
		Cert: []byte("cert"), District: "xa", NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour)}
	if err := db.Setup(t.Context(), d, rk, ik, &store.User{Username: "admin", PasswordHash: testHash}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rk.Private, root) || !bytes.Equal(d.PseudonymKey, pseudonym) {
		t.Fatal("Setup changed its arguments' secrets")
	}
	return root, issuer, pseudonym
}

// checkSecrets checks that db gives the secrets back in clear.
func checkSecrets(t *testing.T, db *store.DB, root, issuer, pseudonym []byte) {
	t.Helper()
	d, err := db.District(t.Context())
	if err != nil || !bytes.Equal(d.PseudonymKey, pseudonym) {
		t.Fatalf("pseudonym key %x, %v", d.PseudonymKey, err)
	}
	keys, err := db.FindKeys(t.Context(), store.KeyFilter{HasPrivate: true})
	if err != nil || len(keys) != 2 || !bytes.Equal(keys[0].Private, root) || !bytes.Equal(keys[1].Private, issuer) {
		t.Fatalf("private keys %v, %v", keys, err)
	}
	sk, err := db.SigningKey(t.Context())
	if err != nil || !bytes.Equal(sk.Private, issuer) {
		t.Fatalf("signing key %v, %v", sk, err)
	}
}

// checkNotInFiles fails if any secret is in any file of dir.
func checkNotInFiles(t *testing.T, dir string, secrets ...[]byte) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // a directory
		}
		for _, s := range secrets {
			if bytes.Contains(b, s) {
				t.Errorf("%s holds a secret in clear", e.Name())
			}
		}
	}
}

func keyFile(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSeal_RoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := keyFile(t)
	db, err := store.Open(t.Context(), dir, store.WithSealKey(key))
	if err != nil {
		t.Fatal(err)
	}
	root, issuer, pseudonym := sealSetup(t, db)
	checkSecrets(t, db, root, issuer, pseudonym)
	if !db.Sealed() {
		t.Fatal("not sealed")
	}
	checkNotInFiles(t, dir, root[1:], issuer[1:], pseudonym) // while open: the WAL too
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	checkNotInFiles(t, dir, root[1:], issuer[1:], pseudonym)

	db, err = store.Open(t.Context(), dir, store.WithSealKey(key))
	if err != nil {
		t.Fatal(err)
	}
	checkSecrets(t, db, root, issuer, pseudonym)
	db.Close()

	if _, err := store.Open(t.Context(), dir); !errors.Is(err, store.ErrSealed) {
		t.Fatalf("sealed directory without the key: %v", err)
	}
	if _, err := store.Open(t.Context(), dir, store.WithSealKey(keyFile(t))); !errors.Is(err, store.ErrWrongSealKey) {
		t.Fatalf("sealed directory with a wrong key: %v", err)
	}
	if _, err := store.Open(t.Context(), dir, store.WithSealKey(key[:31])); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("short key: %v", err)
	}
}

// Keys stored in clear by an appliance without a key file are sealed on
// its first start with one, and the old clear bytes are gone from the
// files.
func TestSeal_ExistingClearKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, err := store.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	root, issuer, pseudonym := sealSetup(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, store.FileName))
	if !bytes.Contains(b, root[1:]) {
		t.Fatal("the clear database does not hold the root key: the search below would prove nothing")
	}
	key := keyFile(t)
	db, err = store.Open(t.Context(), dir, store.WithSealKey(key))
	if err != nil {
		t.Fatal(err)
	}
	if n := db.KeysSealedOnOpen(); n != 3 {
		t.Errorf("sealed %d values on open, want 3 (two keys, the pseudonym key)", n)
	}
	checkSecrets(t, db, root, issuer, pseudonym)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	checkNotInFiles(t, dir, root[1:], issuer[1:], pseudonym)
	db, err = store.Open(t.Context(), dir, store.WithSealKey(key))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n := db.KeysSealedOnOpen(); n != 0 {
		t.Errorf("sealed %d values again", n)
	}
	checkSecrets(t, db, root, issuer, pseudonym)
}

func TestReadKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, c := range map[string]struct {
		size int
		ok   bool
	}{"empty": {0, false}, "short": {31, false}, "32": {32, true}, "4k": {4096, true}, "too large": {4097, false}} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, bytes.Repeat([]byte{7}, c.size), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := store.ReadKeyFile(p); (err == nil) != c.ok {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := store.ReadKeyFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing key file read")
	}
}

// A standalone appliance's audit-signing key is a private key like the
// others: sealed on the first open with a key file, and still the same
// key (the one its checkpoints' verifiers hold) afterwards.
func TestSeal_AuditKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, err := store.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	sealSetup(t, db)
	vkey, err := db.AuditPublicKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	var seed []byte
	err = raw.QueryRow(`SELECT substr(private, 1, 32) FROM audit_key WHERE id = 1`).Scan(&seed)
	raw.Close()
	if err != nil || len(seed) != 32 {
		t.Fatalf("audit key in clear: %d bytes, %v", len(seed), err)
	}
	db, err = store.Open(t.Context(), dir, store.WithSealKey(keyFile(t)))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := db.AuditPublicKey(t.Context()); err != nil || got != vkey {
		t.Fatalf("audit key after sealing: %q, %v; want %q", got, err, vkey)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	checkNotInFiles(t, dir, seed)
}
