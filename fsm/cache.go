package fsm

import (
	"container/list"
	"sync"
)

// maxCachedSQL is the longest SQL text a cache keeps. Longer statements are
// typically generated bulk inserts that never repeat; caching them would
// only evict useful entries and pin memory.
const maxCachedSQL = 4096

// lru is a bounded, concurrency-safe least-recently-used map from SQL text to
// what was learned by preparing it, or to the prepared statement itself. It
// holds at most max entries of at most maxCachedSQL bytes each, so its memory
// is bounded whatever clients send.
type lru[V any] struct {
	mu    sync.Mutex
	max   int
	ll    list.List // of *lruEntry[V], most recently used first
	m     map[string]*list.Element
	evict func(V) // if set, called with every value that leaves the cache
}

type lruEntry[V any] struct {
	key string
	val V
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, m: make(map[string]*list.Element)}
}

// newEvictingLRU is newLRU whose values are released by evict when they are
// evicted, replaced or cleared.
func newEvictingLRU[V any](max int, evict func(V)) *lru[V] {
	c := newLRU[V](max)
	c.evict = evict
	return c
}

func (c *lru[V]) release(v V) {
	if c.evict != nil {
		c.evict(v)
	}
}

func (c *lru[V]) get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*lruEntry[V]).val, true
	}
	var zero V
	return zero, false
}

func (c *lru[V]) put(key string, val V) {
	if len(key) > maxCachedSQL {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		entry := e.Value.(*lruEntry[V])
		c.release(entry.val)
		entry.val = val
		c.ll.MoveToFront(e)
		return
	}
	c.m[key] = c.ll.PushFront(&lruEntry[V]{key: key, val: val})
	if c.ll.Len() > c.max {
		oldest := c.ll.Back()
		c.ll.Remove(oldest)
		entry := oldest.Value.(*lruEntry[V])
		delete(c.m, entry.key)
		c.release(entry.val)
	}
}

func (c *lru[V]) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.ll.Front(); e != nil; e = e.Next() {
		c.release(e.Value.(*lruEntry[V]).val)
	}
	c.ll.Init()
	clear(c.m)
}
