package store

import (
	"fmt"
	"strings"
)

// FieldError is a field of a value a person set that breaks a rule. Code
// is a message key of the web catalogue (web/i18n) and Args its
// arguments, so that a page says it in the reader's language and the CLI
// in English, with one wording for both.
type FieldError struct {
	Field string
	Code  string
	Args  []any
}

// Error names the field in words ("pass retention") for logs; people
// read the message its code names.
func (e *FieldError) Error() string {
	field := strings.ReplaceAll(e.Field, "_", " ")
	if len(e.Args) == 0 {
		return fmt.Sprintf("%s: %s", field, e.Code)
	}
	return fmt.Sprintf("%s: %s %v", field, e.Code, e.Args)
}

// FieldErrors is every field error of one value. It matches ErrInvalid.
type FieldErrors []*FieldError

func (fe FieldErrors) Error() string {
	s := make([]string, len(fe))
	for i, e := range fe {
		s[i] = e.Error()
	}
	return fmt.Sprintf("%v: %s", ErrInvalid, strings.Join(s, "; "))
}

// Unwrap lets callers test for ErrInvalid whichever field is wrong.
func (fe FieldErrors) Unwrap() error { return ErrInvalid }
