package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"passgate/citylink"
	"passgate/citytrace"
	"passgate/export"
	"passgate/pass"
	"passgate/store"
	"passgate/web"
)

// exitIncomplete: a city trace that some district did not answer; its
// result is written, and names them.
const exitIncomplete = 3

// cmdCityTrace traces one person across every district hub named: the
// ID number becomes the city subject with the city pseudonym key at
// once, only the subject is sent, and the query is recorded in the
// audit trail of --data with the districts that did not answer.
func cmdCityTrace(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("city trace", "--id ID --from T --to T --districts D1,D2,... --city URLS --city-creds FILE [--city-ca FILE] --city-key FILE [--window 15m] [--timeout 10s] [--out FILE]")
	id := fs.String("id", "", "ID number of the person; - reads it from standard input")
	tr := addRangeFlags(fs, "", "")
	window := fs.String("window", "15m", "contacts within ± this of each check: a duration (15m) or minutes (15), 1m to 24h")
	districts := fs.String("districts", "", "every district to ask, comma-separated (required)")
	urls := fs.String("city", "", "the city cluster's NATS URLs, comma-separated (required)")
	creds := fs.String("city-creds", "", "the city console user's nkey seed file, made by passgate city nats-user --console (required)")
	ca := fs.String("city-ca", "", "PEM CA the city cluster's TLS certificates are checked against; empty: the system's")
	keyPath := fs.String("city-key", "", "the city pseudonym key file (required)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the districts, 1s to 2m")
	asker := fs.String("as", "", "the officer asking, as the districts' audit trails name them (default: this OS user)")
	out := fs.String("out", "-", "output file (JSON Lines), - for standard output")
	allowBad := fs.Bool("allow-bad-check-digit", false, badCheckDigitUsage)
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	if *districts == "" || *urls == "" || *creds == "" || *keyPath == "" || *tr.from == "" || *tr.to == "" {
		return e.usageError("city trace", "--id, --from, --to, --districts, --city, --city-creds and --city-key are required")
	}
	cfg := citylink.Config{URLs: *urls, SeedFile: *creds, CAFile: *ca}
	if err := cfg.Check(); err != nil {
		return e.usageError("city trace", "%v", err)
	}
	if *timeout < time.Second || *timeout > 2*time.Minute {
		return e.usageError("city trace", "--timeout must be 1s to 2m")
	}
	if *asker == "" {
		*asker = strings.TrimPrefix(string(cliActor()), "cli:")
	}
	r := &export.TraceRequest{Location: time.Local}
	idNumber, code := e.traceArgs("city trace", r, tr, *window, id, *allowBad)
	if code != exitOK {
		return code
	}
	key, err := readCityKey(*keyPath)
	if err != nil {
		return e.fail(fmt.Errorf("city trace: %w", err))
	}
	r.Subject = pass.Pseudonym(key, idNumber)

	db, err := e.openDB(ctx, *data, e.stderr)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	nc, err := citylink.Dial(cfg, "passgate city trace", citylink.ConsoleInboxPrefix)
	if err != nil {
		return e.fail(fmt.Errorf("city trace: %w", err))
	}
	defer nc.Close()
	res, err := citytrace.AskDistricts(ctx, nc, strings.Split(*districts, ","), citytrace.Ask{Asker: *asker,
		Subjects: []pass.Subject{r.Subject}, From: r.From, To: r.To, Window: r.Window}, *timeout)
	if err != nil {
		return e.fail(err)
	}
	missing := make([]string, len(res.Missing))
	for i, m := range res.Missing {
		missing[i] = m.District + ": " + m.Why
	}
	if err := db.Audit(ctx, &store.AuditRecord{Actor: cliActor(), Action: store.AuditCityTraceAsked, Subject: hex.EncodeToString(r.Subject[:]),
		Detail: store.AuditDetail(map[string]any{"request": res.ID, "asker": *asker, "from": r.From.UTC().Format(time.RFC3339),
			"to": r.To.UTC().Format(time.RFC3339), "window_minutes": int(r.Window / time.Minute), "answered": res.Answered,
			"missing": missing, "checks": len(res.Checks), "contacts": len(res.Contacts)})}); err != nil {
		return e.fail(fmt.Errorf("city trace: audit: %w", err))
	}
	if err := e.writeOutput(*out, func(w io.Writer) error { return writeCityTrace(w, res) }); err != nil {
		return e.fail(fmt.Errorf("city trace: %w", err))
	}
	fmt.Fprintf(e.stderr, "passgate: %d checks, %d contacts in %d districts\n", len(res.Checks), len(res.Contacts), len(res.Answered))
	if !res.Complete() {
		fmt.Fprintf(e.stderr, "passgate: INCOMPLETE: %d districts did not answer: %s\n", len(missing), strings.Join(missing, "; "))
		return exitIncomplete
	}
	return exitOK
}

// writeCityTrace writes a city trace as JSON Lines: one "check" line per
// check of the person, one "contact" line per contact, one "missing"
// line per district that did not answer, and a "result" line last.
func writeCityTrace(w io.Writer, res *citytrace.Result) error {
	enc := json.NewEncoder(w)
	for _, c := range res.Checks {
		if err := enc.Encode(map[string]any{"type": "check", "district": c.District, "at": time.UnixMilli(c.AtMS).UTC().Format(time.RFC3339Nano),
			"place": c.Place, "decision": c.Decision, "contacts": len(c.Contacts), "contacts_not_listed": c.ContactsOmitted}); err != nil {
			return err
		}
	}
	for _, p := range res.Contacts {
		if err := enc.Encode(map[string]any{"type": "contact", "subject": p.Subject, "overlaps": p.Overlaps, "districts": p.Districts,
			"first": p.First.UTC().Format(time.RFC3339Nano), "last": p.Last.UTC().Format(time.RFC3339Nano)}); err != nil {
			return err
		}
	}
	for _, m := range res.Missing {
		if err := enc.Encode(map[string]any{"type": "missing", "district": m.District, "why": m.Why}); err != nil {
			return err
		}
	}
	return enc.Encode(map[string]any{"type": "result", "request": res.ID, "answered": res.Answered, "complete": res.Complete(),
		"truncated": res.Truncated})
}

// readCityKey reads the city pseudonym key file.
func readCityKey(path string) ([]byte, error) {
	kb, err := readBounded(path, pass.CityKeyFileLen)
	if err != nil {
		return nil, err
	}
	key, err := pass.ParseCityKey(kb)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// cityConsole connects serve's city console as the console's nkey user
// (cfg), the way a hub's link connects: reconnecting for ever, so that
// the appliance starts and keeps serving while the city is down.
func cityConsole(cfg citylink.Config, keyPath, districts string, timeout time.Duration) (*web.CityConsole, error) {
	key, err := readCityKey(keyPath)
	if err != nil {
		return nil, fmt.Errorf("city console: %w", err)
	}
	nc, err := citylink.Dial(cfg, "passgate city console", citylink.ConsoleInboxPrefix)
	if err != nil {
		return nil, fmt.Errorf("city console: %w", err)
	}
	return &web.CityConsole{Conn: nc, Districts: splitList(districts), Key: key, Timeout: timeout}, nil
}
