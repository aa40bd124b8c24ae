package pass

import "fmt"

// wrapf wraps one of the package's sentinel errors with detail, so that
// callers can classify with errors.Is and people can read what went wrong.
func wrapf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}

func malformed(format string, args ...any) error { return wrapf(ErrMalformed, format, args...) }

func unsupported(format string, args ...any) error { return wrapf(ErrUnsupportedAlg, format, args...) }
