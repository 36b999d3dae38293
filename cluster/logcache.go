package cluster

import (
	"sync"

	"github.com/hashicorp/raft"
)

// logCache keeps the most recently stored log entries in memory in front
// of the BoltDB store, since replication reads each entry right after it
// is stored. raft's own LogCache holds a fixed number of entries whatever
// their size (512 entries of 1 MB each are half a gigabyte of heap); this
// one holds at most maxEntries entries and maxBytes bytes of them (see
// entryBytes), the newest, with consecutive indexes.
type logCache struct {
	raft.LogStore
	maxEntries int
	maxBytes   int64

	mu      sync.RWMutex
	entries []*raft.Log // consecutive indexes, oldest first
	bytes   int64
}

func newLogCache(store raft.LogStore, maxEntries int, maxBytes int64) *logCache {
	return &logCache{LogStore: store, maxEntries: maxEntries, maxBytes: maxBytes}
}

func (c *logCache) GetLog(index uint64, l *raft.Log) error {
	c.mu.RLock()
	if n := len(c.entries); n > 0 && index >= c.entries[0].Index && index <= c.entries[n-1].Index {
		*l = *c.entries[index-c.entries[0].Index]
		c.mu.RUnlock()
		return nil
	}
	c.mu.RUnlock()
	return c.LogStore.GetLog(index, l)
}

func (c *logCache) StoreLog(l *raft.Log) error {
	return c.StoreLogs([]*raft.Log{l})
}

func (c *logCache) StoreLogs(logs []*raft.Log) error {
	if err := c.LogStore.StoreLogs(logs); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range logs {
		if n := len(c.entries); n > 0 && l.Index != c.entries[n-1].Index+1 {
			c.reset() // raft rewrote the log's tail
		}
		c.entries = append(c.entries, l)
		c.bytes += entryBytes(l)
	}
	drop := 0
	for len(c.entries)-drop > c.maxEntries || (c.bytes > c.maxBytes && drop < len(c.entries)) {
		c.bytes -= entryBytes(c.entries[drop])
		c.entries[drop] = nil
		drop++
	}
	c.entries = c.entries[drop:]
	return nil
}

func (c *logCache) DeleteRange(min, max uint64) error {
	c.mu.Lock()
	c.reset()
	c.mu.Unlock()
	return c.LogStore.DeleteRange(min, max)
}

// reset empties the cache; c.mu must be held.
func (c *logCache) reset() {
	c.entries, c.bytes = nil, 0
}
