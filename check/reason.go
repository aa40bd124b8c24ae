package check

import (
	"errors"

	"passgate/pass"
)

// Reason is the stable code explaining a decision. Codes are API: scanners,
// exports and dashboards match on them, so they never change meaning.
type Reason string

// Reason codes. README.md lists them with their meaning.
const (
	ReasonOK            Reason = "ok"
	ReasonNotAPass      Reason = "not_a_pass"
	ReasonMalformed     Reason = "malformed"
	ReasonTooLong       Reason = "too_long"
	ReasonBadSignature  Reason = "bad_signature"
	ReasonUnknownIssuer Reason = "unknown_issuer"
	ReasonIssuerExpired Reason = "issuer_expired"
	ReasonIssuerRevoked Reason = "issuer_revoked"
	ReasonExpired       Reason = "expired"
	ReasonNotYetValid   Reason = "not_yet_valid"
	ReasonRevoked       Reason = "revoked"
	ReasonPaperRefused  Reason = "paper_not_accepted"
	ReasonStatusGreen   Reason = "status_green"
	ReasonStatusYellow  Reason = "status_yellow"
	ReasonStatusRed     Reason = "status_red"
	ReasonTestMissing   Reason = "test_missing"
	ReasonTestTooOld    Reason = "test_too_old"
	ReasonDosesMissing  Reason = "doses_missing"
)

// Reasons lists every reason code, in documentation order.
var Reasons = []Reason{
	ReasonOK, ReasonNotAPass, ReasonMalformed, ReasonTooLong, ReasonBadSignature,
	ReasonUnknownIssuer, ReasonIssuerExpired, ReasonIssuerRevoked, ReasonExpired,
	ReasonNotYetValid, ReasonRevoked, ReasonPaperRefused, ReasonStatusGreen,
	ReasonStatusYellow, ReasonStatusRed, ReasonTestMissing, ReasonTestTooOld,
	ReasonDosesMissing, ReasonScannerLayout,
}

// reasonOf maps a pass decoding or verification error to its reason.
func reasonOf(err error) Reason {
	switch {
	case errors.Is(err, pass.ErrNotAPass):
		return ReasonNotAPass
	case errors.Is(err, pass.ErrBadSignature):
		return ReasonBadSignature
	case errors.Is(err, pass.ErrUnknownIssuer):
		return ReasonUnknownIssuer
	case errors.Is(err, pass.ErrIssuerExpired):
		return ReasonIssuerExpired
	default:
		// ErrMalformed, ErrUnsupportedAlg and anything unexpected: the
		// bytes are not a pass we can read.
		return ReasonMalformed
	}
}
