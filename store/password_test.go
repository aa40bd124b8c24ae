package store_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/argon2"

	"passgate/store"
)

func TestHashPassword(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		h, err := store.HashPassword("correct horse")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
			t.Fatalf("hash %q", h)
		}
		if parts := strings.Split(h, "$"); len(parts) != 6 || len(parts[4]) != 22 || len(parts[5]) != 43 {
			t.Fatalf("salt or key of the wrong length in %q", h)
		}
		h2, _ := store.HashPassword("correct horse")
		if h == h2 {
			t.Fatal("two hashes of one password are equal: salt not random")
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for _, pw := range []string{"", strings.Repeat("p", 1025)} {
			if _, err := store.HashPassword(pw); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%d bytes: err = %v, want ErrInvalid", len(pw), err)
			}
		}
	})
}

func TestVerifyPassword(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		ok, err := store.VerifyPassword(testHash, "correct horse")
		if err != nil || !ok {
			t.Fatalf("VerifyPassword = %v, %v", ok, err)
		}
	})
	t.Run("WrongPassword", func(t *testing.T) {
		for _, pw := range []string{"correct horse ", "Correct horse", "", strings.Repeat("x", 5000)} {
			ok, err := store.VerifyPassword(testHash, pw)
			if err != nil || ok {
				t.Errorf("%q: VerifyPassword = %v, %v, want false, nil", pw, ok, err)
			}
		}
	})
	t.Run("OtherParameters", func(t *testing.T) {
		// Parameters come from the string, so hashes made with other
		// (older or stronger) settings keep working.
		salt := []byte("0123456789abcdef")
		key := argon2.IDKey([]byte("password"), salt, 1, 1024, 2, 24)
		h := "$argon2id$v=19$m=1024,t=1,p=2$" + base64.RawStdEncoding.EncodeToString(salt) + "$" +
			base64.RawStdEncoding.EncodeToString(key)
		if ok, err := store.VerifyPassword(h, "password"); err != nil || !ok {
			t.Fatalf("VerifyPassword = %v, %v", ok, err)
		}
		if ok, err := store.VerifyPassword(h, "Password"); err != nil || ok {
			t.Fatalf("wrong password: VerifyPassword = %v, %v", ok, err)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		parts := strings.Split(testHash, "$")
		salt, key := parts[4], parts[5]
		for _, h := range []string{
			"",
			"plaintext",
			"$2a$10$abcdefghijklmnopqrstuv",
			"$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key,
			"$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + key,
			"$argon2id$v=19$m=19456,t=2$" + salt + "$" + key,
			"$argon2id$v=19$t=2,m=19456,p=1$" + salt + "$" + key,
			"$argon2id$v=19$m=4194304,t=2,p=1$" + salt + "$" + key, // 4 GiB
			"$argon2id$v=19$m=19456,t=1000000,p=1$" + salt + "$" + key,
			"$argon2id$v=19$m=19456,t=0,p=1$" + salt + "$" + key,
			"$argon2id$v=19$m=19456,t=2,p=0$" + salt + "$" + key,
			"$argon2id$v=19$m=19456,t=2,p=255$" + salt + "$" + key,
			"$argon2id$v=19$m=4,t=2,p=1$" + salt + "$" + key,
			"$argon2id$v=19$m=-1,t=2,p=1$" + salt + "$" + key,
			"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key + "$",
			"$argon2id$v=19$m=19456,t=2,p=1$" + "!!!" + "$" + key,
			"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key[:10],
			"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key + "==",
			"$argon2id$v=19$m=19456,t=2,p=1$$" + key,
		} {
			ok, err := store.VerifyPassword(h, "correct horse")
			if ok || !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%q: VerifyPassword = %v, %v, want false, ErrInvalid", h, ok, err)
			}
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		// A burst of logins queues on the hashing semaphore; all answer.
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if ok, err := store.VerifyPassword(testHash, "correct horse"); !ok || err != nil {
					t.Errorf("VerifyPassword = %v, %v", ok, err)
				}
			})
		}
		wg.Wait()
	})
}
