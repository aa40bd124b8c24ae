package store

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Password hashing parameters: argon2id at the OWASP minimum (19 MiB,
// two passes, one lane), which costs tens of milliseconds on a small
// appliance: slow for an attacker with a stolen database, tolerable at a
// login form.
const (
	argonMemory  = 19456 // KiB
	argonTime    = 2
	argonThreads = 1
	argonSaltLen = 16
	argonKeyLen  = 32
)

// Bounds on the parameters VerifyPassword accepts from a stored hash. A
// hash string is data: a tampered or foreign one must not make a login
// allocate gigabytes or spin for minutes.
const (
	maxArgonMemory  = 256 * 1024 // KiB
	maxArgonTime    = 16
	maxArgonThreads = 16
	minArgonSaltLen = 8
	maxArgonSaltLen = 64
	minArgonKeyLen  = 16
	maxArgonKeyLen  = 64
	// maxPasswordLen bounds what is hashed at all.
	maxPasswordLen = 1024
)

// hashSlots bounds concurrent argon2 runs: each holds its memory cost
// (19 MiB by default) for its whole run, so a burst of logins waits here
// instead of exhausting a small appliance's memory.
var hashSlots = make(chan struct{}, 2)

func argonKey(pw, salt []byte, t, m uint32, p uint8, keyLen uint32) []byte {
	hashSlots <- struct{}{}
	defer func() { <-hashSlots }()
	return argon2.IDKey(pw, salt, t, m, p, keyLen)
}

// HashPassword hashes pw with argon2id and a random salt, in the PHC string
// format: $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash> (unpadded standard
// base64). ErrInvalid for an empty or overlong password.
func HashPassword(pw string) (string, error) {
	if pw == "" || len(pw) > maxPasswordLen {
		return "", fmt.Errorf("hash password: %w: password of %d bytes", ErrInvalid, len(pw))
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argonKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// VerifyPassword reports whether pw matches hash, a PHC string from
// HashPassword. The parameters are read from the string (so they can be
// raised later without invalidating old hashes) within sane bounds; a
// malformed or out-of-bounds hash is an ErrInvalid error. The comparison
// takes constant time.
func VerifyPassword(hash, pw string) (bool, error) {
	ph, err := parsePHC(hash)
	if err != nil {
		return false, fmt.Errorf("verify password: %w", err)
	}
	if len(pw) > maxPasswordLen {
		return false, nil // HashPassword refuses such passwords: no match possible
	}
	key := argonKey([]byte(pw), ph.salt, ph.t, ph.m, ph.p, uint32(len(ph.key)))
	return subtle.ConstantTimeCompare(key, ph.key) == 1, nil
}

// phc is a parsed argon2id hash string.
type phc struct {
	m, t      uint32
	p         uint8
	salt, key []byte
}

func parsePHC(s string) (*phc, error) {
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" {
		return nil, fmt.Errorf("%w: not an argon2id hash string", ErrInvalid)
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return nil, fmt.Errorf("%w: argon2 version %q", ErrInvalid, f[2])
	}
	var ph phc
	params := strings.Split(f[3], ",")
	if len(params) != 3 {
		return nil, fmt.Errorf("%w: argon2 parameters %q", ErrInvalid, f[3])
	}
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(params[i], name+"=")
		if !ok {
			return nil, fmt.Errorf("%w: argon2 parameters %q", ErrInvalid, f[3])
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: argon2 parameter %s=%q", ErrInvalid, name, v)
		}
		switch name {
		case "m":
			ph.m = uint32(n)
		case "t":
			ph.t = uint32(n)
		case "p":
			if n > maxArgonThreads {
				return nil, fmt.Errorf("%w: argon2 parallelism %d", ErrInvalid, n)
			}
			ph.p = uint8(n)
		}
	}
	switch {
	case ph.p < 1 || ph.p > maxArgonThreads:
		return nil, fmt.Errorf("%w: argon2 parallelism %d", ErrInvalid, ph.p)
	case ph.t < 1 || ph.t > maxArgonTime:
		return nil, fmt.Errorf("%w: argon2 time %d", ErrInvalid, ph.t)
	// argon2 needs at least 8 KiB per lane.
	case ph.m < 8*uint32(ph.p) || ph.m > maxArgonMemory:
		return nil, fmt.Errorf("%w: argon2 memory %d KiB", ErrInvalid, ph.m)
	}
	var err error
	if ph.salt, err = base64.RawStdEncoding.Strict().DecodeString(f[4]); err != nil ||
		len(ph.salt) < minArgonSaltLen || len(ph.salt) > maxArgonSaltLen {
		return nil, fmt.Errorf("%w: argon2 salt", ErrInvalid)
	}
	if ph.key, err = base64.RawStdEncoding.Strict().DecodeString(f[5]); err != nil ||
		len(ph.key) < minArgonKeyLen || len(ph.key) > maxArgonKeyLen {
		return nil, fmt.Errorf("%w: argon2 key", ErrInvalid)
	}
	return &ph, nil
}
