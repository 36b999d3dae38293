package sqlapi

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/raftlite/raftlite/api"
)

// params are a request's query parameters. Flags are presence-only:
// ?pretty and ?pretty=false both turn pretty printing on.
type params struct {
	pretty, timings, associative, blobArray, tx bool
	redirect, queue, wait, raftIndex            bool
	freshnessStrict, noLeader, nonVoters        bool

	level     api.Level
	freshness time.Duration
	timeout   time.Duration

	clientID string
	seq      uint64
	minIndex uint64

	q    string
	hasQ bool
	// start is when the request arrived (for timings).
	start time.Time
	key   string
	ver   string
}

// parseParams parses and validates rawQuery. Unknown parameters are
// ignored. A malformed value of a known parameter is an error (400).
func parseParams(rawQuery string, defTimeout time.Duration) (*params, error) {
	p := &params{timeout: defTimeout, level: api.LevelWeak}
	if rawQuery == "" {
		return p, nil
	}
	vals, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fmt.Errorf("invalid query string: %w", err)
	}
	has := func(k string) bool { _, ok := vals[k]; return ok }
	p.pretty = has("pretty")
	p.timings = has("timings")
	p.associative = has("associative")
	p.blobArray = has("blob_array")
	p.tx = has("transaction")
	p.redirect = has("redirect")
	p.queue = has("queue")
	p.wait = has("wait")
	p.raftIndex = has("raft_index")
	p.freshnessStrict = has("freshness_strict")
	p.noLeader = has("noleader")
	p.nonVoters = has("nonvoters")
	p.level = api.ParseLevel(vals.Get("level"))
	p.key = vals.Get("key")
	p.ver = vals.Get("ver")
	p.q, p.hasQ = vals.Get("q"), has("q")

	if has("timeout") {
		d, err := time.ParseDuration(vals.Get("timeout"))
		if err != nil || d <= 0 {
			return nil, errors.New("timeout is not a valid duration")
		}
		p.timeout = d
	}
	// Parameters rqlite validates but raftlite has no use for are checked
	// as rqlite checks them, so a client's typo is a 400 here too.
	for _, k := range []string{"db_timeout", "linearizable_timeout"} {
		if _, err := time.ParseDuration(vals.Get(k)); has(k) && err != nil {
			return nil, fmt.Errorf("%s is not a valid duration", k)
		}
	}
	for _, k := range []string{"retries", "trailing_logs"} {
		if _, err := strconv.Atoi(vals.Get(k)); has(k) && err != nil {
			return nil, fmt.Errorf("%s is not a valid integer", k)
		}
	}
	if has("freshness") {
		d, err := time.ParseDuration(vals.Get("freshness"))
		if err != nil || d < 0 {
			return nil, errors.New("freshness is not a valid duration")
		}
		p.freshness = d
	} else if p.freshnessStrict {
		return nil, errors.New("freshness_strict requires freshness")
	}
	if has("min_index") {
		n, err := strconv.ParseUint(vals.Get("min_index"), 10, 64)
		if err != nil {
			return nil, errors.New("min_index is not a valid log index")
		}
		p.minIndex = n
	}
	if has("seq") {
		n, err := strconv.ParseUint(vals.Get("seq"), 10, 64)
		if err != nil || n == 0 {
			return nil, errors.New("seq is not a valid sequence number (1, 2, 3...)")
		}
		p.seq = n
	}
	p.clientID = vals.Get("client_id")
	switch {
	case has("client_id") && p.clientID == "":
		return nil, errors.New("client_id must not be empty")
	case p.clientID != "" && p.seq == 0:
		return nil, errors.New("client_id requires seq")
	case p.clientID == "" && p.seq != 0:
		return nil, errors.New("seq requires client_id")
	}
	return p, nil
}
