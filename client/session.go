package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
)

// session is a client session of exactly-once writes: a random client_id and
// the last sequence number assigned. One write holds the session at a time
// (from the assignment of its seq until its last retry ends), so that the
// server never sees a seq of the session while an earlier one may still be
// retried.
type session struct {
	slot chan struct{} // capacity 1: full while a write holds the session

	mu  sync.Mutex // guards id and seq
	id  string
	seq uint64 // last assigned
}

func newSession() (*session, error) {
	id, err := newClientID()
	if err != nil {
		return nil, err
	}
	return &session{slot: make(chan struct{}, 1), id: id}, nil
}

// newClientID returns 128 random bits in hex.
func newClientID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("raftlite client: generating a session id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// acquire waits until no other write holds the session, or ctx ends.
func (s *session) acquire(ctx context.Context) error {
	select {
	case s.slot <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release lets the next write take the session.
func (s *session) release() { <-s.slot }

// next assigns the next sequence number. The caller holds the session.
func (s *session) next() (id string, seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return s.id, s.seq
}

// renew replaces the session by a new one whose next seq is 1. The caller
// holds the session.
func (s *session) renew() error {
	id, err := newClientID()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.id, s.seq = id, 0
	return nil
}

// current returns the session's id and its last assigned seq.
func (s *session) current() (string, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id, s.seq
}
