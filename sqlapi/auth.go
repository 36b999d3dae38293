package sqlapi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/raftlite/raftlite/api"
)

// anonymousUser is the username whose permissions every request has,
// authenticated or not (rqlite's AllUsers).
const anonymousUser = "*"

// Auth is a set of credentials in rqlite's format, a JSON array of
// {"username":..., "password":..., "perms":[...]}, and the record of
// failed logins against it. The user "*" lists the permissions granted to
// every request, even one without credentials. One Auth serves every
// handler of a node (Config.Auth), so that they share that record.
//
// A password is a bcrypt hash when bcrypt can read it as one ($2a$, $2b$
// or $2y$ and a cost: rqlite decides the same way, by trying bcrypt), and
// is then verified with bcrypt; any other password is plain text,
// compared in constant time. rqlite also accepts the hash itself as the
// password; raftlite does not, since that would make the hash a plain-text
// password for anyone who reads the file. A password that bcrypt verified
// is remembered (as a keyed SHA-256 MAC, per user) so that the cost of
// bcrypt is paid once, not on every request.
type Auth struct {
	users     map[string]*authUser
	anonymous map[string]bool // the permissions of "*"
	macKey    []byte          // the key of the remembered-password MACs
	limiter   *loginLimiter
	warnings  []string
}

type authUser struct {
	plain *[sha256.Size]byte // SHA-256 of a plain-text password; nil for a hash
	hash  []byte             // a bcrypt hash; nil for plain text
	perms map[string]bool
	// verified is the MAC of the last password bcrypt accepted.
	verified atomic.Pointer[[sha256.Size]byte]
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
	if err := json.NewDecoder(r).Decode(&creds); err != nil {
		return nil, fmt.Errorf("parse credentials: %w", err)
	}
	a := &Auth{
		users:     make(map[string]*authUser, len(creds)),
		anonymous: map[string]bool{},
		macKey:    make([]byte, 32),
		limiter:   newLoginLimiter(failedLoginsPerIP, failedLoginsPerUser, failedLoginWindow),
	}
	if _, err := rand.Read(a.macKey); err != nil {
		return nil, fmt.Errorf("credentials: MAC key: %w", err)
	}
	for i, c := range creds {
		if c.Username == "" {
			return nil, fmt.Errorf("credential %d has no username", i)
		}
		if _, dup := a.users[c.Username]; dup {
			a.warnf("user %q is listed more than once: the last entry counts", c.Username)
		}
		perms := make(map[string]bool, len(c.Perms))
		for _, p := range c.Perms {
			p = strings.ToLower(strings.TrimSpace(p))
			if !knownPerms[p] {
				a.warnf("user %q has unknown permission %q: it grants nothing", c.Username, p)
			}
			perms[p] = true
		}
		if c.Username == anonymousUser {
			a.anonymous = perms
			continue
		}
		u := &authUser{perms: perms}
		if _, err := bcrypt.Cost([]byte(c.Password)); err == nil {
			u.hash = []byte(c.Password)
		} else {
			if strings.HasPrefix(c.Password, "$2") {
				a.warnf("password of user %q looks like a bcrypt hash but is not one (%v): it is compared as plain text", c.Username, err)
			}
			sum := sha256.Sum256([]byte(c.Password))
			u.plain = &sum
		}
		a.users[c.Username] = u
	}
	return a, nil
}

func (a *Auth) warnf(format string, args ...any) {
	a.warnings = append(a.warnings, fmt.Sprintf(format, args...))
}

// Warnings are the doubtful entries of the credentials (unknown
// permission names, repeated users, passwords that look like broken
// bcrypt hashes), for the caller to log.
func (a *Auth) Warnings() []string { return a.warnings }

// verify reports whether password is the user's.
func (a *Auth) verify(u *authUser, password string) bool {
	if u.hash == nil {
		sum := sha256.Sum256([]byte(password))
		return subtle.ConstantTimeCompare(sum[:], u.plain[:]) == 1
	}
	mac := hmac.New(sha256.New, a.macKey)
	mac.Write([]byte(password))
	var sum [sha256.Size]byte
	mac.Sum(sum[:0])
	if last := u.verified.Load(); last != nil && hmac.Equal(last[:], sum[:]) {
		return true
	}
	if bcrypt.CompareHashAndPassword(u.hash, []byte(password)) != nil {
		return false
	}
	u.verified.Store(&sum)
	return true
}

// grants reports whether the permissions perms (the user's, with those of
// "*") satisfy need.
func (a *Auth) grants(perms map[string]bool, need access) bool {
	if need.public {
		return true
	}
	has := func(p string) bool { return perms[p] || perms[PermAll] || a.anonymous[p] || a.anonymous[PermAll] }
	for _, p := range need.perms {
		switch held := has(p); {
		case held && !need.all:
			return true
		case !held && need.all:
			return false
		}
	}
	return need.all
}

// authDecision is the answer to a request's credentials.
type authDecision struct {
	status     int           // 0: allowed; else 401 or 429
	msg        string        // why not
	retryAfter time.Duration // with 429
}

// authorize decides whether r may do what need asks, as rqlite does: a
// request that "*" alone entitles passes without its credentials being
// looked at; any other needs a user of the file, the right password, and
// the permissions (its own or those of "*"). A failed login is logged
// (never the password) and counted against the client IP and the user.
func (a *Auth) authorize(r *http.Request, need access, log *slog.Logger) authDecision {
	if a == nil || a.grants(nil, need) {
		return authDecision{}
	}
	user, password, ok := r.BasicAuth()
	if !ok || user == "" {
		return authDecision{status: http.StatusUnauthorized, msg: "unauthorized: credentials needed (permission " + need.String() + ")"}
	}
	u := a.users[user]
	limitedUser := ""
	if u != nil {
		limitedUser = user
	}
	ip := clientIP(r)
	wait, at := a.limiter.attempt(ip, limitedUser)
	if wait > 0 {
		return authDecision{status: http.StatusTooManyRequests, retryAfter: wait,
			msg: "too many failed logins from this address or for this user: retry later"}
	}
	if u == nil || !a.verify(u, password) {
		reason := "wrong password"
		if u == nil {
			reason = "unknown user"
		}
		log.Warn("login failed", "user", user, "client", ip, "method", r.Method, "path", r.URL.Path, "reason", reason)
		ipLimited, userLimited := a.limiter.atLimit(ip, limitedUser)
		if ipLimited {
			log.Warn("failed logins throttled", "client", ip, "failures", failedLoginsPerIP, "window", failedLoginWindow)
		}
		if userLimited {
			log.Warn("failed logins throttled", "user", user, "failures", failedLoginsPerUser, "window", failedLoginWindow)
		}
		return authDecision{status: http.StatusUnauthorized, msg: "unauthorized: wrong username or password"}
	}
	a.limiter.succeeded(ip, limitedUser, at)
	if !a.grants(u.perms, need) {
		return authDecision{status: http.StatusUnauthorized, msg: fmt.Sprintf("unauthorized: user %q lacks permission %s", user, need)}
	}
	return authDecision{}
}

// clientIP is the address the request came from (the peer, not a header a
// client could set).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// refuse answers a refused request r: 401 with WWW-Authenticate, or 429
// with Retry-After (whole seconds, rounded up), each with the JSON error
// body. A script's request (X-Requested-With: XMLHttpRequest, as the web
// console sends) gets no WWW-Authenticate, so that the browser leaves the
// login to the page rather than showing its own dialog.
func (d authDecision) refuse(w http.ResponseWriter, r *http.Request) {
	if d.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(int((d.retryAfter+time.Second-1)/time.Second)))
		writeError(w, api.ErrLoginThrottled, d.msg)
		return
	}
	if r.Header.Get("X-Requested-With") != "XMLHttpRequest" {
		w.Header().Set("WWW-Authenticate", `Basic realm="raftlite", charset="UTF-8"`)
	}
	writeError(w, api.ErrUnauthorized, d.msg)
}
