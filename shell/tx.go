package shell

import (
	"context"
	"errors"
	"fmt"
)

// A cluster cannot keep an SQLite transaction open between requests: each
// request is one Raft log entry. So the shell keeps BEGIN ... COMMIT
// itself: after BEGIN it holds the statements typed, COMMIT sends them as
// one request with ?transaction (all applied, or none), and ROLLBACK drops
// them. Nothing reaches the cluster before COMMIT, which is why a read
// inside the transaction is refused rather than answered from data that
// does not include the held writes.

// txControl is a statement that opens or ends the shell's transaction.
type txControl int

const (
	txNone     txControl = iota // any other statement
	txBegin                     // BEGIN [DEFERRED|IMMEDIATE|EXCLUSIVE] [TRANSACTION]
	txCommit                    // COMMIT or END [TRANSACTION]
	txRollback                  // ROLLBACK [TRANSACTION], without TO
)

// classifyTx says whether sql opens or ends a transaction. ROLLBACK TO a
// savepoint does not end it: it is held like any other statement.
func classifyTx(sql string) txControl {
	l, toks := tokens(sql)
	if len(toks) == 0 {
		return txNone
	}
	switch {
	case l.is(toks[0], "BEGIN"):
		return txBegin
	case l.is(toks[0], "COMMIT"), l.is(toks[0], "END"):
		return txCommit
	case l.is(toks[0], "ROLLBACK"):
		for _, t := range toks[1:] {
			if l.is(t, "TO") {
				return txNone
			}
		}
		return txRollback
	}
	return txNone
}

// heldStatement is a statement and the input line it starts at, for
// messages.
type heldStatement struct {
	statement
	in   *input
	line int
}

// errReadInTransaction refuses a read between BEGIN and COMMIT.
var errReadInTransaction = errors.New("reads are not allowed inside BEGIN ... COMMIT: the shell sends " +
	"the transaction's statements in one request at COMMIT, so a read now would not see them; " +
	"run it after COMMIT or ROLLBACK (the transaction is still open)")

// transaction is the shell's open transaction: the statements held since
// BEGIN.
type transaction struct {
	held []heldStatement
}

// txPrompt and txContPrompt replace the prompts while a transaction is open.
const (
	txPrompt     = "raftlite*> "
	txContPrompt = "      ...> "
)

// control runs BEGIN, COMMIT or ROLLBACK.
func (s *session) control(ctx context.Context, kind txControl, at heldStatement) error {
	switch kind {
	case txBegin:
		if s.tx != nil {
			return at.in.at(at.line, fmt.Errorf("a transaction is already open (%s held; COMMIT or ROLLBACK it first)", plural(len(s.tx.held), "statement")))
		}
		s.tx = &transaction{}
		s.info("transaction open: statements are held until COMMIT, which sends them as one request; ROLLBACK discards them")
	case txCommit:
		if s.tx == nil {
			return at.in.at(at.line, errors.New("cannot commit: no transaction is open"))
		}
		held := s.tx.held
		s.tx = nil
		if len(held) == 0 {
			s.info("committed an empty transaction")
			return nil
		}
		if err := s.runBatch(ctx, held, true); err != nil {
			return err
		}
		s.info("committed: %s applied together", plural(len(held), "statement"))
	case txRollback:
		if s.tx == nil {
			return at.in.at(at.line, errors.New("cannot roll back: no transaction is open"))
		}
		s.info("rolled back: %s discarded, nothing was sent", plural(len(s.tx.held), "statement"))
		s.tx = nil
	}
	return nil
}

// discardTransaction ends the input with a transaction open: like sqlite3,
// the shell rolls it back, and says so.
func (s *session) discardTransaction() {
	if s.tx == nil {
		return
	}
	s.note("no COMMIT before the end of the input: the transaction was rolled back (%s not sent)", plural(len(s.tx.held), "statement"))
	s.tx = nil
}
