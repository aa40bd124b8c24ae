package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"passgate/pass"
	"passgate/store"
)

// The city health commission's offline commands: the city root key is
// made, and used, on a machine that holds no district's data.

// Files city init writes into its --out directory.
const (
	cityKeyFile    = "city-root.key"    // private: mode 0600, stays offline
	cityAnchorFile = "city-root.anchor" // public: handed to every district hub
)

// defaultCityValidity is how long a district root's certificate lasts by
// default: long enough that renewing it is a yearly chore, short enough
// that a lost district key does not stay trusted for ever.
const defaultCityValidity = 2 * 365 * 24 * time.Hour

// cmdCity runs the city root's commands.
func cmdCity(ctx context.Context, e *env, args []string) int {
	return e.dispatch(ctx, "city", args, []command{
		{"init", "create the city root key (offline) and its public anchor file", cmdCityInit},
		{"certify", "certify a district's root from its trust anchor file", cmdCityCertify},
		{"retire", "retire a certified district root everywhere", cmdCityRetire},
		{"publish-retire", "publish a retirement to the city stream: every district hub applies it", cmdCityPublishRetire},
		{"nats-user", "make a district hub's credentials for the city cluster and its configuration entry", cmdCityNatsUser},
		{"streams", "create the city stream on the city cluster (administrator)", cmdCityStreams},
		{"trace", "trace a person across every district hub over the city tier", cmdCityTrace},
		{"status", "change a person's status city-wide over the city tier (console)", cmdCityStatus},
		{"dashboard", "every district hub's throughput, appliances and list ages over the city tier", cmdCityDashboard},
		{"pseudonym-key", "create the city pseudonym key file (offline), one subject per person city-wide", cmdCityPseudonymKey},
	})
}

// cmdCityInit creates the city root: the private key file (mode 0600)
// and the anchor file to hand to every district hub. It never replaces
// an existing key file: that would orphan every certificate made with it.
func cmdCityInit(ctx context.Context, e *env, args []string) int {
	fs := e.flagSet("city init", "--out DIR [--city ID] [--name NAME]")
	out := fs.String("out", "", "directory to write the key and anchor files into (required)")
	id := fs.String("city", "city", "the city's short identifier (letters, digits, -)")
	name := fs.String("name", "", "the city's display name")
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	if *out == "" {
		return e.usageError("city init", "--out is required")
	}
	if err := pass.CheckIdent("city", *id); err != nil {
		return e.usageError("city init", "%v", err)
	}
	keyPath := filepath.Join(*out, cityKeyFile)
	if _, err := os.Stat(keyPath); !errors.Is(err, os.ErrNotExist) {
		return e.fail(fmt.Errorf("create city root: %s exists already; a city root is made once", keyPath))
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return e.fail(fmt.Errorf("create city root: %w", err))
	}
	k, err := pass.GenerateKey(pass.AlgEdDSA, rand.Reader)
	if err != nil {
		return e.fail(fmt.Errorf("create city root: %w", err))
	}
	anchor, err := pass.MarshalAnchor(*id, *name, []*pass.PrivateKey{k})
	if err != nil {
		return e.fail(fmt.Errorf("create city root: %w", err))
	}
	priv, err := k.MarshalBinary()
	if err != nil {
		return e.fail(fmt.Errorf("create city root: %w", err))
	}
	if err := writeBytes(keyPath, priv); err != nil {
		return e.fail(fmt.Errorf("create city root: write key: %w", err))
	}
	if err := writeBytes(filepath.Join(*out, cityAnchorFile), anchor); err != nil {
		return e.fail(fmt.Errorf("create city root: write anchor: %w", err))
	}
	fmt.Fprintf(e.stdout, "city %s root %s\nfingerprint: %s\n", *id, k.Public().KID, pass.FormatFingerprint(k.Public().Fingerprint()))
	fmt.Fprintf(e.stdout, "keep %s offline; give %s to every district hub and read the fingerprint to its admin by another channel\n",
		keyPath, filepath.Join(*out, cityAnchorFile))
	return exitOK
}

// readCityInputs reads the city root's private key file and the file
// at path (at most limit bytes) it is to sign about.
func readCityInputs(keyPath, path string, limit int) (*pass.PrivateKey, []byte, error) {
	kb, err := readBounded(keyPath, 1024)
	if err != nil {
		return nil, nil, fmt.Errorf("read city key: %w", err)
	}
	k, err := pass.ParsePrivateKey(kb)
	if err != nil {
		return nil, nil, fmt.Errorf("read city key %s: %w", keyPath, err)
	}
	b, err := readBounded(path, limit)
	return k, b, err
}

// writeBytes writes b to path atomically, mode 0600.
func writeBytes(path string, b []byte) error {
	return writeFileAtomic(path, func(w io.Writer) error { _, err := w.Write(b); return err })
}

// cmdCityCertify certifies the root of a district's trust anchor file
// whose fingerprint, read out by the district by another channel,
// matches.
func cmdCityCertify(ctx context.Context, e *env, args []string) int {
	fs := e.flagSet("city certify", "--city-key FILE --district FILE --fingerprint HEX --out FILE [--valid DURATION]")
	keyPath := fs.String("city-key", "", "the city root's key file (required)")
	anchorPath := fs.String("district", "", "the district's trust anchor file, from `passgate trust export` (required)")
	fp := fs.String("fingerprint", "", "the district root's fingerprint as the district read it to you (required)")
	out := fs.String("out", "", "certificate file to write (required)")
	valid := fs.Duration("valid", defaultCityValidity, "how long the certificate lasts")
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	if *keyPath == "" || *anchorPath == "" || *out == "" || *fp == "" {
		return e.usageError("city certify", "--city-key, --district, --fingerprint and --out are required")
	}
	if *valid <= 0 {
		return e.usageError("city certify", "--valid must be positive")
	}
	city, b, err := readCityInputs(*keyPath, *anchorPath, pass.MaxAnchorLen)
	if err != nil {
		return e.fail(err)
	}
	a, err := pass.ParseAnchor(b)
	if err != nil {
		return e.fail(fmt.Errorf("certify district root: %w", err))
	}
	want, err := pass.ParseFingerprint(*fp)
	if err != nil {
		return e.usageError("city certify", "%v", err)
	}
	var root *pass.PublicKey
	for _, r := range a.Roots {
		if r.Fingerprint() == want {
			root = r
		}
	}
	if root == nil {
		return e.fail(fmt.Errorf("certify district root: the fingerprint matches no root of district %s's file", a.District))
	}
	now := time.Now()
	rec, err := pass.CertifyDistrictRoot(city, a.District, root, now, now.Add(*valid))
	if err != nil {
		return e.fail(err)
	}
	if err := writeBytes(*out, rec); err != nil {
		return e.fail(fmt.Errorf("certify district root: write: %w", err))
	}
	fmt.Fprintf(e.stdout, "district %s root %s certified until %s\n", a.District, root.KID, now.Add(*valid).UTC().Format(time.RFC3339))
	fmt.Fprintln(e.stdout, "give the certificate to the district's hub: `passgate trust import-certified FILE`; its city link carries it to every other hub")
	return exitOK
}

// cmdCityRetire makes the record that retires the root a certificate
// names, from --at on (default now).
func cmdCityRetire(ctx context.Context, e *env, args []string) int {
	fs := e.flagSet("city retire", "--city-key FILE --cert FILE --out FILE [--at RFC3339]")
	keyPath := fs.String("city-key", "", "the city root's key file (required)")
	certPath := fs.String("cert", "", "the certificate of the root to retire, from `passgate city certify` (required)")
	out := fs.String("out", "", "retirement file to write (required)")
	at := fs.String("at", "", "when the root stops being trusted (default: now)")
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	if *keyPath == "" || *certPath == "" || *out == "" {
		return e.usageError("city retire", "--city-key, --cert and --out are required")
	}
	when := time.Now()
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return e.usageError("city retire", "--at: %v", err)
		}
		when = t
	}
	city, b, err := readCityInputs(*keyPath, *certPath, pass.MaxCityRecordLen)
	if err != nil {
		return e.fail(err)
	}
	c, err := pass.ParseCityRecord(b, city.Public())
	if err != nil {
		return e.fail(fmt.Errorf("retire district root: %w", err))
	}
	rec, err := pass.RetireDistrictRoot(city, c.District, c.Root, when)
	if err != nil {
		return e.fail(err)
	}
	if err := writeBytes(*out, rec); err != nil {
		return e.fail(fmt.Errorf("retire district root: write: %w", err))
	}
	fmt.Fprintf(e.stdout, "district %s root %s retired from %s\n", c.District, c.Root.KID, when.UTC().Format(time.RFC3339))
	fmt.Fprintln(e.stdout, "publish it to every district hub: `passgate city publish-retire FILE` (or `passgate trust import-certified FILE` at each hub)")
	return exitOK
}

// cmdTrustCity makes the city root of a city anchor file the one this
// hub trusts, once its fingerprint matches.
func cmdTrustCity(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("trust city", "FILE --fingerprint HEX")
	fp := fs.String("fingerprint", "", "the city root's fingerprint as the city read it to you (required)")
	return e.onFile(ctx, fs, data, args, pass.MaxAnchorLen, func() int {
		return e.requireFingerprint(fs.Name(), *fp, "the city")
	}, func(db *store.DB, b []byte) int {
		c, added, err := db.TrustCityRoot(ctx, b, *fp, cliActor())
		if err != nil {
			return e.fail(err)
		}
		if !added {
			fmt.Fprintf(e.stdout, "city %s: its root was trusted already\n", c.City)
			return exitOK
		}
		fmt.Fprintf(e.stdout, "city %s root %s trusted; the hub's appliances receive it at their next sync\n", c.City, c.Key.KID)
		return exitOK
	})
}

// cmdTrustImportCertified applies a city record (a certified district
// root, this district's or another's, or a retirement) at the hub.
func cmdTrustImportCertified(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("trust import-certified", "FILE")
	return e.onFile(ctx, fs, data, args, pass.MaxCityRecordLen, nil, func(db *store.DB, b []byte) int {
		r, err := db.ImportCityRecord(ctx, b, cliActor())
		if err != nil {
			return e.fail(err)
		}
		if r.Kind == pass.CityRetire {
			fmt.Fprintf(e.stdout, "district %s root %s retired from %s\n", r.District, r.Root.KID, r.RetiredAt.UTC().Format(time.RFC3339))
			return exitOK
		}
		fmt.Fprintf(e.stdout, "district %s root %s certified until %s\n", r.District, r.Root.KID, r.NotAfter.UTC().Format(time.RFC3339))
		return exitOK
	})
}
