package sqlapi

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// Permissions of rqlite's credentials file.
const (
	PermAll     = "all"
	PermExecute = "execute"
	PermQuery   = "query"
	PermStatus  = "status"
	PermJoin    = "join"
	PermRemove  = "remove"
	PermReady   = "ready"
	PermBackup  = "backup"
	PermLoad    = "load"
	PermLeader  = "leader"
	PermNodes   = "nodes"
	// PermSnapshot lets a user take a snapshot (POST /snapshot).
	PermSnapshot = "snapshot"
)

// anonymousUser is the username whose permissions every request has,
// authenticated or not.
const anonymousUser = "*"

// Auth is a set of credentials in rqlite's format: a JSON array of
// {"username":..., "password":..., "perms":[...]}. The user "*" lists the
// permissions granted to every request, even without credentials.
//
// Passwords are compared as plain text (in constant time). rqlite also
// accepts bcrypt hashes; this build has no bcrypt implementation, so a
// bcrypt-hashed password only matches itself and a warning is logged when
// such a file is loaded.
type Auth struct {
	users map[string]authUser
}

type authUser struct {
	password string
	perms    map[string]bool
}

type credential struct {
	Username string   `json:"username"`
	Password string   `json:"password"`
	Perms    []string `json:"perms"`
}

// LoadAuthFile reads an rqlite-format credentials file.
func LoadAuthFile(path string) (*Auth, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open auth file: %w", err)
	}
	defer f.Close()
	a, err := ParseAuth(f)
	if err != nil {
		return nil, fmt.Errorf("auth file %s: %w", path, err)
	}
	return a, nil
}

// ParseAuth reads rqlite-format credentials.
func ParseAuth(r io.Reader) (*Auth, error) {
	var creds []credential
	dec := json.NewDecoder(r)
	if err := dec.Decode(&creds); err != nil {
		return nil, fmt.Errorf("parse credentials: %w", err)
	}
	a := &Auth{users: make(map[string]authUser, len(creds))}
	for i, c := range creds {
		if c.Username == "" {
			return nil, fmt.Errorf("credential %d has no username", i)
		}
		u := authUser{password: c.Password, perms: make(map[string]bool, len(c.Perms))}
		for _, p := range c.Perms {
			u.perms[strings.ToLower(strings.TrimSpace(p))] = true
		}
		a.users[c.Username] = u
	}
	return a, nil
}

// HasBcrypt reports whether some password looks like a bcrypt hash, which
// this build compares as plain text.
func (a *Auth) HasBcrypt() bool {
	for _, u := range a.users {
		if isBcrypt(u.password) {
			return true
		}
	}
	return false
}

func isBcrypt(s string) bool {
	return len(s) == 60 && (strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$"))
}

// hasPerm reports whether user holds perm (or "all").
func (a *Auth) hasPerm(user, perm string) bool {
	u, ok := a.users[user]
	return ok && (u.perms[perm] || u.perms[PermAll])
}

// check reports whether the user has the password.
func (a *Auth) check(user, password string) bool {
	u, ok := a.users[user]
	if !ok || user == anonymousUser {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(u.password), []byte(password)) == 1
}

// Allowed reports whether a request with the given basic-auth credentials
// may do something needing every one of perms: each perm is granted by
// the anonymous user "*" or by the authenticated user.
func (a *Auth) Allowed(user, password string, hasCreds bool, perms ...string) bool {
	if a == nil {
		return true
	}
	authed := -1 // not checked yet
	for _, p := range perms {
		if a.hasPerm(anonymousUser, p) {
			continue
		}
		if !hasCreds || user == "" {
			return false
		}
		if authed < 0 {
			authed = 0
			if a.check(user, password) {
				authed = 1
			}
		}
		if authed == 0 || !a.hasPerm(user, p) {
			return false
		}
	}
	return true
}

// allowedAny reports whether the request holds at least one of perms.
func (a *Auth) allowedAny(r *http.Request, perms ...string) bool {
	if a == nil {
		return true
	}
	user, pw, ok := r.BasicAuth()
	for _, p := range perms {
		if a.Allowed(user, pw, ok, p) {
			return true
		}
	}
	return false
}

// allowedAll reports whether the request holds every one of perms.
func (a *Auth) allowedAll(r *http.Request, perms ...string) bool {
	if a == nil {
		return true
	}
	user, pw, ok := r.BasicAuth()
	return a.Allowed(user, pw, ok, perms...)
}
