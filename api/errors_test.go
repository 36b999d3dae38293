package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
)

// docTable is the code table of sqlapi/doc.go, one outcome a line.
func docTable() string {
	var b strings.Builder
	fmt.Fprintf(&b, "//\t%-19s %-7s %s\n", "code", "status", "meaning")
	for _, o := range Outcomes() {
		fmt.Fprintf(&b, "//\t%-19s %-7d %s\n", o.Code, o.Status, o.Meaning)
	}
	return b.String()
}

// markdownTable is the code table of docs/API.md.
func markdownTable() string {
	var b strings.Builder
	b.WriteString("| code | status | meaning |\n|---|---|---|\n")
	for _, o := range Outcomes() {
		fmt.Fprintf(&b, "| `%s` | %d | %s |\n", o.Code, o.Status, o.Meaning)
	}
	return b.String()
}

// Every outcome a client can see is defined once, with a status and a
// code of its own, and both documents list it exactly as defined.
func TestEveryOutcomeDefinedOnceAndDocumented(t *testing.T) {
	seen := map[string]bool{}
	for _, o := range Outcomes() {
		if seen[o.Code] {
			t.Errorf("code %s defined twice", o.Code)
		}
		seen[o.Code] = true
		if http.StatusText(o.Status) == "" || o.Status < 400 || o.Meaning == "" || o.Error() == "" {
			t.Errorf("%s: status %d, meaning %q, message %q", o.Code, o.Status, o.Meaning, o.Error())
		}
		if ByCode(o.Code) != o || OutcomeOf(fmt.Errorf("context: %w", o)) != o {
			t.Errorf("%s does not survive ByCode and OutcomeOf", o.Code)
		}
	}
	for path, want := range map[string]string{"../sqlapi/doc.go": docTable(), "../docs/API.md": markdownTable()} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), want) {
			t.Errorf("%s does not hold the code table of api.Outcomes; it should read:\n%s", path, want)
		}
	}
}

// A cause answers with its outcome's status and code, matches it with
// errors.Is, and keeps its own message.
func TestCauses(t *testing.T) {
	for _, c := range []struct {
		cause, outcome *Error
	}{
		{ErrCommitTimeout, ErrTimeout}, {ErrApplyFailed, ErrUnknownOutcome},
		{ErrEnqueueTimeout, ErrUnavailable}, {ErrLeadershipTransfer, ErrUnavailable},
		{ErrClosed, ErrUnavailable}, {ErrHalted, ErrUnavailable},
		{ErrUnknownNode, ErrNotFound}, {ErrNotSingleNode, ErrBadRequest}, {ErrBadSequence, ErrBadRequest}, {ErrInvalidLoad, ErrBadRequest},
	} {
		err := fmt.Errorf("cluster: %w", c.cause)
		if got := OutcomeOf(err); got != c.cause || got.Code != c.outcome.Code || got.Status != c.outcome.Status ||
			!errors.Is(err, c.outcome) || c.cause.Outcome() != c.outcome || c.cause.Error() == c.outcome.Error() {
			t.Errorf("%v: outcome %v (%d %s), want %s", c.cause, got, got.Status, got.Code, c.outcome.Code)
		}
		if errors.Is(c.outcome, c.cause) {
			t.Errorf("%s matches its cause %v", c.outcome.Code, c.cause)
		}
	}
	if o := OutcomeOf(context.Canceled); o.Code != "timeout" || o.Status != http.StatusServiceUnavailable {
		t.Errorf("canceled: %d %s", o.Status, o.Code)
	}
	if o := OutcomeOf(fmt.Errorf("wait: %w", context.DeadlineExceeded)); o.Code != "timeout" || o.Status != http.StatusGatewayTimeout {
		t.Errorf("deadline: %d %s", o.Status, o.Code)
	}
	if o := OutcomeOf(errors.New("disk on fire")); o != ErrStore {
		t.Errorf("unknown error: %s", o.Code)
	}
	// Outcomes are distinct: one never matches another.
	if errors.Is(ErrHalted, ErrBadRequest) || errors.Is(ErrNoLeader, ErrNotLeader) {
		t.Error("outcomes match each other")
	}
	if !IsAmbiguous(fmt.Errorf("x: %w", ErrApplyFailed)) || IsAmbiguous(ErrTimeout) || IsAmbiguous(ErrEnqueueTimeout) {
		t.Error("IsAmbiguous")
	}
}
