package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/client"
)

// Example writes and reads through a three-node cluster. It needs running
// nodes (see the Procfile), so it has no checked output.
func Example() {
	c, err := client.New(client.Config{
		Nodes: []string{"127.0.0.1:4001", "127.0.0.1:4011", "127.0.0.1:4021"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Writes are applied exactly once, even when a timeout or a leader
	// change makes the client retry them on another node.
	resp, err := c.Execute(ctx,
		client.SQL("CREATE TABLE IF NOT EXISTS foo (id INTEGER PRIMARY KEY, name TEXT, data BLOB)"),
		client.SQL("INSERT INTO foo(name, data) VALUES(?, ?)", "fiona", []byte{0xca, 0xfe}),
		client.Named("INSERT INTO foo(name) VALUES(:name)", map[string]any{"name": "sinead"}),
	)
	switch {
	case errors.Is(err, client.ErrUnknownOutcome):
		log.Fatalf("the write may or may not have been applied: %v", err)
	case err != nil:
		log.Fatal(err)
	}
	if err := resp.Err(); err != nil {
		log.Fatal(err) // a statement failed, e.g. a constraint violation
	}
	fmt.Println("last insert id:", resp.Results[2].LastInsertID)

	// A read at level none may be served by any node, and still sees the
	// writes above: the client sends their Raft index as min_index.
	rows, err := c.With(client.WithLevel(api.LevelNone)).Query(ctx,
		client.SQL("SELECT id, name, data FROM foo WHERE name = ?", "fiona"))
	if err != nil {
		log.Fatal(err)
	}
	for _, row := range rows.Results[0].Values {
		id, name, data := row[0].(int64), row[1].(string), row[2].([]byte)
		fmt.Println(id, name, data)
	}
}
