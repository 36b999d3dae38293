package shell

import "testing"

func TestIsPlainRead(t *testing.T) {
	tests := []struct {
		sql  string
		want bool
	}{
		{"SELECT 1", true},
		{"  select * from t", true},
		{"/* c */ SELECT 1", true},
		{"-- c\nSELECT 1", true},
		{"VALUES (1, 2)", true},
		{"WITH t AS (SELECT 1) SELECT * FROM t", true},
		{"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 5) SELECT x FROM c", true},
		{"WITH a AS (SELECT 1), b(y) AS NOT MATERIALIZED (SELECT 2) SELECT * FROM a, b", true},
		{"WITH a AS MATERIALIZED (SELECT 1) VALUES (1)", true},
		{"WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a", false},
		{"WITH a AS (SELECT 1) DELETE FROM t WHERE x IN a", false},
		{"WITH a AS (SELECT ')') UPDATE t SET x = 1", false},
		{"WITH a AS (SELECT 1", false},
		{"WITH", false},
		{"PRAGMA foreign_keys", true},
		{"PRAGMA main.user_version", true},
		{"PRAGMA user_version = 5", false},
		{"PRAGMA table_info(t)", false},
		{"PRAGMA", false},
		{"INSERT INTO t VALUES (1)", false},
		{"UPDATE t SET x = 1", false},
		{"DELETE FROM t", false},
		{"CREATE TABLE t (x)", false},
		{"EXPLAIN SELECT 1", false},
		{"", false},
		{"-- only a comment", false},
		{"SELECTx", false},
	}
	for _, tt := range tests {
		if got := isPlainRead(tt.sql); got != tt.want {
			t.Errorf("isPlainRead(%q) = %v, want %v", tt.sql, got, tt.want)
		}
	}
}
