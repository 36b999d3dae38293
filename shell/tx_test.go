package shell

import "testing"

func TestClassifyTx(t *testing.T) {
	for sql, want := range map[string]txControl{
		"BEGIN":                                 txBegin,
		"begin immediate transaction;":          txBegin,
		"COMMIT TRANSACTION":                    txCommit,
		"end;":                                  txCommit,
		"ROLLBACK":                              txRollback,
		"rollback transaction":                  txRollback,
		"ROLLBACK TO sp1":                       txNone, // a savepoint, held like other statements
		"ROLLBACK TRANSACTION TO SAVEPOINT sp1": txNone,
		"SAVEPOINT sp1":                         txNone,
		"SELECT 'BEGIN'":                        txNone,
		"CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END": txNone,
	} {
		if got := classifyTx(sql); got != want {
			t.Errorf("classifyTx(%q) = %d, want %d", sql, got, want)
		}
	}
}
