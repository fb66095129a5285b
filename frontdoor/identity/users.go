package identity

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// Users are the HTTP Basic users of an htpasswd file whose passwords are
// bcrypt hashes (`htpasswd -B`). Brooklyn clients send Basic on every
// request, so a password once checked is remembered (as a SHA-256 digest)
// and bcrypt runs again only for a different password.
type Users struct {
	path string

	mu     sync.RWMutex
	hashes map[string][]byte
	good   map[string][32]byte
}

// LoadUsers reads an htpasswd file; any line that is not USER:BCRYPT is an
// error naming it.
func LoadUsers(path string) (*Users, error) {
	u := &Users{path: path}
	if err := u.Reload(); err != nil {
		return nil, err
	}
	return u, nil
}

// Reload reads the file again (on SIGHUP); on an error the users stay.
func (u *Users) Reload() error {
	raw, err := os.ReadFile(u.path)
	if err != nil {
		return fmt.Errorf("--users: %w", err)
	}
	hashes, err := parseHtpasswd(raw)
	if err != nil {
		return fmt.Errorf("--users %s: %w", u.path, err)
	}
	u.mu.Lock()
	u.hashes, u.good = hashes, map[string][32]byte{}
	u.mu.Unlock()
	return nil
}

func parseHtpasswd(raw []byte) (map[string][]byte, error) {
	hashes := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hash, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("line %d: want USER:HASH", n)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("line %d (%s): not a bcrypt hash (make one with htpasswd -B): %v", n, name, err)
		}
		hashes[name] = []byte(hash)
	}
	return hashes, sc.Err()
}

// Check reports whether pass is name's password.
func (u *Users) Check(name, pass string) bool {
	sum := sha256.Sum256([]byte(pass))
	u.mu.RLock()
	hash, known := u.hashes[name]
	good, seen := u.good[name]
	u.mu.RUnlock()
	if !known {
		// Spend the same time as for a known user, so names cannot be
		// told apart by timing.
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(pass))
		return false
	}
	if seen && subtle.ConstantTimeCompare(good[:], sum[:]) == 1 {
		return true
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil {
		return false
	}
	u.mu.Lock()
	if string(u.hashes[name]) == string(hash) {
		u.good[name] = sum
	}
	u.mu.Unlock()
	return true
}

// dummyHash is made on first use: bcrypt is slow on purpose.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("clocker"), bcrypt.DefaultCost)
	return h
})
