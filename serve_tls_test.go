package main

import (
	"io"
	"strings"
	"testing"
)

// TestServeTLSFlags: TLS flags that cannot work alone are refused at
// start, naming the flags, rather than leaving a node without the TLS its
// operator asked for.
func TestServeTLSFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" for accepted
	}{
		{[]string{"-http-cert", "c.pem", "-http-key", "k.pem", "-http-ca-cert", "ca.pem", "-http-verify-client"}, ""},
		{[]string{"-node-cert", "c.pem", "-node-key", "k.pem", "-node-ca-cert", "ca.pem", "-node-verify-client",
			"-node-verify-server-name", "raft.internal"}, ""},
		{[]string{"-http-cert", "c.pem"}, "-http-cert and -http-key"},
		{[]string{"-http-verify-client"}, "need -http-cert"},
		{[]string{"-node-key", "k.pem"}, "-node-cert and -node-key"},
		{[]string{"-node-no-verify"}, "need -node-cert"},
		{[]string{"-node-verify-server-name", "x"}, "need -node-cert"},
	} {
		_, err := parseServeFlags(tc.args, io.Discard, io.Discard)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want one mentioning %q", tc.args, err, tc.want)
		}
	}
	f, err := parseServeFlags([]string{"-http-cert", "c.pem", "-http-key", "k.pem"}, io.Discard, io.Discard)
	if err != nil || f.tls.httpScheme() != "https" || apiURL(f.httpAdvAddr, f.tls.httpScheme()) != "https://127.0.0.1:4001" {
		t.Fatalf("HTTPS node advertises %v (err %v)", f, err)
	}
}
