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

// blocked returns how long requests from ip for user (user "" when it is
// not a user of the file) must wait, zero when they may try now.
func (l *loginLimiter) blocked(ip, user string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	wait := l.waitLocked(l.ips, ip, l.perIP, now)
	if user != "" {
		wait = max(wait, l.waitLocked(l.users, user, l.perUser, now))
	}
	return wait
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

// fail records a failed login from ip for user ("" when unknown). It
// reports which of the two reached its limit with this failure, so that
// the caller logs that once rather than every refused attempt.
func (l *loginLimiter) fail(ip, user string) (ipLimited, userLimited bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if _, tracked := l.ips[ip]; tracked || len(l.ips) < maxTrackedIPs || l.sweepLocked(now) {
		ipLimited = l.addLocked(l.ips, ip, l.perIP, now)
	}
	if user != "" {
		userLimited = l.addLocked(l.users, user, l.perUser, now)
	}
	return ipLimited, userLimited
}

// addLocked appends a failure at now to key, keeping at most limit, and
// reports whether key has just reached limit.
func (l *loginLimiter) addLocked(m map[string][]time.Time, key string, limit int, now time.Time) bool {
	fails := append(recent(m[key], now.Add(-l.window)), now)
	if len(fails) > limit {
		fails = fails[len(fails)-limit:]
	}
	m[key] = fails
	return len(fails) == limit
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
