package cluster

import (
	"strings"
	"testing"
	"time"
)

func TestConfigDefaultsAndValidate(t *testing.T) {
	good := Config{NodeID: "n1", RaftAddr: "127.0.0.1:4002", APIAdvAddr: "http://127.0.0.1:4001", Dir: "/tmp/x"}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	d := good.WithDefaults()
	if d.RaftAdvAddr != "127.0.0.1:4002" || d.HeartbeatTimeout != DefaultHeartbeatTimeout ||
		d.ElectionTimeout != DefaultElectionTimeout || d.LeaderLeaseTimeout != DefaultLeaderLeaseTimeout ||
		d.SnapshotThreshold != DefaultSnapshotThreshold || d.TrailingLogs != DefaultTrailingLogs ||
		d.MaxAppendEntries != DefaultMaxAppendEntries || d.ApplyTimeout != DefaultApplyTimeout ||
		d.RaftLogLevel != "warn" {
		t.Fatalf("defaults: %+v", d)
	}

	for name, tc := range map[string]struct {
		mod  func(*Config)
		want string
	}{
		"no id":            {func(c *Config) { c.NodeID = "" }, "node ID is required"},
		"id with space":    {func(c *Config) { c.NodeID = "a b" }, "without whitespace"},
		"no dir":           {func(c *Config) { c.Dir = "" }, "data directory"},
		"bad raft addr":    {func(c *Config) { c.RaftAddr = "nope" }, "raft address"},
		"unspecified bind": {func(c *Config) { c.RaftAddr = "0.0.0.0:4002" }, "not reachable"},
		"no api addr":      {func(c *Config) { c.APIAdvAddr = "" }, "API advertise address is required"},
		"api not url":      {func(c *Config) { c.APIAdvAddr = "127.0.0.1:4001" }, "http(s) URL"},
		"bad join":         {func(c *Config) { c.Join = []string{"x"} }, "join address"},
		"expect w/o join":  {func(c *Config) { c.BootstrapExpect = 3 }, "needs join addresses"},
		"lease > hb":       {func(c *Config) { c.LeaderLeaseTimeout = time.Second }, "lease timeout"},
		"election < hb":    {func(c *Config) { c.ElectionTimeout = 100 * time.Millisecond }, "election timeout"},
		"too many entries": {func(c *Config) { c.MaxAppendEntries = 5000 }, "max append entries"},
		"bad log level":    {func(c *Config) { c.RaftLogLevel = "loud" }, "raft log level"},
	} {
		t.Run(name, func(t *testing.T) {
			c := good
			tc.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tc.want)
			}
		})
	}

	// An explicit advertise address makes an all-interfaces bind valid.
	c := good
	c.RaftAddr, c.RaftAdvAddr = "0.0.0.0:4002", "10.0.0.1:4002"
	if err := c.Validate(); err != nil {
		t.Fatalf("bind all with advertise address: %v", err)
	}
}
