package district

import (
	"errors"
	"time"

	"passgate/pass"
	"passgate/store"
)

// fieldErr is a form field a person got wrong. Its code names the
// problem ("required", "check_digit", ...) as a key of the message
// catalogue (desk.err.*), so that pages say it in their language and the
// CLI in English, with one wording for both.
func fieldErr(field, code string) *store.FieldError {
	return &store.FieldError{Field: field, Code: "desk.err." + code}
}

// codeBadCheckDigit is the code of a mainland ID number whose only fault
// is its check character.
const codeBadCheckDigit = "desk.err.check_digit"

// gbWeights are the GB 11643-1999 weights of the first 17 digits.
var gbWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// gbCheck maps the weighted sum mod 11 to the check character.
const gbCheck = "10X98765432"

// CheckMainlandID validates a mainland resident ID number (already
// normalised: upper case, no spaces): 18 characters, 17 digits then a
// digit or X, a real date of birth in positions 7-14 that is not in the
// future, and the GB 11643 check character.
func CheckMainlandID(id string, now time.Time) error {
	if len(id) != 18 {
		return fieldErr("id_number", "id_length")
	}
	sum := 0
	for i := 0; i < 17; i++ {
		c := id[i]
		if c < '0' || c > '9' {
			return fieldErr("id_number", "id_format")
		}
		sum += int(c-'0') * gbWeights[i]
	}
	if c := id[17]; !(c >= '0' && c <= '9' || c == 'X') {
		return fieldErr("id_number", "id_format")
	}
	birth, err := time.Parse("20060102", id[6:14])
	if err != nil || birth.Year() < 1900 || birth.After(now) {
		return fieldErr("id_number", "id_birth")
	}
	if id[17] != gbCheck[sum%11] {
		return fieldErr("id_number", "check_digit")
	}
	return nil
}

// IDOption relaxes an ID number check.
type IDOption int

// AllowBadCheckDigit accepts a mainland ID number whose GB 11643 check
// character is wrong, everything else about it right. Some legacy
// numbers were issued that way; one is accepted only when the person
// typing it says so explicitly (a flag, a confirm box), never by default,
// and it must then be given the same way wherever it is typed again.
const AllowBadCheckDigit IDOption = 1

// IDOptions returns the options of a form or command: AllowBadCheckDigit
// when the person typing confirmed a legacy number, none otherwise.
func IDOptions(allowBadCheckDigit bool) []IDOption {
	if allowBadCheckDigit {
		return []IDOption{AllowBadCheckDigit}
	}
	return nil
}

// allows reports whether opts include o.
func allows(opts []IDOption, o IDOption) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}

// checkMainland is CheckMainlandID with the options applied.
func checkMainland(id string, now time.Time, opts []IDOption) error {
	err := CheckMainlandID(id, now)
	var fe *store.FieldError
	if errors.As(err, &fe) && fe.Code == codeBadCheckDigit && allows(opts, AllowBadCheckDigit) {
		return nil
	}
	return err
}

// IsBadCheckDigit reports whether err says a mainland ID number's check
// character is wrong (and nothing else about it).
func IsBadCheckDigit(err error) bool {
	var fe *store.FieldError
	return errors.As(err, &fe) && fe.Code == codeBadCheckDigit
}

// maxIDInput bounds the raw ID number a form or command accepts before
// normalising: twice the longest document number, room for spaces and
// full-width digits (three bytes each) but not for a pasted page.
const maxIDInput = 128

// CheckIDNumber normalises and validates an ID number typed without its
// document type (the CLI, tracing, the desk's find box): a number of 18
// characters that starts with 17 digits is a mainland ID and must pass
// CheckMainlandID (date of birth, check digit), so a typo is caught
// rather than taken for a different person; anything else must look like
// a passport or other document number (4 to 32 ASCII letters or digits).
// It returns the normalised number; errors are *store.FieldError on
// "id_number".
func CheckIDNumber(raw string, now time.Time, opts ...IDOption) (string, error) {
	if len(raw) > maxIDInput {
		return "", fieldErr("id_number", "too_long")
	}
	id := pass.NormalizeID(raw)
	if id == "" {
		return "", fieldErr("id_number", "required")
	}
	if looksMainland(id) {
		if err := checkMainland(id, now, opts); err != nil {
			return "", err
		}
		return id, nil
	}
	if len(id) < 4 || len(id) > 32 {
		return "", fieldErr("id_number", "doc_format")
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'Z') {
			return "", fieldErr("id_number", "doc_format")
		}
	}
	return id, nil
}

// CheckID normalises and validates an ID number of a document type:
// mainland numbers by CheckMainlandID, passports and other documents as 4
// to 32 ASCII letters or digits. It returns the normalised number.
func CheckID(idType, raw string, now time.Time, opts ...IDOption) (string, error) {
	id := pass.NormalizeID(raw)
	if id == "" {
		return "", fieldErr("id_number", "required")
	}
	switch idType {
	case store.IDMainland:
		if err := checkMainland(id, now, opts); err != nil {
			return "", err
		}
	case store.IDPassport, store.IDOther:
		if len(id) < 4 || len(id) > 32 {
			return "", fieldErr("id_number", "doc_format")
		}
		for _, r := range id {
			if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'Z') {
				return "", fieldErr("id_number", "doc_format")
			}
		}
	case "":
		return "", fieldErr("id_type", "required")
	default:
		return "", fieldErr("id_type", "unknown")
	}
	return id, nil
}

// CheckPhone normalises and validates an optional phone number: spaces,
// dashes and a leading + are dropped; what remains must be at most 20
// digits.
func CheckPhone(raw string) (string, error) {
	b := make([]byte, 0, len(raw))
	for i, r := range raw {
		switch {
		case r == ' ' || r == '-' || r == '\u3000' || (r == '+' && i == 0):
		case r >= '0' && r <= '9':
			b = append(b, byte(r))
		case r >= '０' && r <= '９':
			b = append(b, byte(r-'０'+'0'))
		default:
			return "", fieldErr("phone", "phone_format")
		}
	}
	if len(b) > 20 {
		return "", fieldErr("phone", "phone_format")
	}
	return string(b), nil
}
