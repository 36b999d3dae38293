package fsm

import (
	"bytes"
	"io"
	"os"
	"reflect"
	"testing"

	"github.com/raftlite/raftlite/snapshot"
)

// TestPrepareRestore: a snapshot decoded as it arrived is what the next
// Restore of that snapshot installs, without decoding it again; a Restore
// of another snapshot decodes its own stream; a damaged stream fails to
// prepare, leaves no file and changes nothing.
func TestPrepareRestore(t *testing.T) {
	src := newFSM(t)
	var s seq
	s.exec(t, src, stmt("CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)"), stmt("INSERT INTO foo(name) VALUES('first')"))
	first := snapshotOf(t, src).Bytes()
	wantFirst := dump(t, src)
	s.exec(t, src, stmt("INSERT INTO foo(name) VALUES('second')"))
	second := snapshotOf(t, src).Bytes()
	wantSecond := dump(t, src)

	dst := newFSM(t)
	if err := dst.PrepareRestore(bytes.NewReader(first)); err != nil {
		t.Fatal(err)
	}
	// The stream handed to Restore is the same snapshot: only its header
	// is read, so a body that would not decode proves it was not decoded.
	headerSize := len(snapshot.Magic) + 1 + 8 + 8
	headerOnly := append(bytes.Clone(first[:headerSize]), "no body"...)
	if err := dst.Restore(io.NopCloser(bytes.NewReader(headerOnly))); err != nil {
		t.Fatalf("restore of the prepared snapshot: %v", err)
	}
	if got := dump(t, dst); !reflect.DeepEqual(got, wantFirst) {
		t.Fatalf("after the prepared restore: %v", got)
	}
	// Used once: the same header again must be decoded from its stream.
	if err := dst.Restore(io.NopCloser(bytes.NewReader(headerOnly))); err == nil {
		t.Fatal("a prepared snapshot was used twice")
	}

	// Prepared one snapshot, restored another: the other's stream counts.
	if err := dst.PrepareRestore(bytes.NewReader(first)); err != nil {
		t.Fatal(err)
	}
	if err := dst.Restore(io.NopCloser(bytes.NewReader(second))); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, dst); !reflect.DeepEqual(got, wantSecond) {
		t.Fatalf("after restoring another snapshot: %v", got)
	}

	damaged := bytes.Clone(second)
	damaged[len(damaged)/2] ^= 0xff
	if err := dst.PrepareRestore(bytes.NewReader(damaged)); err == nil {
		t.Fatal("a damaged snapshot prepared")
	}
	if _, err := os.Stat(dst.restorePath()); !os.IsNotExist(err) {
		t.Fatalf("restore file left behind: %v", err)
	}
	if got := dump(t, dst); !reflect.DeepEqual(got, wantSecond) {
		t.Fatalf("a failed prepare changed the database: %v", got)
	}
}
