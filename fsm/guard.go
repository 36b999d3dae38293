package fsm

import (
	"strings"

	"modernc.org/sqlite"
)

// guardMode says which statements a connection may prepare.
type guardMode uint8

const (
	// modeInternal is for raftlite's own statements: everything is allowed.
	modeInternal guardMode = iota
	// modeUser is for client statements applied through the log. They may
	// change the replicated database, but nothing that would make replicas
	// differ or break the apply machinery: transaction control (the FSM owns
	// the transaction), ATTACH, temporary objects and connection settings
	// (they live on this node's connection, not in the replicated file, and
	// vanish on restart), and writes to raftlite's internal tables.
	modeUser
	// modeReadOnly is for client statements that must not write: reads
	// through the log with Request.ReadOnly, and everything on the read pool.
	modeReadOnly
)

// errReadOnly is rqlite's message for a write attempted as a read.
const errReadOnly = "attempt to change database via query operation"

// internalPrefix names raftlite's own tables. Clients can neither see, read
// nor change them (hide.go).
const internalPrefix = "_raftlite_"

// guard is the SQLite authorizer of one connection. SQLite consults it for
// every action while it compiles a statement, which makes it a precise and
// cheap classifier: it sees the tail statements of a multi-statement string,
// trigger bodies and the real targets of every write, without parsing SQL.
// A guard is used by one goroutine at a time, like its connection.
type guard struct {
	mode guardMode
	// hideSchema holds the statement being prepared to the views of the
	// schema tables that leave raftlite's own out (hide.go). Set by the
	// caller per statement; reset leaves it.
	hideSchema bool

	// Filled while statements are prepared; reset clears them.
	actions int    // actions presented
	dml     bool   // a top-level INSERT, UPDATE or DELETE on a table
	ddl     bool   // schema change
	denied  string // why the first refused action was refused
}

func (g *guard) reset() {
	g.actions, g.dml, g.ddl, g.denied = 0, false, false, ""
}

// authorize is the sqlite.AuthorizerFn of the guard's connection.
func (g *guard) authorize(action sqlite.AuthorizerActionCode, arg1, arg2, dbName, trigger string) sqlite.AuthorizerReturnCode {
	if g.mode == modeInternal {
		return sqlite.AuthorizerOK
	}
	g.actions++
	switch action {
	case sqlite.AuthInsert, sqlite.AuthUpdate, sqlite.AuthDelete:
		// Writes to the schema table accompany DDL; writes inside a
		// trigger do not set changes() or last_insert_rowid().
		if trigger == "" && !isSchemaTable(arg1) {
			g.dml = true
		}
	case sqlite.AuthCreateIndex, sqlite.AuthCreateTable, sqlite.AuthCreateTempIndex,
		sqlite.AuthCreateTempTable, sqlite.AuthCreateTempTrigger, sqlite.AuthCreateTempView,
		sqlite.AuthCreateTrigger, sqlite.AuthCreateView, sqlite.AuthDropIndex, sqlite.AuthDropTable,
		sqlite.AuthDropTempIndex, sqlite.AuthDropTempTable, sqlite.AuthDropTempTrigger,
		sqlite.AuthDropTempView, sqlite.AuthDropTrigger, sqlite.AuthDropView, sqlite.AuthAlterTable,
		sqlite.AuthCreateVTable, sqlite.AuthDropVTable:
		g.ddl = true
	}
	if msg := g.refusal(action, arg1, arg2, dbName, trigger); msg != "" {
		if g.denied == "" {
			g.denied = msg
		}
		return sqlite.AuthorizerDeny
	}
	return sqlite.AuthorizerOK
}

// refusal returns why action may not run in the guard's mode, or "".
// trigger is the innermost trigger or view the action comes from.
func (g *guard) refusal(action sqlite.AuthorizerActionCode, arg1, arg2, dbName, trigger string) string {
	switch action {
	case sqlite.AuthFunction:
		if msg := functionRefusal(g.mode, arg2); msg != "" {
			return msg
		}
	case sqlite.AuthRead:
		if msg := g.readRefusal(arg1, trigger); msg != "" {
			return msg
		}
	case sqlite.AuthPragma:
		// PRAGMA table_info(_raftlite_meta) and the like.
		if isInternalName(arg2) {
			return "no such table: " + arg2
		}
	}
	if readAction(action, arg1, arg2) {
		return ""
	}
	if g.mode == modeReadOnly {
		return errReadOnly
	}
	switch action {
	case sqlite.AuthTransaction, sqlite.AuthSavepoint:
		return "transaction control statements are not supported: use the transaction flag"
	case sqlite.AuthAttach, sqlite.AuthDetach:
		return "ATTACH and DETACH are not supported"
	case sqlite.AuthPragma:
		if strings.EqualFold(arg1, "foreign_keys") {
			return "PRAGMA foreign_keys cannot be set: foreign key enforcement is the nodes' -fk setting, the same on every node"
		}
		if !replicatedPragma(arg1) {
			return "PRAGMA " + strings.ToLower(arg1) + " cannot be set: it is a connection setting, not replicated state"
		}
	}
	if dbName == "temp" {
		return "temporary tables, views and triggers are not supported"
	}
	name := strings.ToLower(writeTarget(action, arg1, arg2))
	switch {
	case strings.HasPrefix(name, internalPrefix), isIndexAction(action) && isInternalName(arg1):
		return "table " + name + " is reserved for raftlite"
	case name == "sqlite_dbpage":
		return "writing database pages directly is not supported"
	}
	return ""
}

// readRefusal returns why a client statement may not read table, or "":
// raftlite's tables, except the views that hide them, and, in statements
// held to those views, the schema tables other than through them (see
// hide.go).
func (g *guard) readRefusal(table, trigger string) string {
	switch {
	case isHidingView(table):
		return ""
	case isInternalName(table):
		return "no such table: " + table
	case g.hideSchema && isSchemaTable(table) && !isHidingView(trigger):
		return errSchemaRead.Error()
	}
	return ""
}

// isInternalName reports whether name is one of raftlite's tables or their
// automatic indexes.
func isInternalName(name string) bool {
	name = strings.ToLower(name)
	return strings.HasPrefix(name, internalPrefix) || strings.HasPrefix(name, "sqlite_autoindex_"+internalPrefix)
}

// functionRefusal returns why function name may not be called in mode, or
// "". Functions whose result depends on this node rather than on the
// replicated database cannot be part of a write: every replica would store
// something else. (Time and randomness are made deterministic on the write
// connection instead, see determinism.go.) load_extension is refused
// everywhere.
func functionRefusal(mode guardMode, name string) string {
	name = strings.ToLower(name)
	if name == "load_extension" {
		return "load_extension() is not supported"
	}
	if mode != modeUser {
		return ""
	}
	switch name {
	case "total_changes":
		return "total_changes() counts this node's connection history, so it cannot be used in a write"
	case "sqlite_offset":
		return "sqlite_offset() depends on this node's file layout, so it cannot be used in a write"
	}
	return ""
}

// readAction reports whether action only reads the database. It is the
// authorizer's counterpart of sqlite3_stmt_readonly, which the driver does
// not expose; unlike that function it also treats setting a PRAGMA as a
// write, because on a pooled connection that changes the connection.
func readAction(action sqlite.AuthorizerActionCode, arg1, arg2 string) bool {
	switch action {
	case sqlite.AuthSelect, sqlite.AuthRead, sqlite.AuthFunction, sqlite.AuthRecursive:
		return true
	case sqlite.AuthPragma:
		return readPragma(arg1, arg2)
	}
	return false
}

// readPragma reports whether "PRAGMA name" or "PRAGMA name(arg)" only
// reports something. A pragma given an argument sets something, except for
// the ones whose argument names the object to describe.
func readPragma(name, arg string) bool {
	switch strings.ToLower(name) {
	case "table_info", "table_xinfo", "table_list", "index_info", "index_xinfo", "index_list",
		"foreign_key_list", "foreign_key_check", "integrity_check", "quick_check":
		return true
	case "optimize", "wal_checkpoint", "incremental_vacuum", "shrink_memory":
		return false // act even without an argument
	}
	return arg == ""
}

// replicatedPragma reports whether setting pragma name changes the database
// file itself, identically on every replica, rather than this connection.
func replicatedPragma(name string) bool {
	switch strings.ToLower(name) {
	case "user_version", "application_id", "optimize", "incremental_vacuum":
		return true
	}
	return false
}

// writeTarget returns the table or view an action creates, drops or
// writes, or "" for other actions.
func writeTarget(action sqlite.AuthorizerActionCode, arg1, arg2 string) string {
	switch action {
	case sqlite.AuthInsert, sqlite.AuthUpdate, sqlite.AuthDelete,
		sqlite.AuthCreateTable, sqlite.AuthDropTable, sqlite.AuthCreateView, sqlite.AuthDropView,
		sqlite.AuthCreateVTable, sqlite.AuthDropVTable:
		return arg1
	case sqlite.AuthCreateIndex, sqlite.AuthDropIndex, sqlite.AuthCreateTrigger,
		sqlite.AuthDropTrigger, sqlite.AuthAlterTable:
		return arg2
	}
	return ""
}

// isIndexAction reports whether action creates or drops an index or a
// trigger, whose own name is arg1.
func isIndexAction(action sqlite.AuthorizerActionCode) bool {
	switch action {
	case sqlite.AuthCreateIndex, sqlite.AuthDropIndex, sqlite.AuthCreateTrigger, sqlite.AuthDropTrigger:
		return true
	}
	return false
}

func isSchemaTable(name string) bool {
	switch strings.ToLower(name) {
	case "sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema":
		return true
	}
	return false
}
