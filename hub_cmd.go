package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"passgate/districtsync"
	"passgate/store"
	"passgate/tlsca"
)

// Bounds on an enrolment code's validity.
const (
	defaultCodeValidity = 24 * time.Hour
	maxCodeValidity     = 30 * 24 * time.Hour
)

// cmdHub is the hub admin's side of enrolment: register an appliance
// (printing its one-time code), answer an offline request, change an
// appliance's role, drain and retire one, list them.
func cmdHub(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		return e.usageError("hub", "want a subcommand: add, enrol, set-role, drain, retire or list")
	}
	switch args[0] {
	case "add":
		return cmdHubAdd(ctx, e, args[1:])
	case "enrol", "enroll":
		return cmdHubEnrol(ctx, e, args[1:])
	case "set-role":
		return cmdHubSetRole(ctx, e, args[1:])
	case "drain":
		return cmdHubDrain(ctx, e, args[1:])
	case "retire":
		return cmdHubRetire(ctx, e, args[1:])
	case "list":
		return cmdHubList(ctx, e, args[1:])
	}
	return e.usageError("hub", "unknown subcommand %q (want add, enrol, set-role, drain, retire or list)", args[0])
}

// hubFlags are the flags every hub subcommand takes.
type hubFlags struct {
	fs            *flag.FlagSet
	data, tlsCert *string
	name          *string
}

func (e *env) hubFlags(sub string) hubFlags {
	fs, data := e.newFlags("hub "+sub, "")
	return hubFlags{
		fs: fs, data: data,
		tlsCert: fs.String("tls-cert", e.envOr("PASSGATE_TLS_CERT", ""), "the PEM certificate the hub serves with --tls-cert, if any (its leaf is pinned instead of the local CA) (env PASSGATE_TLS_CERT)"),
		name:    fs.String("name", "", "the appliance's name (1 to 64 characters)"),
	}
}

// cmdHubAdd registers an appliance and prints its one-time enrolment
// code.
func cmdHubAdd(ctx context.Context, e *env, args []string) int {
	f := e.hubFlags("add")
	roleName := f.fs.String("role", "", "gate (checks only; holds no pseudonym key) or office (also registers people, issues passes, changes the statuses of people it registered); default gate")
	mayIssue := f.fs.Bool("issuer", false, "the same as --role office")
	valid := f.fs.Duration("valid", defaultCodeValidity, "how long the enrolment code may be used")
	if ok, code := e.parseNoArgs(f.fs, args); !ok {
		return code
	}
	if err := store.CheckApplianceName(*f.name); err != nil {
		return e.usageError("hub add", "--name: %v", errors.Unwrap(err))
	}
	if *valid <= 0 || *valid > maxCodeValidity {
		return e.usageError("hub add", "--valid must be between 1s and %v", maxCodeValidity)
	}
	role := store.RoleOf(*mayIssue)
	if *roleName != "" {
		r, err := store.ParseApplianceRole(*roleName)
		if err != nil {
			return e.usageError("hub add", "--role must be gate or office")
		}
		if *mayIssue && r != store.ApplianceOffice {
			return e.usageError("hub add", "--issuer makes an office; it contradicts --role %s", r)
		}
		role = r
	}
	db, err := e.openDB(ctx, *f.data, e.stderr)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	ca, err := hubCertDER(*f.data, *f.tlsCert)
	if err != nil {
		return e.fail(err)
	}
	pin, err := districtsync.PinOfDER(ca)
	if err != nil {
		return e.fail(err)
	}
	code, err := districtsync.NewCode(pin)
	if err != nil {
		return e.fail(err)
	}
	expires := db.Now().Add(*valid)
	a, err := db.AddAppliance(ctx, *f.name, role, code.Hash(), expires, cliActor())
	switch {
	case errors.Is(err, store.ErrConflict):
		return e.usageError("hub add", "an appliance named %q exists already", *f.name)
	case err != nil:
		return e.fail(err)
	}
	what := "gate: checks only"
	if a.Role == store.ApplianceOffice {
		what = "office: registers, issues, changes statuses of people it registered"
	}
	fmt.Fprintln(e.stdout, code.String())
	fmt.Fprintf(e.stderr, "passgate: appliance %q (%s) added; the code above enrols it once, until %s\n",
		a.Name, what, expires.Format(time.RFC3339))
	fmt.Fprintln(e.stderr, "passgate: on the appliance: passgate enrol --data DIR --hub https://THIS-HUB:PORT --code CODE")
	return exitOK
}

// cmdHubEnrol answers an appliance's offline enrolment request with a
// sealed response file.
func cmdHubEnrol(ctx context.Context, e *env, args []string) int {
	f := e.hubFlags("enroll")
	request := f.fs.String("request", "", "the appliance's enrolment request file")
	responseOut := f.fs.String("response-out", "", "write the sealed response file here, for the appliance")
	if ok, code := e.parseNoArgs(f.fs, args); !ok {
		return code
	}
	if *request == "" || *responseOut == "" {
		return e.usageError("hub enrol", "--request and --response-out are required")
	}
	db, err := e.openDB(ctx, *f.data, e.stderr)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	req, err := districtsync.ReadRequestFile(*request)
	if err != nil {
		return e.fail(err)
	}
	ca, err := hubCertDER(*f.data, *f.tlsCert)
	if err != nil {
		return e.fail(err)
	}
	from := "file " + filepath.Base(*request)
	resp, err := districtsync.EnrolAppliance(ctx, db, req, ca, cliActor(), from)
	if err != nil {
		var ce *districtsync.CallError
		if errors.As(err, &ce) {
			return e.fail(fmt.Errorf("enrolment refused: %s", ce.Err.Message))
		}
		return e.fail(err)
	}
	sealed, err := districtsync.SealResponse(req.Secret, resp)
	if err != nil {
		return e.fail(err)
	}
	if err := os.WriteFile(*responseOut, sealed, 0o600); err != nil {
		return e.fail(err)
	}
	fmt.Fprintf(e.stdout, "passgate: appliance %q enrolled from %s (by file: no network address)\n", resp.Appliance, from)
	if a, err := db.ApplianceByName(ctx, resp.Appliance); err == nil && len(a.IssuerFingerprint) > 0 {
		fmt.Fprintf(e.stdout, "passgate: issuer key SHA-256 %x (the appliance printed it when it wrote the request: compare)\n", a.IssuerFingerprint)
	}
	fmt.Fprintf(e.stdout, "passgate: carry %s to it: passgate enrol --data DIR --response %s\n", *responseOut, *responseOut)
	return exitOK
}

// cmdHubSetRole makes an appliance a gate or an office.
func cmdHubSetRole(ctx context.Context, e *env, args []string) int {
	f := e.hubFlags("set-role")
	roleName := f.fs.String("role", "", "gate: the appliance checks only; an office made a gate has its issuer key revoked district-wide")
	if ok, code := e.parseNoArgs(f.fs, args); !ok {
		return code
	}
	role, err := store.ParseApplianceRole(*roleName)
	if *f.name == "" || err != nil {
		return e.usageError("hub set-role", "--name and --role gate|office are required")
	}
	db, err := e.openDB(ctx, *f.data, e.stderr)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	old, err := db.ApplianceByName(ctx, *f.name)
	if errors.Is(err, store.ErrNotFound) {
		return e.usageError("hub set-role", "no appliance named %q", *f.name)
	}
	if err != nil {
		return e.fail(err)
	}
	a, err := db.SetApplianceRole(ctx, *f.name, role, cliActor())
	if err != nil {
		return e.fail(err)
	}
	fmt.Fprintf(e.stdout, "passgate: appliance %q is now a %s", a.Name, a.Role)
	if old.Role != a.Role && old.HasIssuer {
		fmt.Fprintf(e.stdout, "; its issuer key %x is revoked in the whole district", old.IssuerKID[:])
	}
	fmt.Fprintln(e.stdout, "; it learns its role at its next pull")
	return exitOK
}

// cmdHubDrain puts an appliance in draining before it is retired: it
// issues no new passes from its next pull or bundle on, and what it
// still holds keeps coming in. Named by --name or as the one argument.
func cmdHubDrain(ctx context.Context, e *env, args []string) int {
	f := e.hubFlags("drain")
	if ok, code := parse(f.fs, args); !ok {
		return code
	}
	switch {
	case f.fs.NArg() > 1 || f.fs.NArg() == 1 && *f.name != "":
		return e.usageError("hub drain", "name one appliance")
	case f.fs.NArg() == 1:
		*f.name = f.fs.Arg(0)
	case *f.name == "":
		return e.usageError("hub drain", "name the appliance (NAME or --name)")
	}
	db, err := e.openDB(ctx, *f.data, e.stderr)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	a, err := db.DrainAppliance(ctx, *f.name, cliActor())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return e.usageError("hub drain", "no appliance named %q", *f.name)
	case errors.Is(err, store.ErrRetired):
		return e.usageError("hub drain", "appliance %q is retired already", *f.name)
	case errors.Is(err, store.ErrConflict):
		return e.usageError("hub drain", "%v", err)
	case err != nil:
		return e.fail(err)
	}
	fmt.Fprintf(e.stdout, "passgate: appliance %q is draining: it issues no new passes from its next pull or bundle; retire it once what it holds has arrived (passgate hub list shows its backlog)\n", a.Name)
	return exitOK
}

// cmdHubRetire retires an appliance: its token stops working and its
// issuer key is revoked.
func cmdHubRetire(ctx context.Context, e *env, args []string) int {
	f := e.hubFlags("retire")
	reason := f.fs.String("reason", "", "why (recorded in the audit trail and the revocation)")
	if ok, code := e.parseNoArgs(f.fs, args); !ok {
		return code
	}
	if *f.name == "" {
		return e.usageError("hub retire", "--name is required")
	}
	db, err := e.openDB(ctx, *f.data, e.stderr)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	a, err := db.RetireAppliance(ctx, *f.name, *reason, cliActor())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return e.usageError("hub retire", "no appliance named %q", *f.name)
	case errors.Is(err, store.ErrRetired):
		return e.usageError("hub retire", "appliance %q is retired already", *f.name)
	case err != nil:
		return e.fail(err)
	}
	fmt.Fprintf(e.stdout, "passgate: appliance %q retired", a.Name)
	if a.HasIssuer {
		fmt.Fprintf(e.stdout, "; its issuer key %x is revoked in the whole district", a.IssuerKID[:])
	}
	fmt.Fprintln(e.stdout)
	return exitOK
}

// cmdHubList lists the appliances as a table or JSON lines.
func cmdHubList(ctx context.Context, e *env, args []string) int {
	f := e.hubFlags("list")
	asJSON := f.fs.Bool("json", false, "print JSON lines instead of a table")
	if ok, code := e.parseNoArgs(f.fs, args); !ok {
		return code
	}
	db, err := e.openDB(ctx, *f.data, e.stderr)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	list, err := db.Appliances(ctx)
	if err != nil {
		return e.fail(err)
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, a := range list {
			if err := enc.Encode(applianceJSON(a)); err != nil {
				return e.fail(err)
			}
		}
		return exitOK
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tSTATE\tROLE\tLAST CONTACT\tBACKLOG\tCLOCK SKEW\tENROLLED FROM\tISSUER KEY SHA-256")
	for _, a := range list {
		j := applianceJSON(a)
		contact := "-"
		if !a.LastContact.IsZero() {
			contact = a.LastContact.Format(time.DateTime)
		}
		from, fpr := orDash(j.From), orDash(j.IssuerSHA)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", a.Name, j.CertID, j.State, a.Role, contact, a.Backlog, a.ClockSkew.Round(time.Second), from, fpr)
	}
	if err := tw.Flush(); err != nil {
		return e.fail(err)
	}
	return exitOK
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// applianceRow is an appliance as `hub list --json` prints it.
type applianceRow struct {
	Name        string `json:"name"`
	State       string `json:"state"`   // waiting (code not used yet), expired, enrolled, draining, retired
	Role        string `json:"role"`    // gate or office
	CertID      string `json:"cert_id"` // the identifier its issuer certificate carries
	MayIssue    bool   `json:"may_issue"`
	IssuerKID   string `json:"issuer_kid,omitempty"`
	IssuerSHA   string `json:"issuer_sha256,omitempty"` // fingerprint of the issuer key it proved possession of
	From        string `json:"enrolled_from,omitempty"` // remote address, or "file NAME" when enrolled by file
	EnrolledMS  int64  `json:"enrolled_ms,omitempty"`
	LastContact int64  `json:"last_contact_ms,omitempty"`
	Backlog     int64  `json:"backlog"`
	ClockSkewMS int64  `json:"clock_skew_ms"`
}

func applianceJSON(a *store.Appliance) applianceRow {
	r := applianceRow{Name: a.Name, Role: string(a.Role), CertID: store.CertApplianceID(a.ID), MayIssue: a.Role.MayIssue(), Backlog: a.Backlog, ClockSkewMS: a.ClockSkew.Milliseconds()}
	switch {
	case a.Retired():
		r.State = "retired"
	case !a.DrainingAt.IsZero():
		r.State = "draining"
	case a.Enrolled():
		r.State = "enrolled"
	case time.Now().After(a.CodeExpires):
		r.State = "expired"
	default:
		r.State = "waiting"
	}
	if a.HasIssuer {
		r.IssuerKID = fmt.Sprintf("%x", a.IssuerKID[:])
	}
	if a.Enrolled() {
		r.EnrolledMS = a.EnrolledAt.UnixMilli()
		r.From = a.EnrolledFrom
	}
	if len(a.IssuerFingerprint) > 0 {
		r.IssuerSHA = fmt.Sprintf("%x", a.IssuerFingerprint)
	}
	if !a.LastContact.IsZero() {
		r.LastContact = a.LastContact.UnixMilli()
	}
	return r
}

// hubCertDER is the certificate appliances pin: the leaf of the
// certificate the hub serves with --tls-cert, or else its local CA's
// (created here if missing, as `serve --tls-addr` would).
func hubCertDER(data, tlsCert string) ([]byte, error) {
	if tlsCert == "" {
		a, err := tlsca.LoadOrCreate(data, tlsca.DefaultHosts(), time.Now())
		if err != nil {
			return nil, fmt.Errorf("hub TLS identity: %w", err)
		}
		return a.CACertDER(), nil
	}
	b, err := os.ReadFile(tlsCert)
	if err != nil {
		return nil, fmt.Errorf("hub TLS identity: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("hub TLS identity: %s holds no PEM certificate", tlsCert)
	}
	return blk.Bytes, nil
}
