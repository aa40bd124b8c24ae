package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"passgate/check"
	"passgate/district"
	"passgate/pass"
	"passgate/store"
	"passgate/web/i18n"
)

// version is the build's version: the VCS revision when built from a
// checkout.
var version = func() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	switch {
	case rev == "":
		return "dev"
	case dirty:
		return rev + "-dirty"
	}
	return rev
}()

const defaultDataDir = "./passgate-data"

// newFlags returns a flag set with a --data
// flag with its PASSGATE_DATA fallback.
func (e *env) newFlags(name, usage string) (*flag.FlagSet, *string) {
	fs := e.flagSet(name, usage)
	data := fs.String("data", e.envOr("PASSGATE_DATA", defaultDataDir), "data directory (env PASSGATE_DATA)")
	e.keyFile = fs.String("key-file", e.getenv("PASSGATE_KEY_FILE"),
		"file (at least 32 random bytes) sealing the private keys at rest (env PASSGATE_KEY_FILE; default: the systemd credential passgate-key)")
	return fs, data
}

// credentialKey is the name of the systemd credential (LoadCredential=)
// that seals the keys when no key file is named.
const credentialKey = "passgate-key"

// sealKeyFile is the key file of this run: --key-file or
// PASSGATE_KEY_FILE, else the systemd credential if there is one, else
// none ("").
func (e *env) sealKeyFile() string {
	if e.keyFile != nil && *e.keyFile != "" {
		return *e.keyFile
	}
	if p := e.getenv("PASSGATE_KEY_FILE"); p != "" {
		return p // a command without the flag
	}
	if dir := e.getenv("CREDENTIALS_DIRECTORY"); dir != "" {
		p := filepath.Join(dir, credentialKey)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// openStore opens the data directory with the key file of this run, and
// warns on stderr about files it had to make owner-only.
func (e *env) openStore(ctx context.Context, dir string) (*store.DB, error) {
	var opts []store.Option
	if path := e.sealKeyFile(); path != "" {
		secret, err := store.ReadKeyFile(path)
		if err != nil {
			return nil, err
		}
		opts = append(opts, store.WithSealKey(secret))
	}
	db, err := store.Open(ctx, dir, opts...)
	if err != nil {
		return nil, err
	}
	for _, f := range db.ModesFixed() {
		fmt.Fprintf(e.stderr, "passgate: warning: %s in %s was readable by other users; made owner-only\n", f, dir)
	}
	if n := db.KeysSealedOnOpen(); n > 0 {
		fmt.Fprintf(e.stderr, "passgate: sealed %d keys stored in clear with the key file\n", n)
	}
	return db, nil
}

// flagSet returns a flag set that reports errors on stderr.
func (e *env) flagSet(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: passgate %s %s\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}

func (e *env) envOr(key, def string) string {
	if v := e.getenv(key); v != "" {
		return v
	}
	return def
}

// parse parses args; it returns false (after printing why) on a usage
// error or -h.
func parse(fs *flag.FlagSet, args []string) (ok bool, code int) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return false, exitOK
		}
		return false, exitError
	}
	return true, 0
}

// parseNoArgs is parse for commands that take flags only.
func (e *env) parseNoArgs(fs *flag.FlagSet, args []string) (ok bool, code int) {
	if ok, code := parse(fs, args); !ok {
		return false, code
	}
	if fs.NArg() > 0 {
		return false, e.usageError(fs.Name(), "unexpected argument %q", fs.Arg(0))
	}
	return true, 0
}

// usageError prints a usage problem as one line.
func (e *env) usageError(cmd, format string, args ...any) int {
	fmt.Fprintf(e.stderr, "passgate %s: %s\n", cmd, fmt.Sprintf(format, args...))
	return exitError
}

// openDB opens the data directory, setting up a standalone district on
// first use. Generated admin credentials go to w once.
func (e *env) openDB(ctx context.Context, dir string, w io.Writer) (*store.DB, error) {
	db, err := e.openStore(ctx, dir)
	if err != nil {
		return nil, err
	}
	res, err := district.EnsureSetup(ctx, db, district.SetupOptions{
		Name:          e.getenv("PASSGATE_DISTRICT_NAME"),
		AdminPassword: e.getenv("PASSGATE_ADMIN_PASSWORD"),
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	if res != nil {
		fmt.Fprintf(w, "passgate: new standalone district %q (%s) in %s\n", res.District.Name, res.District.ID, dir)
		if res.AdminPassword != "" {
			fmt.Fprintf(w, "passgate: first admin login: user %q, password %q (shown only once; change it after logging in)\n", res.AdminUser, res.AdminPassword)
		} else {
			fmt.Fprintf(w, "passgate: first admin login: user %q with the password from PASSGATE_ADMIN_PASSWORD\n", res.AdminUser)
		}
	}
	return db, nil
}

func cmdIssue(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("issue", "--name NAME --id IDNUMBER [flags]")
	name := fs.String("name", "", "full name of the resident (only the masked form is kept)")
	id := fs.String("id", "", "ID or document number (only a pseudonym and the last four characters are kept)")
	color := fs.String("color", "", "health colour: green, yellow or red (default: as registered, green for a new resident)")
	tested := fs.String("tested-at", "", "sample time of the latest negative test, RFC 3339 (e.g. 2026-11-25T08:00:00+08:00)")
	doses := fs.Int("doses", -1, "vaccine doses (default: as registered)")
	kind := fs.String("kind", "phone", "pass kind: phone (24 h) or paper (180 days)")
	qr := fs.String("qr", "", "also write the pass as a QR code PNG to this file")
	allowBad := fs.Bool("allow-bad-check-digit", false, badCheckDigitUsage)
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	req := district.IssueRequest{Name: *name, IDNumber: *id, Doses: *doses, Actor: cliActor(), AllowBadCheckDigit: *allowBad}
	var err error
	if *color != "" {
		if req.Color, err = pass.ParseColor(*color); err != nil {
			return e.usageError("issue", "%v", err)
		}
	}
	if req.Kind, err = pass.ParseKind(*kind); err != nil {
		return e.usageError("issue", "%v", err)
	}
	if *tested != "" {
		if req.TestedAt, err = time.Parse(time.RFC3339, *tested); err != nil {
			return e.usageError("issue", "--tested-at %q is not an RFC 3339 time such as 2026-11-25T08:00:00+08:00", *tested)
		}
	}
	db, err := e.openDB(ctx, *data, e.stderr)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	iss, err := district.Issue(ctx, db, req)
	if err != nil {
		return e.failID(err)
	}
	if *qr != "" {
		png, _, err := pass.QRPNG(iss.Text, 8)
		if err != nil {
			return e.fail(fmt.Errorf("render QR code: %w", err))
		}
		if err := os.WriteFile(*qr, png, 0o600); err != nil {
			return e.fail(fmt.Errorf("write QR code: %w", err))
		}
	}
	fmt.Fprintln(e.stdout, iss.Text)
	pol, err := db.Policy(ctx)
	if err != nil {
		return e.fail(err)
	}
	// The pass is issued either way; the one who asked for it learns now,
	// not at the gate, that this appliance's gates will refuse it.
	if r := check.Judge(pol, &iss.Claims, db.Now()); r != check.ReasonOK {
		fmt.Fprintf(e.stderr, "passgate issue: %s\n", refusalText(r))
	}
	return exitOK
}

// badCheckDigitUsage explains the flag that accepts a legacy ID number.
const badCheckDigitUsage = "accept a legacy mainland ID number whose check digit is wrong (checked against the card); the same flag is needed wherever it is typed again"

// failID reports err like fail, and says how to accept a mainland ID
// number whose only fault is a wrong check digit.
func (e *env) failID(err error) int {
	var in *district.InputError
	if errors.As(err, &in) && district.IsBadCheckDigit(err) {
		fmt.Fprintf(e.stderr, "passgate: %s; %s\n", in.Msg, badCheckDigitHint)
		return exitError
	}
	return e.fail(err)
}

// badCheckDigitHint ends the one-line error about a wrong check digit.
const badCheckDigitHint = "a legacy number known to carry a wrong check digit needs --allow-bad-check-digit"

// refusalText says in Chinese and English that a gate under this
// appliance's policy refuses a pass, and why, with what to do when a test
// result is what is missing.
func refusalText(r check.Reason) string {
	zh, en := i18n.Printer{Lang: i18n.ZH}, i18n.Printer{Lang: i18n.EN}
	msg := fmt.Sprintf("%s / %s (%s)", zh.T("verdict.deny", zh.T("reason."+string(r))), en.T("verdict.deny", en.T("reason."+string(r))), r)
	if r == check.ReasonTestMissing || r == check.ReasonTestTooOld {
		msg += "; " + zh.T("verdict.record_test") + " / " + en.T("verdict.record_test") + ": --tested-at"
	}
	return msg
}

func cmdCheck(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("check", "[PAYLOAD | -]")
	if ok, code := parse(fs, args); !ok {
		return code
	}
	var payload string
	switch {
	case fs.NArg() > 1:
		return e.usageError("check", "give one payload (or - to read it from standard input)")
	case fs.NArg() == 1 && fs.Arg(0) != "-":
		payload = fs.Arg(0)
	default:
		// Read one bounded payload: more than a pass can hold is refused
		// by the check itself as too long.
		b, err := io.ReadAll(io.LimitReader(e.stdin, check.MaxInput+2))
		if err != nil {
			return e.fail(fmt.Errorf("read payload: %w", err))
		}
		payload = string(b)
	}
	db, err := e.openDB(ctx, *data, e.stderr)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	c, err := check.New(ctx, db)
	if err != nil {
		return e.fail(err)
	}
	d, err := c.Check(ctx, "cli", payload)
	if err != nil {
		return e.fail(err)
	}
	out, err := json.Marshal(d)
	if err != nil {
		return e.fail(err)
	}
	fmt.Fprintln(e.stdout, string(out))
	if !d.Allowed() {
		return exitDeny
	}
	return exitOK
}

func cmdStatus(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("status", "--id IDNUMBER --color COLOR --reason TEXT")
	id := fs.String("id", "", "ID or document number of the resident")
	color := fs.String("color", "", "new health colour: green, yellow or red")
	reason := fs.String("reason", "", "why the status changes (kept in the history)")
	allowBad := fs.Bool("allow-bad-check-digit", false, badCheckDigitUsage)
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	if *color == "" {
		return e.usageError("status", "--color is required")
	}
	to, err := pass.ParseColor(*color)
	if err != nil {
		return e.usageError("status", "%v", err)
	}
	db, err := e.openDB(ctx, *data, e.stderr)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	opts := district.IDOptions(*allowBad)
	ch, err := district.SetStatus(ctx, db, *id, to, *reason, cliActor(), opts...)
	if err != nil {
		return e.failID(err)
	}
	from := "none"
	if ch.From.Valid() {
		from = ch.From.String()
	}
	if ch.From == ch.To { // a lost card: only the passes are voided
		fmt.Fprintf(e.stdout, "status stays %s; earlier passes are void\n", ch.To)
		return exitOK
	}
	fmt.Fprintf(e.stdout, "status changed from %s to %s; earlier passes are void\n", from, ch.To)
	return exitOK
}

func cmdPolicy(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("policy", "[--colors green,...] [--max-test-age DURATION] [--min-doses N] [--repeat-window DURATION] [--scan-retention-days N] [--pass-retention-days N] [--audit-retention-days N] [--time-zone ZONE]")
	colors := fs.String("colors", "", "colours allowed through, comma separated")
	maxAge := fs.String("max-test-age", "", "maximum time since a negative test, e.g. 48h or 72h; 0 for no test required")
	minDoses := fs.String("min-doses", "", "minimum vaccine doses")
	repeat := fs.String("repeat-window", "", "flag a pass checked again within this time, e.g. 5m; 0 to turn off")
	paper := fs.String("accept-paper", "", "accept paper passes: true or false")
	skew := fs.String("clock-skew", "", "clock difference tolerated on pass and certificate times, e.g. 5m")
	retention := fs.String("scan-retention-days", "", "days scans are kept before they are purged (default 28)")
	passRetention := fs.String("pass-retention-days", "", "days a pass record is kept after the pass expires (default 90, 1 to 3650)")
	auditRetention := fs.String("audit-retention-days", "", "days audit records are kept (default 365, 30 to 3650)")
	zone := fs.String("time-zone", "", "the district's time zone, an IANA name (default Asia/Shanghai): dates typed to export and trace mean midnight there, and pages and files show its times")
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	db, err := e.openDB(ctx, *data, e.stderr)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	p, err := db.Policy(ctx)
	if err != nil {
		return e.fail(err)
	}
	changed := false
	if *colors != "" {
		p.Colors = nil
		for _, s := range strings.Split(*colors, ",") {
			c, err := pass.ParseColor(s)
			if err != nil {
				return e.usageError("policy", "%v", err)
			}
			p.Colors = append(p.Colors, c)
		}
		changed = true
	}
	for _, d := range []struct {
		flag, val string
		dst       *time.Duration
	}{{"max-test-age", *maxAge, &p.MaxTestAge}, {"repeat-window", *repeat, &p.RepeatWindow}, {"clock-skew", *skew, &p.ClockSkew}} {
		if d.val == "" {
			continue
		}
		v, err := time.ParseDuration(d.val)
		if err != nil {
			return e.usageError("policy", "--%s %q is not a duration such as 48h or 5m", d.flag, d.val)
		}
		*d.dst, changed = v, true
	}
	if *minDoses != "" {
		n, err := strconv.Atoi(*minDoses)
		if err != nil {
			n = -1 // no bound admits it: refused below with the bounds
		}
		p.MinDoses, changed = n, true
	}
	for _, d := range []struct {
		val string
		dst *time.Duration
	}{{*retention, &p.ScanRetention}, {*passRetention, &p.PassRetention}, {*auditRetention, &p.AuditRetention}} {
		if d.val == "" {
			continue
		}
		// Not a count of days, or 0 (which the store reads as "the
		// default"): no bound admits -1, so it is refused below.
		*d.dst, changed = -1, true
		if n, err := strconv.Atoi(d.val); err == nil && n > 0 && int64(n) <= math.MaxInt64/int64(24*time.Hour) {
			*d.dst = time.Duration(n) * 24 * time.Hour
		}
	}
	if *zone != "" {
		p.TimeZone, changed = *zone, true
	}
	if *paper != "" {
		v, err := strconv.ParseBool(*paper)
		if err != nil {
			return e.usageError("policy", "--accept-paper %q is not true or false", *paper)
		}
		p.AcceptPaper, changed = v, true
	}
	if changed {
		if errs := p.Validate(); errs != nil {
			en := i18n.Printer{Lang: i18n.EN}
			for _, fe := range errs {
				e.usageError("policy", "--%s: %s", policyFlags[fe.Field], en.T(fe.Code, fe.Args...))
			}
			return exitError
		}
		// Audited with old → new values in the same transaction.
		if err := db.ChangePolicy(ctx, p, cliActor()); err != nil {
			return e.fail(err)
		}
	}
	out, _ := json.MarshalIndent(policyJSON(p), "", "  ")
	fmt.Fprintln(e.stdout, string(out))
	return exitOK
}

// policyFlags names the flag of each policy field, for
// store.Policy.Validate's messages.
var policyFlags = map[string]string{
	store.PolicyColors:         "colors",
	store.PolicyMaxTestAge:     "max-test-age",
	store.PolicyMinDoses:       "min-doses",
	store.PolicyRepeatWindow:   "repeat-window",
	store.PolicyClockSkew:      "clock-skew",
	store.PolicyScanRetention:  "scan-retention-days",
	store.PolicyPassRetention:  "pass-retention-days",
	store.PolicyAuditRetention: "audit-retention-days",
	store.PolicyTimeZone:       "time-zone",
}

func policyJSON(p *store.Policy) map[string]any {
	colors := make([]string, len(p.Colors))
	for i, c := range p.Colors {
		colors[i] = c.String()
	}
	return map[string]any{
		"colors":              colors,
		"max_test_age":        p.MaxTestAge.String(),
		"min_doses":           p.MinDoses,
		"accept_paper":        p.AcceptPaper,
		"repeat_window":       p.RepeatWindow.String(),
		"clock_skew":          p.ClockSkew.String(),
		"scan_retention_days": int(p.ScanRetention / (24 * time.Hour)),
		// Whole days rounded down, like the scan retention: the CLI and
		// the web form only ever set whole days.
		"pass_retention_days":  int(p.PassRetention / (24 * time.Hour)),
		"audit_retention_days": int(p.AuditRetention / (24 * time.Hour)),
		"time_zone":            p.TimeZone,
		"updated_at":           p.UpdatedAt.In(p.Location()).Format(time.RFC3339),
	}
}

func cmdDevice(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		return e.usageError("device", "want a subcommand: add NAME, list or revoke NAME")
	}
	sub, args := args[0], args[1:]
	fs, data := e.newFlags("device "+sub, "")
	if ok, code := parse(fs, args); !ok {
		return code
	}
	switch sub {
	case "add", "revoke":
		if fs.NArg() != 1 {
			return e.usageError("device "+sub, "give the device name")
		}
	case "list":
	default:
		return e.usageError("device", "unknown subcommand %q (want add, list or revoke)", sub)
	}
	db, err := e.openDB(ctx, *data, e.stderr)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	switch sub {
	case "add":
		name := strings.TrimSpace(fs.Arg(0))
		if name == "" || len(name) > 64 {
			return e.usageError("device add", "a device name has 1 to 64 characters")
		}
		_, token, err := db.CreateDevice(ctx, name, cliActor())
		if errors.Is(err, store.ErrConflict) {
			return e.usageError("device add", "a device named %q exists already", name)
		}
		if err != nil {
			return e.fail(err)
		}
		fmt.Fprintln(e.stdout, token)
	case "revoke":
		if err := db.RevokeDevice(ctx, fs.Arg(0), cliActor()); errors.Is(err, store.ErrNotFound) {
			return e.usageError("device revoke", "no active device named %q", fs.Arg(0))
		} else if err != nil {
			return e.fail(err)
		}
		fmt.Fprintf(e.stdout, "device %q revoked\n", fs.Arg(0))
	case "list":
		devs, err := db.FindDevices(ctx)
		if err != nil {
			return e.fail(err)
		}
		for _, d := range devs {
			state := "active"
			if !d.RevokedAt.IsZero() {
				state = "revoked " + d.RevokedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(e.stdout, "%s\t%s\t%s\n", d.Name, d.CreatedAt.UTC().Format(time.RFC3339), state)
		}
	}
	return exitOK
}

func cmdLog(ctx context.Context, e *env, args []string) int {
	fs, data := e.newFlags("log", "[-n N]")
	n := fs.Int("n", 20, "how many of the latest checks")
	if ok, code := parse(fs, args); !ok {
		return code
	}
	if *n < 1 || *n > 100000 {
		return e.usageError("log", "-n must be between 1 and 100000")
	}
	db, err := e.openDB(ctx, *data, e.stderr)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	scans, err := db.FindScans(ctx, store.ScanFilter{Limit: *n})
	if err != nil {
		return e.fail(err)
	}
	enc := json.NewEncoder(e.stdout)
	for _, s := range scans {
		row := map[string]any{
			"scan_id": s.ID, "at": s.At.UTC().Format(time.RFC3339Nano), "source": s.Source,
			"decision": s.Decision, "reason": s.Reason, "repeat": s.Repeat,
		}
		if !s.PassID.IsZero() {
			row["pass_id"], row["subject"], row["issuer_key"] = s.PassID.String(), s.Subject.String(), s.KID.String()
		}
		if err := enc.Encode(row); err != nil {
			return e.fail(err)
		}
	}
	return exitOK
}
