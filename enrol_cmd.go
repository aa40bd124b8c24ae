package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"passgate/districtsync"
	"passgate/store"
)

// Labels binding the sealed keys of a pending enrolment to their place.
const (
	pendingIssuerLabel = "enroll-pending issuer key"
	pendingBundleLabel = "enroll-pending bundle key"
)

// enrolTimeout bounds an online enrolment: one request to the hub.
const enrolTimeout = time.Minute

// cmdEnrol makes a fresh data directory an appliance of a hub's
// district, online (--hub and --code) or offline in two steps
// (--code with --request-out, then --response).
func cmdEnrol(ctx context.Context, e *env, args []string) int {
	const usage = "--data DIR (--hub https://HOST:PORT --code CODE | --code CODE --request-out FILE | --response FILE [--hub URL] | --set-hub URL)"
	fs, data := e.newFlags("enrol", usage)
	hubURL := fs.String("hub", "", "address of the hub, https://HOST:PORT")
	codeText := fs.String("code", "", "enrolment code from the hub admin (PGE1-…)")
	requestOut := fs.String("request-out", "", "offline: write the enrolment request to this file, for the hub admin")
	responseIn := fs.String("response", "", "offline: complete the enrolment with the hub's response file")
	setHub := fs.String("set-hub", "", "an enrolled appliance: sync with its hub at this new address (the hub's certificate stays pinned)")
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	if *setHub != "" {
		if *hubURL != "" || *codeText != "" || *requestOut != "" || *responseIn != "" {
			return e.usageError("enrol", "--set-hub goes alone")
		}
		return setHubAddress(ctx, e, *data, *setHub)
	}
	switch {
	case *responseIn != "":
		if *codeText != "" || *requestOut != "" {
			return e.usageError("enrol", "--response completes an offline enrolment: give it without --code or --request-out")
		}
	case *codeText == "":
		return e.usageError("enrol", "--code is required (%s)", usage)
	case *requestOut != "":
		if *hubURL != "" {
			return e.usageError("enrol", "--request-out is the offline way: give --hub later with --response, or enrol online without --request-out")
		}
	case *hubURL == "":
		return e.usageError("enrol", "give --hub to enrol online, or --request-out FILE to enrol offline")
	}
	if *hubURL != "" {
		if _, err := districtsync.ParseHubURL(*hubURL); err != nil {
			return e.usageError("enrol", "%v", err)
		}
	}
	var code districtsync.Code
	if *codeText != "" {
		var err error
		if code, err = districtsync.ParseCode(*codeText); err != nil {
			return e.usageError("enrol", "%v", err)
		}
	}
	if err := os.MkdirAll(*data, 0o700); err != nil {
		return e.fail(err)
	}
	db, err := e.openStore(ctx, *data)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	if ok, err := db.Initialised(ctx); err != nil {
		return e.fail(err)
	} else if ok {
		return e.fail(fmt.Errorf("%s: %w", *data, districtsync.ErrNotFresh))
	}
	password := e.getenv("PASSGATE_ADMIN_PASSWORD")

	var res *districtsync.EnrolResult
	switch {
	case *requestOut != "":
		return e.writeEnrolRequest(db, *data, code, *requestOut)
	case *responseIn != "":
		if res, err = completeEnrolByFile(ctx, db, *data, *hubURL, *responseIn, password); err != nil {
			return e.fail(err)
		}
	default:
		cctx, cancel := context.WithTimeout(ctx, enrolTimeout)
		defer cancel()
		res, err = districtsync.EnrolOnline(cctx, db, *hubURL, code, password)
		if err != nil {
			return e.fail(enrolError(err))
		}
	}
	e.printEnrolled(res, *hubURL)
	return exitOK
}

// writeEnrolRequest is the first offline step: it writes the request
// file for the hub admin and keeps the pending keys in the data
// directory.
func (e *env) writeEnrolRequest(db *store.DB, data string, code districtsync.Code, requestOut string) int {
	p, err := districtsync.NewPending(code, db.Now())
	if err != nil {
		return e.fail(err)
	}
	// The pending keys wait in the data directory: sealed like the
	// database's keys when there is a key file.
	sp := *p
	if sp.IssuerKey, err = db.SealSecret(pendingIssuerLabel, p.IssuerKey); err != nil {
		return e.fail(err)
	}
	if sp.BundleKey, err = db.SealSecret(pendingBundleLabel, p.BundleKey); err != nil {
		return e.fail(err)
	}
	if err := districtsync.WritePending(data, &sp, requestOut); err != nil {
		return e.fail(err)
	}
	fmt.Fprintf(e.stdout, "passgate: enrolment request written to %s\n", requestOut)
	if fpr, err := districtsync.RequestFingerprint(&p.Request); err == nil {
		fmt.Fprintf(e.stdout, "passgate: issuer key SHA-256 %x (the hub admin sees it too: compare)\n", fpr)
	}
	fmt.Fprintf(e.stdout, "passgate: the hub admin runs: passgate hub enrol --request %s --response-out RESPONSE\n", requestOut)
	fmt.Fprintf(e.stdout, "passgate: then here: passgate enrol --data %s --response RESPONSE [--hub https://HOST:PORT]\n", data)
	fmt.Fprintln(e.stdout, "passgate: the request file holds the code's secret: carry it like the code and delete it afterwards")
	return exitOK
}

// completeEnrolByFile is the second offline step: it opens the hub's
// response with the pending keys and enrols.
func completeEnrolByFile(ctx context.Context, db *store.DB, data, hubURL, responseIn, password string) (*districtsync.EnrolResult, error) {
	p, err := districtsync.ReadPending(data)
	if err != nil {
		return nil, err
	}
	if p.IssuerKey, err = db.OpenSecret(pendingIssuerLabel, p.IssuerKey); err != nil {
		return nil, err
	}
	if p.BundleKey, err = db.OpenSecret(pendingBundleLabel, p.BundleKey); err != nil {
		return nil, err
	}
	c, err := districtsync.ParseCode(p.Code)
	if err != nil {
		return nil, err
	}
	resp, err := districtsync.ReadResponseFile(responseIn, c.Secret[:])
	if err != nil {
		return nil, err
	}
	res, err := districtsync.Complete(ctx, db, hubURL, p, resp, password)
	if err != nil {
		return nil, err
	}
	if err := districtsync.RemovePending(data); err != nil {
		return nil, err
	}
	return res, nil
}

// printEnrolled tells what the appliance became and how to log in.
func (e *env) printEnrolled(res *districtsync.EnrolResult, hubURL string) {
	role := "checks passes only"
	switch {
	case res.Role == store.ApplianceGate:
		role = "is a gate: it checks passes only and holds no pseudonym key"
	case res.MayIssue:
		role = "issues and checks passes"
	}
	fmt.Fprintf(e.stdout, "passgate: enrolled as %q in district %q (%s); this appliance %s\n", res.Appliance, res.DistrictName, res.District, role)
	if res.AdminPassword != "" {
		fmt.Fprintf(e.stdout, "passgate: first admin login: user %q, password %q (shown only once; change it after logging in)\n", res.AdminUser, res.AdminPassword)
	} else {
		fmt.Fprintf(e.stdout, "passgate: first admin login: user %q with the password from PASSGATE_ADMIN_PASSWORD\n", res.AdminUser)
	}
	if hubURL == "" {
		fmt.Fprintln(e.stdout, "passgate: no hub address given: this appliance syncs by bundles only")
	}
}

// enrolError explains the hub's refusals in the words of whoever types
// the command.
func enrolError(err error) error {
	var ce *districtsync.CallError
	switch {
	case errors.Is(err, districtsync.ErrPinMismatch):
		return fmt.Errorf("enrolment refused: %w; check the address and the code", err)
	case errors.As(err, &ce):
		return fmt.Errorf("enrolment refused by the hub: %s", ce.Err.Message)
	}
	return fmt.Errorf("enrolment: %w", err)
}

// setHubAddress points an enrolled appliance at its hub's new address.
func setHubAddress(ctx context.Context, e *env, data, url string) int {
	if _, err := districtsync.ParseHubURL(url); err != nil {
		return e.usageError("enrol", "%v", err)
	}
	db, err := e.openStore(ctx, data)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	if err := db.SetSyncHubURL(ctx, url, cliActor()); errors.Is(err, store.ErrNotEnrolled) {
		return e.fail(fmt.Errorf("%s is not enrolled with a hub", data))
	} else if err != nil {
		return e.fail(err)
	}
	fmt.Fprintf(e.stdout, "passgate: this appliance syncs with its hub at %s (restart serve to use it)\n", url)
	return exitOK
}
