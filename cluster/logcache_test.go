package cluster

import (
	"bytes"
	"testing"

	"github.com/hashicorp/raft"
)

// TestLogCacheBounds stores entries of 1 KiB into a cache of at most 4
// entries and 3 KiB: it must hold the newest 3, serve every entry (from
// memory or the store) with its data, and forget what a rewrite or a
// deletion makes stale.
func TestLogCacheBounds(t *testing.T) {
	store := raft.NewInmemStore()
	c := newLogCache(store, 4, 3<<10)
	entry := func(i uint64, b byte) *raft.Log {
		return &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: bytes.Repeat([]byte{b}, 1<<10)}
	}
	for i := uint64(1); i <= 10; i++ {
		if err := c.StoreLog(entry(i, byte(i))); err != nil {
			t.Fatal(err)
		}
	}
	cached := func() (first, last uint64, n int, size int64) {
		c.mu.RLock()
		defer c.mu.RUnlock()
		if len(c.entries) > 0 {
			first, last = c.entries[0].Index, c.entries[len(c.entries)-1].Index
		}
		return first, last, len(c.entries), c.bytes
	}
	if first, last, n, size := cached(); first != 8 || last != 10 || n != 3 || size != 3<<10 {
		t.Fatalf("cache holds %d..%d (%d entries, %d bytes), want 8..10 (3, 3072)", first, last, n, size)
	}
	for i := uint64(1); i <= 10; i++ {
		var l raft.Log
		if err := c.GetLog(i, &l); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if l.Index != i || !bytes.Equal(l.Data, entry(i, byte(i)).Data) {
			t.Fatalf("entry %d: got index %d, data %x...", i, l.Index, l.Data[:4])
		}
	}

	// A follower's log rewritten from index 9: the cache must not serve
	// the old entry 10.
	if err := c.DeleteRange(9, 10); err != nil {
		t.Fatal(err)
	}
	if err := c.StoreLogs([]*raft.Log{entry(9, 0xa9), entry(10, 0xaa)}); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := c.GetLog(10, &l); err != nil || l.Data[0] != 0xaa {
		t.Fatalf("entry 10 after the rewrite: %v, data %x", err, l.Data[:1])
	}
	// Entries not following the cached ones replace them.
	if err := c.StoreLog(entry(20, 0x20)); err != nil {
		t.Fatal(err)
	}
	if first, last, n, _ := cached(); first != 20 || last != 20 || n != 1 {
		t.Fatalf("cache holds %d..%d (%d entries) after a gap, want only 20", first, last, n)
	}
	// An entry larger than the byte bound is not kept.
	big := &raft.Log{Index: 21, Term: 1, Type: raft.LogCommand, Data: make([]byte, 4<<10)}
	if err := c.StoreLog(big); err != nil {
		t.Fatal(err)
	}
	if _, _, n, size := cached(); n != 0 || size != 0 {
		t.Fatalf("cache holds %d entries, %d bytes after an oversized entry, want none", n, size)
	}
}
