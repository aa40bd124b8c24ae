package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"

	"passgate/pass"
	"passgate/store"
)

// cmdCityPseudonymKey creates the city pseudonym key file (mode 0600)
// once: a second key would give every person a second subject again.
func cmdCityPseudonymKey(ctx context.Context, e *env, args []string) int {
	fs := e.flagSet("city pseudonym-key", "--out FILE")
	out := fs.String("out", "", "key file to write (required); it never replaces one")
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	if *out == "" {
		return e.usageError("city pseudonym-key", "--out is required")
	}
	if _, err := os.Stat(*out); !errors.Is(err, os.ErrNotExist) {
		return e.fail(fmt.Errorf("create city pseudonym key: %s exists already; the city pseudonym key is made once", *out))
	}
	key := make([]byte, pass.CityKeyLen)
	if _, err := rand.Read(key); err != nil {
		return e.fail(fmt.Errorf("create city pseudonym key: %w", err))
	}
	b, err := pass.MarshalCityKey(key)
	if err != nil {
		return e.fail(fmt.Errorf("create city pseudonym key: %w", err))
	}
	if err := writeBytes(*out, b); err != nil {
		return e.fail(fmt.Errorf("create city pseudonym key: write: %w", err))
	}
	fmt.Fprintf(e.stdout, "city pseudonym key written to %s\ncheck: %s\n", *out, pass.FormatCityKeyCheck(pass.CityKeyCheck(key)))
	fmt.Fprintln(e.stdout, "carry the file to each district hub by hand and read the check value to its admin by another channel: `passgate trust city-key FILE --check CHECK`")
	return exitOK
}

// cmdTrustCityKey imports the city pseudonym key at a hub once its check
// value matches; the hub's offices then receive it at their next sync.
func cmdTrustCityKey(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("trust city-key", "FILE --check CHECK")
	check := fs.String("check", "", "the key's check value as the city read it to you (required)")
	return e.onFile(ctx, fs, data, args, pass.CityKeyFileLen, func() int {
		if *check == "" {
			return e.usageError(fs.Name(), "--check is required: compare the check value the city read to you by another channel")
		}
		return exitOK
	}, func(db *store.DB, b []byte) int {
		added, err := db.ImportCityPseudonymKey(ctx, b, *check, cliActor())
		if err != nil {
			return e.fail(err)
		}
		if !added {
			fmt.Fprintln(e.stdout, "the city pseudonym key was held already")
			return exitOK
		}
		fmt.Fprintln(e.stdout, "city pseudonym key imported: new registrations and passes carry the city subject; passes already out keep working until they expire")
		return exitOK
	})
}
