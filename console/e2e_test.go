package console_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/weirstream/weir/platform"
	"github.com/weirstream/weir/platform/client"
	"github.com/weirstream/weir/platform/client/clienttest"
	"github.com/weirstream/weir/platform/jobs"
	"github.com/weirstream/weir/tenants"
)

// e2eSpec is the job the test deploys: unbounded sentences through
// wordcount's split and keyed count into a blackhole, checkpointing every
// second. partition is the count's input partitioning (the test first
// sends an invalid one).
func e2eSpec(partition string) string {
	return `name: e2e-wordcount
parallelism: 1
modules: {wc: wordcount@1}
checkpoints: {interval: 1s}
nodes:
  - id: lines
    source: datagen
    config: {rate: 300, value: {kind: oneOf, values: ["the quick brown fox", "jumps over the lazy dog"]}}
  - {id: split, module: wc, operator: split, inputs: [{from: lines, partition: rebalance}]}
  - {id: count, module: wc, operator: count, inputs: [{from: split, partition: ` + partition + `}]}
  - {id: out, sink: blackhole, inputs: [count]}
`
}

// TestConsoleEndToEnd drives the console in headless Chromium against a
// real platform, as a tenant's owner would: sign in with the keyboard,
// upload a module (and a broken one), deploy it, watch it run, take a
// savepoint, upgrade it to a second version, cancel it, sign out; then an
// admin signs in. Every main page is checked at a laptop's and a phone's
// width (no horizontal overflow, every form control labelled) and
// photographed to artifacts/console/<page>-<width>.png.
//
// It needs Debian's chromium package (/usr/bin/chromium; .ci/run installs
// it). Without it the test FAILS saying so; WEIR_SKIP_BROWSER=1 skips it
// instead, for machines that cannot have a browser.
func TestConsoleEndToEnd(t *testing.T) {
	exe := findChromium(t)
	mods, err := clienttest.Modules(map[string]clienttest.Source{"wordcount": {Pkg: "wordcount"}})
	if err != nil {
		t.Fatal(err)
	}
	v1 := mods["wordcount"]
	// The second version: the same code with a custom section appended,
	// so other bytes (another digest, hence a new version) that behave
	// the same and keep the state compatible.
	v2 := e2eAppendCustomSection(v1, "weir.e2e", []byte("version 2"))
	bad := []byte("this is not a WebAssembly module\n")
	dir := t.TempDir()
	files := map[string][]byte{"wordcount.wasm": v1, "wordcount-v2.wasm": v2, "broken.wasm": bad}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	srv := clienttest.Start(t, platform.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin := client.New(srv.URL, srv.AdminToken, nil)
	if _, err := admin.CreateTenant(ctx, "acme", nil); err != nil {
		t.Fatal(err)
	}
	key, err := admin.CreateKey(ctx, "acme", "console-e2e", tenants.RoleOwner, nil)
	if err != nil {
		t.Fatal(err)
	}
	owner := client.New(srv.URL, key.Token, nil)
	// What the API says of the broken module and of an invalid spec: the
	// pages must show the server's own messages. (Neither call stores
	// anything.)
	badUpload := e2eProblem(t, "uploading a broken module", func() error {
		_, _, err := owner.UploadModule(ctx, "broken", bad)
		return err
	})

	if badUpload.Detail == "" {
		t.Fatalf("the API's problem for a broken module has no detail to look for: %+v", badUpload)
	}
	b := startChrome(t, exe, srv.URL)

	// Signed out, a page sends the browser to the sign-in page, keeping
	// where it was going.
	b.navigate("/jobs")
	if p := b.path(); p != "/signin?next=%2Fjobs" {
		t.Fatalf("signed out, /jobs went to %s, want /signin?next=%%2Fjobs", p)
	}
	b.checkPage("signin")

	// Sign in with the keyboard alone: the key field is reachable (it has
	// autofocus; else Tab gets there), the token is typed, Enter submits.
	b.waitFor("focus the key field", 5*time.Second, 10*time.Millisecond, func() (bool, string) {
		id := chromeRun(b, "read the focus", chromedp.Evaluate[string](`document.activeElement ? document.activeElement.id : ""`))
		if id == "token" {
			return true, ""
		}
		b.do("press Tab", chromedp.KeyEvent(kb.Tab))
		return false, "Tab never reached the key field (focus on #" + id + ")"
	})
	b.do("type the key", chromedp.KeyEvent(key.Token))
	b.submit("press Enter to sign in", chromedp.KeyEvent(kb.Enter))
	if p := b.path(); p != "/jobs" {
		t.Fatalf("after signing in the browser is at %s, want /jobs", p)
	}
	if txt := b.text(); !strings.Contains(txt, "acme") {
		t.Fatalf("the signed-in page does not name the tenant:\n%s", txt)
	}

	// A broken upload: the modules page shows the API's reason, and
	// nothing is stored.
	b.navigate("/modules")
	b.checkPage("modules-empty")
	b.upload("broken", filepath.Join(dir, "broken.wasm"))
	msg := chromeRun(b, "read the upload's problem", chromedp.Text(chromedp.ID("problem")))
	if !strings.Contains(msg, badUpload.Detail) {
		t.Errorf("the broken upload shows %q, want the API's message %q", msg, badUpload.Detail)
	}
	if p := b.path(); p != "/modules" {
		t.Errorf("after a broken upload the browser is at %s, want /modules", p)
	}
	if got, err := owner.Modules(ctx); err != nil || len(got) != 0 {
		t.Fatalf("after a broken upload the tenant's modules are %v (%v), want none", got, err)
	}

	// The real module: its page shows the validation result.
	b.navigate("/modules")
	b.upload("wordcount", filepath.Join(dir, "wordcount.wasm"))
	b.checkUploaded("wordcount", 1, v1)
	b.checkPage("module")
	b.navigate("/modules")
	b.checkPage("modules")

	// Deploy: pick the module (the page writes a starter spec for it),
	// write the job's spec; an invalid one comes back with the API's
	// error at its line; the valid one lands on the job's page.
	b.navigate("/deploy")
	b.do("pick the module",
		chromedp.SetValue(chromedp.ID("pick-module"), "wordcount"),
	)
	b.submit("insert the starter spec", chromedp.Click(chromedp.CSS(`#pick-form button[type="submit"]`)))
	if starter := chromeRun(b, "read the starter spec", chromedp.Value(chromedp.ID("spec"))); !strings.Contains(starter, "wordcount@1") {
		t.Errorf("the starter spec for wordcount does not name wordcount@1:\n%s", starter)
	}
	b.checkPage("deploy")
	badSpec := e2eProblem(t, "deploying an invalid spec", func() error {
		_, err := owner.Deploy(ctx, []byte(e2eSpec("sideways")), "", false)
		return err
	})
	if len(badSpec.Errors) == 0 {
		t.Fatalf("the API's invalid-spec problem has no field errors: %+v", badSpec)
	}
	b.do("write an invalid spec", chromedp.SetValue(chromedp.ID("spec"), e2eSpec("sideways")))
	b.submit("deploy the invalid spec", chromedp.Click(chromedp.CSS(`#deploy-form button[type="submit"]`)))
	wantLine := e2eLineOf(e2eSpec("sideways"), "partition: sideways")
	lineErr := chromeRun(b, "read the error under the line", chromedp.Evaluate[string](fmt.Sprintf(
		`(() => { const l = document.getElementById("line-%d"); const e = l && l.nextElementSibling; return e && e.classList.contains("spec-error") ? e.textContent : ""; })()`, wantLine)))
	for _, fe := range badSpec.Errors {
		if !strings.Contains(lineErr, fe.Field) || !strings.Contains(lineErr, fe.Problem) {
			t.Errorf("under line %d the deploy page shows %q, want the API's %s: %s", wantLine, lineErr, fe.Field, fe.Problem)
		}
	}
	if kept := chromeRun(b, "read the kept spec", chromedp.Value(chromedp.ID("spec"))); strings.TrimSpace(kept) != strings.TrimSpace(e2eSpec("sideways")) {
		t.Errorf("the deploy page did not keep the spec that failed:\n%s", kept)
	}
	b.checkPage("deploy-errors")
	b.do("write the spec", chromedp.SetValue(chromedp.ID("spec"), e2eSpec("key")))
	b.submit("deploy", chromedp.Click(chromedp.CSS(`#deploy-form button[type="submit"]`)))
	m := e2eJobPath.FindStringSubmatch(strings.SplitN(b.path(), "?", 2)[0])
	if m == nil {
		t.Fatalf("after deploying the browser is at %s, want a job's page", b.path())
	}
	jobID := m[1]
	b.waitJS("the job is running", `document.getElementById("job-state").textContent === "running"`, 20*time.Second)

	// Its counts rise, on the page as it updates itself: the count
	// chain's records in, read until they are above a first reading.
	first := b.waitCount("records reach the count", 0)
	b.waitCount("the count's records rise", first)
	b.checkPage("job")
	b.navigate("/jobs")
	if txt := b.text(); !strings.Contains(txt, "e2e-wordcount") || !strings.Contains(txt, "running") {
		t.Errorf("the jobs list does not show the running job:\n%s", txt)
	}
	b.checkPage("jobs")

	// A savepoint: the operation page follows it to the end; the
	// savepoint is then listed on the job's page and under Savepoints.
	b.navigate("/jobs/" + jobID)
	b.submit("take a savepoint", chromedp.Click(chromedp.CSS(`form[action="/jobs/`+jobID+`/savepoint"] button[type="submit"]`)))
	b.waitOperation("the savepoint")
	b.checkPage("operation")
	sps, err := owner.Savepoints(ctx, jobID)
	if err != nil || len(sps) != 1 {
		t.Fatalf("the job's savepoints are %v (%v), want one", sps, err)
	}
	sp := sps[0].ID
	if txt := b.text(); !strings.Contains(txt, sp) {
		t.Errorf("the savepoint's operation page does not name savepoint %s:\n%s", sp, txt)
	}
	b.navigate("/jobs/" + jobID)
	if txt := chromeRun(b, "read the job's savepoints", chromedp.Text(chromedp.ID("job-savepoints"))); !strings.Contains(txt, sp) {
		t.Errorf("the job's page does not list savepoint %s:\n%s", sp, txt)
	}
	b.navigate("/savepoints")
	b.do("find the savepoint", chromedp.WaitVisible(chromedp.ID("savepoint-"+sp)))
	b.checkPage("savepoints")

	// A second version, and the job upgraded to it from its page (a
	// confirmed form); the operation completes without a rollback.
	b.navigate("/modules")
	b.upload("wordcount", filepath.Join(dir, "wordcount-v2.wasm"))
	b.checkUploaded("wordcount", 2, v2)
	b.navigate("/jobs/" + jobID)
	dialogs := b.dialogCount()
	b.do("pick version 2", chromedp.SetValue(chromedp.ID("upgrade-wc"), "wordcount@2"))
	b.submit("upgrade", chromedp.Click(chromedp.CSS(`form[action="/jobs/`+jobID+`/upgrade"] button[type="submit"]`)))
	if b.dialogCount() != dialogs+1 || !strings.Contains(b.lastDialog(), "Upgrade") {
		t.Errorf("the upgrade asked no confirmation (dialogs: %d, last %q)", b.dialogCount()-dialogs, b.lastDialog())
	}
	b.waitOperation("the upgrade")
	d, err := owner.Job(ctx, jobID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Modules["wc"] != "wordcount@2" || d.Generation < 2 {
		t.Fatalf("after the upgrade the job runs %v in generation %d, want wc: wordcount@2 in generation 2", d.Modules, d.Generation)
	}
	b.navigate("/jobs/" + jobID)
	b.waitJS("the upgraded job is running", `document.getElementById("job-state").textContent === "running"`, 20*time.Second)
	if txt := b.text(); !strings.Contains(txt, "wordcount@2") {
		t.Errorf("the job's page does not show wordcount@2 after the upgrade")
	}

	// Cancel, confirmed in a dialog.
	dialogs = b.dialogCount()
	b.submit("cancel the job", chromedp.Click(chromedp.CSS(`form[action="/jobs/`+jobID+`/cancel"] button[type="submit"]`)))
	if b.dialogCount() != dialogs+1 || !strings.Contains(b.lastDialog(), "Cancel") {
		t.Errorf("canceling asked no confirmation (dialogs: %d, last %q)", b.dialogCount()-dialogs, b.lastDialog())
	}
	b.waitJS("the job is canceled", `document.getElementById("job-state").textContent === "canceled"`, 20*time.Second)
	if d, err := owner.Job(ctx, jobID); err != nil || d.State != jobs.StateCanceled {
		t.Fatalf("after canceling, the API says the job is %s (%v)", d.State, err)
	}

	b.navigate("/tenant")
	b.checkPage("tenant")

	// Sign out: the session is over, pages send to the sign-in page again.
	b.submit("sign out", chromedp.Click(chromedp.CSS(`form.signout button[type="submit"]`)))
	if p := b.path(); p != "/signin" {
		t.Errorf("after signing out the browser is at %s, want /signin", p)
	}
	b.navigate("/jobs")
	if p := b.path(); p != "/signin?next=%2Fjobs" {
		t.Errorf("signed out, /jobs went to %s, want /signin?next=%%2Fjobs", p)
	}

	// The admin's pages.
	b.navigate("/signin")
	b.do("type the admin key", chromedp.SendKeys(chromedp.ID("token"), srv.AdminToken))
	b.submit("sign in as admin", chromedp.Click(chromedp.CSS(`form[action="/signin"] button[type="submit"]`)))
	if p := b.path(); p != "/admin" {
		t.Fatalf("the admin's sign-in went to %s, want /admin", p)
	}
	b.do("find the tenant", chromedp.WaitVisible(chromedp.ID("tenant-acme")))
	b.checkPage("admin")
	b.navigate("/admin/tenants/acme")
	b.checkPage("admin-tenant")
}

// upload sends a file with the modules page's form (the name field, then
// the file picker) and waits for the answer's page.
func (b *chrome) upload(name, file string) {
	b.t.Helper()
	b.do("fill the upload form",
		chromedp.SetValue(chromedp.ID("module-name"), name),
		chromedp.SetUploadFiles(chromedp.ID("module-file"), []string{file}),
	)
	b.submit("upload "+filepath.Base(file), chromedp.Click(chromedp.CSS(`#upload-form button[type="submit"]`)))
}

// checkUploaded checks an upload's result page against the module's bytes:
// its digest, the operators wordcount exports, the ABI version.
func (b *chrome) checkUploaded(name string, version int, wasm []byte) {
	b.t.Helper()
	if p, want := strings.SplitN(b.path(), "?", 2)[0], "/modules/"+name; p != want {
		b.t.Fatalf("after uploading %s version %d the browser is at %s, want %s", name, version, p, want)
	}
	sum := sha256.Sum256(wasm)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	res := chromeRun(b, "read the upload's result", chromedp.Text(chromedp.CSS(".upload-result")))
	for _, want := range []string{
		fmt.Sprintf("%s version %d", name, version), digest, "split", "count", "keyed",
		strconv.Itoa(len(wasm)) + " bytes", name + "@" + strconv.Itoa(version),
	} {
		if !strings.Contains(res, want) {
			b.t.Errorf("the upload's result does not say %q:\n%s", want, res)
		}
	}
	abi := chromeRun(b, "read the ABI version", chromedp.Evaluate[string](
		`[...document.querySelectorAll(".upload-result dt")].find(d => d.textContent === "ABI version").nextElementSibling.textContent`))
	if abi != "1" {
		b.t.Errorf("the upload's result shows ABI version %q, want 1", abi)
	}
}

// waitCount reads the job page's records into the count chain (the row of
// #job-vertices naming count) until it is above than, as the page updates
// itself, and returns it.
func (b *chrome) waitCount(step string, than int64) int64 {
	b.t.Helper()
	const read = `(() => {
  for (const tr of document.querySelectorAll("#job-vertices tr[data-vertex]")) {
    if (/\bcount\b/.test(tr.querySelector("th").textContent)) return tr.querySelector('[data-k="records_in"]').textContent;
  }
  return "";
})()`
	var n int64
	b.waitFor(step, 20*time.Second, 200*time.Millisecond, func() (bool, string) {
		s, err := e2eTry(b, chromedp.Evaluate[string](read))
		if err != nil {
			return false, err.Error()
		}
		v, err := strconv.ParseInt(strings.NewReplacer(",", "", " ", "", "\u00a0", "").Replace(s), 10, 64)
		if err != nil {
			return false, fmt.Sprintf("the count's records in read %q", s)
		}
		n = v
		return v > than, fmt.Sprintf("the count's records in are %d, want more than %d", v, than)
	})
	return n
}

// waitOperation waits on an operation's page (which follows the operation
// and reloads when it is done) for the operation to succeed.
func (b *chrome) waitOperation(what string) {
	b.t.Helper()
	if p := b.path(); !strings.HasPrefix(p, "/operations/") {
		b.t.Fatalf("after starting %s the browser is at %s, want an operation's page", what, p)
	}
	b.waitJS(what+" completes", `document.getElementById("operation-done").textContent === "yes"`, 40*time.Second)
	// A failure or a rollback is an .error box; success says "Done.".
	ok := chromeRun(b, "read the outcome", chromedp.Evaluate[bool](
		`!document.querySelector("#operation .error") && document.querySelector("#operation [role=status]").textContent.trim() === "Done."`))
	if !ok {
		b.t.Fatalf("%s did not succeed:\n%s", what, b.text())
	}
}

// e2eProblem runs a REST call that must fail with a problem and returns it.
func e2eProblem(t *testing.T, what string, call func() error) *client.ProblemError {
	t.Helper()
	var pe *client.ProblemError
	if err := call(); !errors.As(err, &pe) {
		t.Fatalf("%s through the API: got %v, want a problem", what, err)
	}
	return pe
}

// e2eLineOf is the 1-based number of the first line of text containing s.
func e2eLineOf(text, s string) int {
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	return 0
}

// e2eAppendCustomSection appends a Wasm custom section (id 0, its size as
// unsigned LEB128, then the name, length-prefixed, and the payload) to a
// module: other bytes, the same code.
func e2eAppendCustomSection(wasm []byte, name string, payload []byte) []byte {
	body := e2eULEB128(nil, uint64(len(name)))
	body = append(body, name...)
	body = append(body, payload...)
	out := append([]byte(nil), wasm...)
	out = append(out, 0)
	out = e2eULEB128(out, uint64(len(body)))
	return append(out, body...)
}

// e2eULEB128 appends v as unsigned LEB128: seven bits a byte, low
// first, the high bit set on every byte but the last.
func e2eULEB128(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// TestE2ECustomSection checks the encoding the end-to-end test's second
// module version relies on against hand-assembled bytes.
func TestE2ECustomSection(t *testing.T) {
	for _, tc := range []struct {
		v    uint64
		want []byte
	}{
		{0, []byte{0x00}}, {127, []byte{0x7f}}, {128, []byte{0x80, 0x01}}, {300, []byte{0xac, 0x02}}, {16384, []byte{0x80, 0x80, 0x01}},
	} {
		if got := e2eULEB128(nil, tc.v); string(got) != string(tc.want) {
			t.Errorf("ULEB128(%d) = % x, want % x", tc.v, got, tc.want)
		}
	}
	got := e2eAppendCustomSection([]byte{0x00, 'a', 's', 'm'}, "n", []byte("xy"))
	want := []byte{0x00, 'a', 's', 'm', 0x00, 0x04, 0x01, 'n', 'x', 'y'}
	if string(got) != string(want) {
		t.Errorf("custom section: % x, want % x", got, want)
	}
}

// TestE2EChromiumMissing checks what the end-to-end test says on a machine
// without a browser: which package to install, and how to skip instead.
func TestE2EChromiumMissing(t *testing.T) {
	_, err := locateChromium(filepath.Join(t.TempDir(), "chromium"), "weir-no-such-browser")
	if err == nil {
		t.Fatal("found a browser that does not exist")
	}
	for _, want := range []string{"apt-get install chromium", "WEIR_SKIP_BROWSER=1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error %q does not say %q", err, want)
		}
	}
}
