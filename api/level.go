package api

import "strings"

// Level is a read consistency level, spelled as in the ?level= query
// parameter (see API.md, "Read consistency levels").
type Level string

// The read consistency levels. LevelDefault is no level at all: a client
// that sends none gets weak.
const (
	LevelDefault      Level = ""
	LevelNone         Level = "none"
	LevelWeak         Level = "weak"
	LevelStrong       Level = "strong"
	LevelLinearizable Level = "linearizable"
	LevelAuto         Level = "auto"
)

// Levels are the levels a client may name, in the order of their cost.
var Levels = []Level{LevelNone, LevelWeak, LevelLinearizable, LevelStrong, LevelAuto}

// Valid reports whether l is one of the levels or LevelDefault.
func (l Level) Valid() bool {
	if l == LevelDefault {
		return true
	}
	for _, v := range Levels {
		if l == v {
			return true
		}
	}
	return false
}

// ParseLevel maps a ?level value to the level a server serves, in any case
// (level=STRONG is strong): unknown values (and none at all) mean weak, as in
// rqlite.
func ParseLevel(s string) Level {
	if l := Level(strings.ToLower(s)); l != LevelDefault && l.Valid() {
		return l
	}
	return LevelWeak
}
