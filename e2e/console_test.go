//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// screenshotDirEnv names a directory where TestConsoleInChromium saves its
// screenshots (docs/ keeps the README's); unset, they go to a temporary
// directory and are only checked to be PNG images.
const screenshotDirEnv = "RAFTLITE_CONSOLE_SCREENSHOTS"

// findChromium returns the path of a Chromium (Debian's package is
// "chromium"; .ci/run installs it). Outside CI a machine without one
// skips the browser tests; in CI their absence is a failure.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium on PATH: .ci/run installs Debian's chromium package")
	}
	t.Skip("no chromium on PATH (apt-get install chromium): skipping the web console test")
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile, without the
// background connections (updates, sync, QUIC probes) a closed network
// refuses, and returns a tab's context.
func newBrowser(t *testing.T, chromium string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.WindowSize(1100, 640),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// browse runs actions in the tab within waitTimeout, failing the test with
// what was being done.
func browse(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// read runs one action that returns a value, within waitTimeout.
func read[T any](t *testing.T, ctx context.Context, what string, action chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// waitPage polls the page until the JavaScript expression check, which
// returns "" once the page shows what is waited for and else what it
// shows instead, returns "".
func waitPage(t *testing.T, ctx context.Context, what, check string) {
	t.Helper()
	waitFor(t, waitTimeout, what, func() error {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](check))
		if err != nil {
			return err
		}
		if got != "" {
			return fmt.Errorf("the page shows %s", got)
		}
		return nil
	})
}

// screenshot saves the page as name.png (see screenshotDirEnv) and checks
// it is a PNG image.
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png := read(t, ctx, "screenshot "+name, chromedp.CaptureScreenshot())
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot %s is not a PNG image", name)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// membersJS returns the cluster view's rows as "id:leader:reachable:applied"
// strings, for checks.
const membersJS = `Array.from(document.querySelectorAll('#members tbody tr')).map(tr =>
	[tr.dataset.id, tr.querySelector('.is-leader').textContent, tr.querySelector('.reachable').textContent,
	 tr.querySelector('.applied').textContent].join(':'))`

// liveViewJS returns a JavaScript check for waitPage: "" when cond holds
// of the live view's rows (each "v1|v2|...", joined by ";"), its changes
// (each "op:key:new values", newest first, joined by ";") and its status,
// else all three.
func liveViewJS(cond string) string {
	return `(() => {
		const texts = (sel, sep) => Array.from(document.querySelectorAll(sel)).map(tr => Array.from(tr.cells).map(td => td.textContent).join(sep));
		const rows = texts('#live-rows tbody tr', '|').join(';');
		const changes = texts('#live-changes tbody tr', '\t').map(c => c.split('\t').slice(2).join(':')).join(';');
		const status = document.getElementById('live-status').textContent + document.getElementById('live-error').textContent;
		return (` + cond + `) ? '' : JSON.stringify({rows, changes, status});
	})()`
}

// asAdmin does one request to n with the console test's admin credentials.
func asAdmin(n *node, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, n.url(path), bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.SetBasicAuth("admin", "s3cret")
	req.Header.Set("Content-Type", "application/json")
	return n.do(req)
}

// adminExecute writes statements through n's /db/execute as the admin,
// failing the test on any error, and returns the entry's log index.
func adminExecute(t *testing.T, n *node, stmts ...string) uint64 {
	t.Helper()
	body, err := json.Marshal(stmts)
	if err != nil {
		t.Fatal(err)
	}
	code, raw, err := asAdmin(n, "POST", "/db/execute?raft_index", body)
	var r response
	if err == nil && code == http.StatusOK {
		err = json.Unmarshal(raw, &r)
	}
	for _, res := range r.Results {
		if res.Error != "" && err == nil {
			err = fmt.Errorf("statement error: %s", res.Error)
		}
	}
	if err != nil || code != http.StatusOK || r.RaftIndex == 0 {
		t.Fatalf("execute %q on %s: %d %s %v", stmts, n.name, code, raw, err)
	}
	return r.RaftIndex
}

// TestConsoleInChromium drives the web console in a real headless Chromium
// against the Procfile's three-node cluster of real processes, with -auth:
// a browser at "/" lands on the console; a query the node refuses without
// credentials brings up the login form, and after logging in its rows
// appear, NULL and a blob shown as such; the cluster view lists the three
// members with the leader marked and applied indexes, and after the
// leader is killed it shows another leader and the old one unreachable;
// a backup downloads a real SQLite file, and restoring it through the
// upload puts the database back as it was.
func TestConsoleInChromium(t *testing.T) {
	chromium := findChromium(t)
	shots := os.Getenv(screenshotDirEnv)
	if shots == "" {
		shots = t.TempDir()
	}
	authFile := filepath.Join(t.TempDir(), "auth.json")
	// "*" may read the cluster's state (the harness's waits use /status);
	// SQL, backups and restores need the admin's login.
	creds := `[{"username":"admin","password":"s3cret","perms":["all"]},{"username":"*","perms":["ready","status"]}]`
	if err := os.WriteFile(authFile, []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startProcfileCluster(t, "auth", authFile)
	waitReady(t, c.nodes...)
	leader := c.waitLeader()
	// The page is served by a follower, which survives the leader's death.
	follower := c.others(leader)[0]

	ctx := newBrowser(t, chromium)
	downloads := t.TempDir()
	browse(t, ctx, "open the console",
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads,
			})
			return err
		}),
		chromedp.Navigate(follower.url("/")),
		chromedp.WaitVisible(chromedp.ID("sql")),
	)
	location := read(t, ctx, "the console's address", chromedp.Location())
	if location != follower.url("/console/") {
		t.Fatalf("a browser at / landed on %s, want %s", location, follower.url("/console/"))
	}

	const script = `CREATE TABLE cities (id INTEGER PRIMARY KEY, name TEXT, country TEXT, flag BLOB);
INSERT INTO cities (name, country, flag) VALUES ('Zürich', 'CH', x'cafe01'), ('Atlantis', NULL, NULL);
SELECT * FROM cities ORDER BY id;`
	browse(t, ctx, "run a script before logging in",
		chromedp.SetValue(chromedp.ID("sql"), script),
		chromedp.Click(chromedp.ID("run")),
		chromedp.WaitVisible(chromedp.ID("login-form")),
	)
	browse(t, ctx, "log in",
		chromedp.SendKeys(chromedp.ID("login-user"), "admin"),
		chromedp.SendKeys(chromedp.ID("login-password"), "s3cret"),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#results table.rows tbody tr:nth-child(2)")),
	)
	cells := read(t, ctx, "read the result table", chromedp.Evaluate[[][]string](`Array.from(document.querySelectorAll('#results table.rows tbody tr')).map(tr =>
		Array.from(tr.cells).map(td => td.className + '=' + td.textContent))`))
	want := [][]string{
		{"num=1", "=Zürich", "=CH", "blob=x'cafe01'"},
		{"num=2", "=Atlantis", "null=NULL", "null=NULL"},
	}
	if fmt.Sprint(cells) != fmt.Sprint(want) {
		t.Fatalf("result rows (class=text) %q, want %q", cells, want)
	}
	timing := read(t, ctx, "read the timing", chromedp.TextContent(chromedp.ID("timing")))
	history := read(t, ctx, "read the history", chromedp.TextContent(chromedp.ID("history")))
	if !strings.Contains(timing, "ms, server") || !strings.Contains(history, "CREATE TABLE cities") {
		t.Fatalf("timing %q and history %q: want both times and the script in the history", timing, history)
	}
	screenshot(t, ctx, shots, "console-sql")

	// The live view follows a table through the change feed of the node
	// serving the page; rows written through the API appear as they
	// commit. (Its own table: the backup below counts the cities.)
	adminExecute(t, leader, `CREATE TABLE visits (id INTEGER PRIMARY KEY, city TEXT, guests INTEGER)`,
		`INSERT INTO visits (city, guests) VALUES ('Zürich', 2), ('Atlantis', NULL)`)
	browse(t, ctx, "open the live view", chromedp.Click(chromedp.ID("tab-live")))
	// The page lists the tables its node has applied, which may be behind
	// the leader for a moment: reload until the new table is there.
	waitPage(t, ctx, "visits in the table picker", liveViewJS(`document.querySelector('#live-table option[value="visits"]') ||
		document.getElementById('live-reload').click()`))
	read(t, ctx, "choose visits", chromedp.Evaluate[bool](`(() => {
		const picker = document.getElementById('live-table');
		picker.value = 'visits';
		return picker.dispatchEvent(new Event('change'));
	})()`))
	waitPage(t, ctx, "the rows of visits, live", liveViewJS(`rows === '1|Zürich|2;2|Atlantis|NULL' && status.startsWith('live from index')`))
	adminExecute(t, leader, `DELETE FROM visits WHERE city = 'Zürich'`)
	adminExecute(t, leader, `INSERT INTO visits (city, guests) VALUES ('Oslo', 5)`, `UPDATE visits SET guests = 1 WHERE city = 'Atlantis'`)
	waitPage(t, ctx, "the changes, live", liveViewJS(`rows === '2|Atlantis|1;3|Oslo|5' && changes === 'update:id=2:id=2, city=Atlantis, guests=1;insert:id=3:id=3, city=Oslo, guests=5;delete:id=1:'`))
	screenshot(t, ctx, shots, "console-live")

	// Cut the page off the feed: it retries from the index it reached.
	// The history of the rows written meanwhile is compacted, so its next
	// poll is answered 410; it reads the rows again and goes on.
	setWatchBlocked := func(blocked bool) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
				return err
			}
			_, err := chromedp.Call(ctx, network.SetBlockedURLs, network.SetBlockedURLsParams{
				URLPatterns: []*network.BlockPattern{{URLPattern: "*://*:*/db/watch*", Block: blocked}},
			})
			return err
		})
	}
	browse(t, ctx, "block the feed", setWatchBlocked(true))
	// The poll in flight (sent before the block) ends with this change;
	// the next one is refused.
	adminExecute(t, leader, `INSERT INTO visits (city) VALUES ('Lost city')`)
	waitPage(t, ctx, "the page resuming after a failed poll", liveViewJS(`status.startsWith('connection lost')`))
	last := adminExecute(t, leader, `INSERT INTO visits (city) VALUES ('Lisbon')`)
	if code, body, err := asAdmin(leader, "POST", fmt.Sprintf("/db/compact?index=%d", last), nil); err != nil || code != http.StatusOK {
		t.Fatalf("compact the history up to %d: %d %s %v", last, code, body, err)
	}
	waitFor(t, waitTimeout, "the compaction on "+follower.name, func() error {
		code, body, err := asAdmin(follower, "GET", fmt.Sprintf("/db/watch?wait=0&from=%d", last), nil)
		if err != nil || code != http.StatusGone {
			return fmt.Errorf("GET /db/watch?from=%d: %d %s %v", last, code, body, err)
		}
		return nil
	})
	browse(t, ctx, "unblock the feed", setWatchBlocked(false))
	waitPage(t, ctx, "the rows read again after the compaction", liveViewJS(`rows.endsWith(';4|Lost city|NULL;5|Lisbon|NULL') && status.includes('was compacted, rows read again; live')`))

	browse(t, ctx, "open the cluster view", chromedp.Click(chromedp.ID("tab-cluster")))
	waitPage(t, ctx, "three members, the leader marked", fmt.Sprintf(`(() => {
		const rows = %s;
		const ok = rows.length === 3 && rows.every(r => /:yes:\d+$/.test(r)) && rows.some(r => r.startsWith(%q));
		return ok ? '' : JSON.stringify(rows);
	})()`, membersJS, leader.id+":leader:"))
	screenshot(t, ctx, shots, "console-cluster")

	leader.kill(t)
	waitPage(t, ctx, "a new leader, the old one unreachable", fmt.Sprintf(`(() => {
		const rows = %s;
		const ok = rows.some(r => r.startsWith(%q)) && rows.some(r => /^[^:]+:leader:yes:/.test(r));
		return ok ? '' : JSON.stringify(rows);
	})()`, membersJS, leader.id+"::no:"))
	screenshot(t, ctx, shots, "console-failover")
	newLeader := c.waitLeader()
	if newLeader == leader {
		t.Fatal("the killed node is still the leader")
	}

	browse(t, ctx, "download a backup",
		chromedp.Click(chromedp.ID("tab-backup")),
		chromedp.Click(chromedp.ID("backup")))
	waitPage(t, ctx, "the backup downloaded", `document.getElementById('backup-status').textContent.startsWith('downloaded') ? '' : document.getElementById('backup-status').textContent`)
	var backupFile string
	waitFor(t, waitTimeout, "the backup file on disk", func() error {
		matches, _ := filepath.Glob(filepath.Join(downloads, "raftlite-backup-*.sqlite"))
		if len(matches) != 1 {
			return fmt.Errorf("downloads: %v", matches)
		}
		raw, err := os.ReadFile(matches[0])
		if err != nil || !bytes.HasPrefix(raw, []byte("SQLite format 3\x00")) {
			return fmt.Errorf("%s is not (yet) a SQLite file: %v", matches[0], err)
		}
		backupFile = matches[0]
		return nil
	})
	screenshot(t, ctx, shots, "console-backup")

	// A row written after the backup is gone once the backup is restored.
	browse(t, ctx, "write after the backup",
		chromedp.Click(chromedp.ID("tab-sql")),
		chromedp.SetValue(chromedp.ID("sql"), "INSERT INTO cities (name) VALUES ('after the backup')"),
		chromedp.Click(chromedp.ID("run")))
	waitPage(t, ctx, "the insert", `document.querySelector('#results .count')?.textContent === '1 row affected, last insert id 3' ? '' : document.getElementById('results').textContent + document.getElementById('sql-error').textContent`)
	browse(t, ctx, "restore the backup",
		chromedp.Click(chromedp.ID("tab-backup")),
		chromedp.SetUploadFiles(chromedp.ID("restore-file"), []string{backupFile}),
		chromedp.Click(chromedp.ID("restore")))
	waitPage(t, ctx, "the restore", `(() => {
		const text = document.getElementById('restore-status').textContent;
		return text.startsWith('restored') ? '' : (text || 'no restore status yet');
	})()`)
	browse(t, ctx, "count after the restore",
		chromedp.Click(chromedp.ID("tab-sql")),
		chromedp.SetValue(chromedp.ID("sql"), "SELECT count(*) AS n FROM cities"),
		chromedp.SetValue(chromedp.ID("level"), "linearizable"),
		chromedp.Click(chromedp.ID("run")))
	// The restore was acknowledged: the first linearizable read after it
	// must show the backup's rows, not the row written after the backup.
	waitPage(t, ctx, "the count after the restore", `document.querySelector('#results table.rows tbody td') ? '' : 'no result yet: ' + document.getElementById('sql-error').textContent`)
	if n := read(t, ctx, "the count", chromedp.Evaluate[string](`document.querySelector('#results table.rows tbody td').textContent`)); n != "2" {
		t.Fatalf("a linearizable read right after the acknowledged restore counts %s rows, want the backup's 2", n)
	}

	t.Logf("screenshots in %s", shots)
}
