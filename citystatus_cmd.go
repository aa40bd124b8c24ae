package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"passgate/cityask"
	"passgate/citylink"
	"passgate/district"
	"passgate/pass"
	"passgate/store"
)

// cmdCityStatus changes a person's status city-wide from the city
// console: the ID number becomes the city subject here, the change goes
// to the city stream, and every district hub applies it as it reads the
// stream. It succeeds only once the stream acknowledged the change, and
// records it then in the audit trail of --data.
func cmdCityStatus(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("city status", "--id ID --color C --reason TEXT --city URLS --city-creds FILE [--city-ca FILE] --city-key FILE")
	id := fs.String("id", "", "ID number of the person; - reads it from standard input")
	colorName := fs.String("color", "", "the new colour: green, yellow or red (required)")
	reason := fs.String("reason", "", "why, as the districts' status histories show it (required)")
	urls := fs.String("city", "", "the city cluster's NATS URLs, comma-separated (required)")
	creds := fs.String("city-creds", "", "the city console user's nkey seed file, made by passgate city nats-user --console (required)")
	ca := fs.String("city-ca", "", "PEM CA the city cluster's TLS certificates are checked against; empty: the system's")
	keyPath := fs.String("city-key", "", "the city pseudonym key file (required)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the city stream's acknowledgement, 1s to 2m")
	asker := fs.String("as", "", "the officer, as the districts' status histories name them (default: this OS user)")
	allowBad := fs.Bool("allow-bad-check-digit", false, badCheckDigitUsage)
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	if *urls == "" || *creds == "" || *keyPath == "" || *colorName == "" {
		return e.usageError("city status", "--id, --color, --reason, --city, --city-creds and --city-key are required")
	}
	cfg := citylink.Config{URLs: *urls, SeedFile: *creds, CAFile: *ca}
	if err := cfg.Check(); err != nil {
		return e.usageError("city status", "%v", err)
	}
	if *timeout < time.Second || *timeout > 2*time.Minute {
		return e.usageError("city status", "--timeout must be 1s to 2m")
	}
	color, err := pass.ParseColor(*colorName)
	if err != nil {
		return e.usageError("city status", "%v", err)
	}
	why, err := district.CheckCityStatusChange(color, *reason)
	if err != nil {
		return e.usageError("city status", "--reason: %v", err)
	}
	if *asker == "" {
		*asker = strings.TrimPrefix(string(cliActor()), "cli:")
	}
	if !cityask.ValidAsker(*asker) {
		return e.usageError("city status", "--as: letters, digits and . _ : @ - only, at most 64")
	}
	if err := e.readIDArg(id); err != nil {
		return e.usageError("city status", "%v", err)
	}
	idNumber, err := district.CheckIDNumber(*id, time.Now(), district.IDOptions(*allowBad)...)
	if err != nil {
		return e.usageError("city status", "--id: %v", err)
	}
	key, err := readCityKey(*keyPath)
	if err != nil {
		return e.fail(fmt.Errorf("city status: %w", err))
	}
	rid, err := cityask.NewID()
	if err != nil {
		return e.fail(err)
	}
	c := &store.CityStatus{ID: rid, Asker: *asker, Subject: pass.Pseudonym(key, idNumber), Color: color, Reason: why, At: time.Now()}

	db, err := e.openDB(ctx, *data, e.stderr)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	nc, err := citylink.Dial(cfg, "passgate city status", citylink.ConsoleInboxPrefix)
	if err != nil {
		return e.fail(fmt.Errorf("city status: %w", err))
	}
	defer nc.Close()
	pctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	seq, err := citylink.PublishStatus(pctx, nc, c)
	if err != nil {
		return e.fail(fmt.Errorf("city status: not published, no district will apply it: %w", err))
	}
	if err := db.Audit(ctx, &store.AuditRecord{Actor: cliActor(), Action: store.AuditCityStatusAsked, Subject: hex.EncodeToString(c.Subject[:]),
		Detail: store.AuditDetail(map[string]any{"request": rid, "asker": *asker, "color": color.String(), "stream_seq": seq})}); err != nil {
		return e.fail(fmt.Errorf("city status: published (request %s), but not audited here: %w", rid, err))
	}
	fmt.Fprintf(e.stdout, "published to the city: request %s, %s; every district hub applies it as it reads the stream\n", rid, color)
	return exitOK
}
