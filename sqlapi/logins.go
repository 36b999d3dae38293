package sqlapi

import (
	"sync"
	"time"
)

// The limits on failed logins (a request whose basic-auth user is unknown
// or whose password is wrong). Once a client IP has failedLoginsPerIP
// failures within failedLoginWindow, or a user of the credentials file has
// failedLoginsPerUser, further requests from that IP, or for that user,
// that would need their credentials checked are refused with 429 and
// Retry-After, without checking the password, until the oldest failure
// leaves the window. The per-user limit stops a guesser spread over many
// addresses; it is higher than the per-IP one because anyone can spend it
// and so keep a user out for as long as they keep failing (a minute
// after they stop).
const (
	failedLoginsPerIP   = 10
	failedLoginsPerUser = 30
	failedLoginWindow   = time.Minute
	// maxTrackedIPs bounds the memory the per-IP record may take. When it
	// is full of addresses with recent failures, a new address is not
	// tracked (the per-user limit, bounded by the credentials file, still
	// holds).
	maxTrackedIPs = 10000
)

// loginLimiter counts failed logins per client IP and per user in a
// sliding window.
type loginLimiter struct {
	perIP, perUser int
	window         time.Duration
	now            func() time.Time

	mu    sync.Mutex
	ips   map[string][]time.Time
	users map[string][]time.Time
}

func newLoginLimiter(perIP, perUser int, window time.Duration) *loginLimiter {
	return &loginLimiter{
		perIP: perIP, perUser: perUser, window: window, now: time.Now,
		ips: map[string][]time.Time{}, users: map[string][]time.Time{},
	}
}

// attempt asks to check a login from ip for user (user "" when it is not
// a user of the file). While ip or user is at its limit it returns how
// long to wait. Otherwise it counts the attempt as a failure at the time
// it returns, until succeeded withdraws it: so that guesses sent all at
// once are held to the limit too, not only those that follow answers.
func (l *loginLimiter) attempt(ip, user string) (wait time.Duration, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	wait = l.waitLocked(l.ips, ip, l.perIP, now)
	if user != "" {
		wait = max(wait, l.waitLocked(l.users, user, l.perUser, now))
	}
	if wait > 0 {
		return wait, now
	}
	if _, tracked := l.ips[ip]; tracked || len(l.ips) < maxTrackedIPs || l.sweepLocked(now) {
		l.addLocked(l.ips, ip, l.perIP, now)
	}
	if user != "" {
		l.addLocked(l.users, user, l.perUser, now)
	}
	return 0, now
}

// succeeded withdraws the attempt made at at: the password was right.
func (l *loginLimiter) succeeded(ip, user string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	withdraw(l.ips, ip, at)
	if user != "" {
		withdraw(l.users, user, at)
	}
}

// withdraw removes one failure at at from key.
func withdraw(m map[string][]time.Time, key string, at time.Time) {
	fails := m[key]
	for i := len(fails) - 1; i >= 0; i-- {
		if fails[i].Equal(at) {
			m[key] = append(fails[:i:i], fails[i+1:]...)
			return
		}
	}
}

// atLimit reports which of ip and user have as many failures as their
// limit allows, for the caller to log once that further attempts wait.
func (l *loginLimiter) atLimit(ip, user string) (ipLimited, userLimited bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ips[ip]) == l.perIP, user != "" && len(l.users[user]) == l.perUser
}

// waitLocked drops key's failures older than the window and returns how
// long until fewer than limit remain in it.
func (l *loginLimiter) waitLocked(m map[string][]time.Time, key string, limit int, now time.Time) time.Duration {
	fails := recent(m[key], now.Add(-l.window))
	if len(fails) == 0 {
		delete(m, key)
		return 0
	}
	m[key] = fails
	if len(fails) < limit {
		return 0
	}
	return fails[len(fails)-limit].Add(l.window).Sub(now)
}

// addLocked appends a failure at now to key, keeping at most limit.
func (l *loginLimiter) addLocked(m map[string][]time.Time, key string, limit int, now time.Time) {
	fails := append(recent(m[key], now.Add(-l.window)), now)
	if len(fails) > limit {
		fails = fails[len(fails)-limit:]
	}
	m[key] = fails
}

// sweepLocked forgets the addresses without failures in the window and
// reports whether there is room for another.
func (l *loginLimiter) sweepLocked(now time.Time) bool {
	since := now.Add(-l.window)
	for ip, fails := range l.ips {
		if len(recent(fails, since)) == 0 {
			delete(l.ips, ip)
		}
	}
	return len(l.ips) < maxTrackedIPs
}

// recent returns the failures after since (fails is in time order).
func recent(fails []time.Time, since time.Time) []time.Time {
	for i, t := range fails {
		if t.After(since) {
			return fails[i:]
		}
	}
	return nil
}
