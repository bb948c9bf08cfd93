package account

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters: the OWASP Password Storage Cheat Sheet's first
// recommendation (19 MiB, 2 passes, 1 lane): about 30 ms per hash here.
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonKeyLen    = 32
	argonSaltLen   = 16
)

var b64 = base64.RawStdEncoding

// HashPassword returns password hashed with argon2id and a random salt, in
// the PHC string format: $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemoryKiB, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

type phc struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

func parsePHC(hash string) (phc, bool) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return phc{}, false
	}
	var p phc
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil {
		return phc{}, false
	}
	// Bounds: a stored hash must not make a sign-in allocate gigabytes.
	if p.memory < 8*1024 || p.memory > 256*1024 || p.time < 1 || p.time > 10 || p.threads < 1 || p.threads > 8 {
		return phc{}, false
	}
	var err1, err2 error
	p.salt, err1 = b64.DecodeString(parts[4])
	p.key, err2 = b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(p.salt) < 8 || len(p.key) < 16 {
		return phc{}, false
	}
	return p, true
}

// CheckPassword reports whether password matches hash (from HashPassword),
// in constant time with respect to the hash. An unparsable hash matches
// nothing. It costs one argon2id computation even then, so that its timing
// does not tell an unknown account from a wrong password.
func CheckPassword(hash, password string) bool {
	p, ok := parsePHC(hash)
	if !ok {
		p, _ = parsePHC(dummyHash())
	}
	key := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return ok && subtle.ConstantTimeCompare(key, p.key) == 1
}

// NeedsRehash reports whether hash was made with other parameters than
// HashPassword uses now.
func NeedsRehash(hash string) bool {
	p, ok := parsePHC(hash)
	return !ok || p.memory != argonMemoryKiB || p.time != argonTime || p.threads != argonThreads || len(p.key) != argonKeyLen
}

var dummyHash = sync.OnceValue(func() string {
	h, err := HashPassword("an account that does not exist")
	if err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return h
})

// SpendPasswordCheck costs what CheckPassword costs, for a sign-in whose
// email matches no account.
func SpendPasswordCheck(password string) { CheckPassword(dummyHash(), password) }
