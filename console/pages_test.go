package console_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/weirstream/weir/platform"
	"github.com/weirstream/weir/platform/client"
	"github.com/weirstream/weir/platform/client/clienttest"
	"github.com/weirstream/weir/platform/jobs"
	"github.com/weirstream/weir/tenants"
)

// Handler-level tests of the modules, deploy, jobs list, tenant,
// savepoints and admin pages against a real platform: a browser-like
// client (cookie jar, no redirects followed) signs in with a key, reads
// pages, sends every form with the CSRF token scraped from the page, and
// the effect is checked through the REST API.

// pagesWait bounds every wait of these tests.
const pagesWait = 60 * time.Second

var (
	pagesWasmOnce sync.Once
	pagesWasm     []byte
	pagesWasmErr  error
)

// pagesWordcount is the wordcount example module, built once.
func pagesWordcount(t *testing.T) []byte {
	t.Helper()
	pagesWasmOnce.Do(func() {
		m, err := clienttest.Modules(map[string]clienttest.Source{"wordcount": {Pkg: "wordcount"}})
		pagesWasm, pagesWasmErr = m["wordcount"], err
	})
	if pagesWasmErr != nil {
		t.Fatal(pagesWasmErr)
	}
	return pagesWasm
}

// pagesLiveSpec is a job over the wordcount module that keeps running:
// generated sentences, split, counted, printed.
const pagesLiveSpec = `name: live
parallelism: 1
modules:
  wc: wordcount@1
nodes:
  - {id: gen, source: datagen, config: {rate: 50, value: {kind: oneOf, values: ["a b c", "b c d"]}}}
  - {id: split, module: wc, operator: split, inputs: [{from: gen, partition: rebalance}]}
  - {id: count, module: wc, operator: count, inputs: [{from: split, partition: key}]}
  - {id: out, sink: blackhole, inputs: [{from: count, partition: rebalance}]}
`

// pagesFixture is a platform with tenant "acme", its owner and viewer
// keys, and API clients.
type pagesFixture struct {
	t      *testing.T
	srv    *clienttest.Server
	admin  *client.Client
	owner  *client.Client
	tokens map[tenants.Role]string // the tenant's keys; RoleAdmin: the admin key
}

func newPagesFixture(t *testing.T) *pagesFixture {
	t.Helper()
	srv := clienttest.Start(t, platform.Options{})
	ctx := context.Background()
	f := &pagesFixture{t: t, srv: srv, admin: client.New(srv.URL, srv.AdminToken, nil),
		tokens: map[tenants.Role]string{tenants.RoleAdmin: srv.AdminToken}}
	if _, err := f.admin.CreateTenant(ctx, "acme", nil); err != nil {
		t.Fatal(err)
	}
	for _, role := range []tenants.Role{tenants.RoleOwner, tenants.RoleViewer} {
		k, err := f.admin.CreateKey(ctx, "acme", string(role)+" key", role, nil)
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[role] = k.Token
	}
	f.owner = client.New(srv.URL, f.tokens[tenants.RoleOwner], nil)
	f.owner.PollInterval = 20 * time.Millisecond
	return f
}

// upload puts the wordcount module into acme through the API.
func (f *pagesFixture) upload() {
	f.t.Helper()
	if _, _, err := f.owner.UploadModule(context.Background(), "wordcount", pagesWordcount(f.t)); err != nil {
		f.t.Fatal(err)
	}
}

// deployLive starts pagesLiveSpec (after upload) and waits until it runs.
func (f *pagesFixture) deployLive() jobs.Job {
	f.t.Helper()
	j, err := f.owner.Deploy(context.Background(), []byte(pagesLiveSpec), "", false)
	if err != nil {
		f.t.Fatal(err)
	}
	return j
}

// signIn is a browser signed in as role.
func (f *pagesFixture) signIn(role tenants.Role) *pagesUser {
	f.t.Helper()
	u := newPagesUser(f.t, f.srv.URL)
	r := u.post("/signin", url.Values{"token": {f.tokens[role]}})
	if r.Code != http.StatusSeeOther {
		f.t.Fatalf("signing in as %s: %d\n%s", role, r.Code, r.Body)
	}
	return u
}

// pagesUser is a browser: a cookie jar, redirects not followed.
type pagesUser struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newPagesUser(t *testing.T, base string) *pagesUser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &pagesUser{t: t, base: base, hc: &http.Client{Jar: jar, Timeout: pagesWait,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// pageResp is an answer with its parsed HTML.
type pageResp struct {
	t      *testing.T
	Method string
	Path   string
	Code   int
	Header http.Header
	Body   string
	doc    *html.Node
}

func (u *pagesUser) send(method, path, contentType string, body io.Reader) *pageResp {
	u.t.Helper()
	req, err := http.NewRequest(method, u.base+path, body)
	if err != nil {
		u.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := u.hc.Do(req)
	if err != nil {
		u.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		u.t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return &pageResp{t: u.t, Method: method, Path: path, Code: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

func (u *pagesUser) get(path string) *pageResp { u.t.Helper(); return u.send("GET", path, "", nil) }

func (u *pagesUser) post(path string, form url.Values) *pageResp {
	u.t.Helper()
	return u.send("POST", path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
}

// postFile sends a multipart form with fields and one file field
// "module".
func (u *pagesUser) postFile(path string, fields url.Values, file string, data []byte) *pageResp {
	u.t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, vs := range fields {
		for _, v := range vs {
			if err := w.WriteField(k, v); err != nil {
				u.t.Fatal(err)
			}
		}
	}
	fw, err := w.CreateFormFile("module", file)
	if err != nil {
		u.t.Fatal(err)
	}
	fw.Write(data)
	if err := w.Close(); err != nil {
		u.t.Fatal(err)
	}
	return u.send("POST", path, w.FormDataContentType(), &buf)
}

// page GETs path and wants a 200.
func (u *pagesUser) page(path string) *pageResp {
	u.t.Helper()
	r := u.get(path)
	r.want(http.StatusOK)
	return r
}

// csrf is the form token of the page at path.
func (u *pagesUser) csrf(path string) string {
	u.t.Helper()
	r := u.page(path)
	for _, in := range r.all(func(n *html.Node) bool { return n.Data == "input" && pageAttr(n, "name") == "csrf" }) {
		if v := pageAttr(in, "value"); v != "" {
			return v
		}
	}
	u.t.Fatalf("GET %s: no csrf input", path)
	return ""
}

// follow GETs a redirect's target.
func (u *pagesUser) follow(r *pageResp) *pageResp {
	u.t.Helper()
	r.want(http.StatusSeeOther)
	return u.page(r.Location())
}

func (r *pageResp) want(code int) *pageResp {
	r.t.Helper()
	if r.Code != code {
		r.t.Fatalf("%s %s: %d, want %d\n%s", r.Method, r.Path, r.Code, code, r.Text())
	}
	return r
}

// Location is a redirect's target, relative to the site.
func (r *pageResp) Location() string { return r.Header.Get("Location") }

func (r *pageResp) Doc() *html.Node {
	r.t.Helper()
	if r.doc == nil {
		d, err := html.Parse(strings.NewReader(r.Body))
		if err != nil {
			r.t.Fatalf("%s %s: the page is not HTML: %v", r.Method, r.Path, err)
		}
		r.doc = d
	}
	return r.doc
}

// all returns the elements for which match holds, in document order.
func (r *pageResp) all(match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(r.Doc())
	return out
}

// byID is the element with id, or nil.
func (r *pageResp) byID(id string) *html.Node {
	if els := r.all(func(n *html.Node) bool { return pageAttr(n, "id") == id }); len(els) > 0 {
		return els[0]
	}
	return nil
}

// Text is the page's text with white space collapsed.
func (r *pageResp) Text() string {
	if r.Code == 0 || !strings.Contains(r.Header.Get("Content-Type"), "html") {
		return r.Body
	}
	return pageText(r.Doc())
}

// has fails the test unless the page's text contains every want.
func (r *pageResp) has(want ...string) *pageResp {
	r.t.Helper()
	txt := r.Text()
	for _, w := range want {
		if !strings.Contains(txt, w) {
			r.t.Fatalf("%s %s: the page lacks %q:\n%s", r.Method, r.Path, w, txt)
		}
	}
	return r
}

// postForms are the actions of the page's POST forms, but sign-out's.
func (r *pageResp) postForms() []string {
	var out []string
	for _, f := range r.all(func(n *html.Node) bool { return n.Data == "form" && strings.EqualFold(pageAttr(n, "method"), "post") }) {
		if a := pageAttr(f, "action"); a != "/signout" {
			out = append(out, a)
		}
	}
	return out
}

// errorBox is the text of the page's error box ("" : none).
func (r *pageResp) errorBox() string {
	if n := r.byID("problem"); n != nil {
		return pageText(n)
	}
	return ""
}

// labelled fails unless every input, select and textarea of the page but
// hidden ones has a label (for=id) or aria-label.
func (r *pageResp) labelled() {
	r.t.Helper()
	labels := map[string]bool{}
	for _, l := range r.all(func(n *html.Node) bool { return n.Data == "label" }) {
		labels[pageAttr(l, "for")] = true
	}
	for _, in := range r.all(func(n *html.Node) bool { return n.Data == "input" || n.Data == "select" || n.Data == "textarea" }) {
		if pageAttr(in, "type") == "hidden" || pageAttr(in, "aria-label") != "" {
			continue
		}
		if id := pageAttr(in, "id"); id == "" || !labels[id] {
			r.t.Errorf("%s: the %s %q has no label", r.Path, in.Data, pageAttr(in, "name"))
		}
	}
}

func pageAttr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func pageHasClass(n *html.Node, class string) bool {
	for _, c := range strings.Fields(pageAttr(n, "class")) {
		if c == class {
			return true
		}
	}
	return false
}

func pageText(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
			b.WriteByte(' ')
		}
		if n.Type == html.ElementNode && (n.Data == "script" || n.Data == "style") {
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

// pageNextElement is the element after n among its siblings.
func pageNextElement(n *html.Node) *html.Node {
	for s := n.NextSibling; s != nil; s = s.NextSibling {
		if s.Type == html.ElementNode {
			return s
		}
	}
	return nil
}

// pageProblem wants err to be an API problem with code.
func pageProblem(t *testing.T, err error, code string) *client.ProblemError {
	t.Helper()
	var pe *client.ProblemError
	if !errors.As(err, &pe) || pe.Code() != code {
		t.Fatalf("got %v, want a %s problem", err, code)
	}
	return pe
}

// pageWaitFor polls cond until it holds.
func pageWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(pagesWait)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, pagesWait)
		}
		<-tick.C
	}
}

// TestPagesSignedOut: every page sends a signed-out browser to the
// sign-in page and back after it.
func TestPagesSignedOut(t *testing.T) {
	t.Parallel()
	f := newPagesFixture(t)
	u := newPagesUser(t, f.srv.URL)
	for _, path := range []string{"/modules", "/modules/wordcount", "/deploy?module=wordcount", "/jobs", "/tenant", "/savepoints", "/admin", "/admin/tenants/acme"} {
		r := u.get(path).want(http.StatusSeeOther)
		if want := "/signin?next=" + url.QueryEscape(path); r.Location() != want {
			t.Errorf("GET %s signed out: to %q, want %q", path, r.Location(), want)
		}
	}
	// A form sent signed out changes nothing and goes to sign in.
	if r := u.post("/admin/tenants", url.Values{"id": {"sneaky"}}).want(http.StatusSeeOther); !strings.HasPrefix(r.Location(), "/signin") {
		t.Errorf("signed-out POST: to %q", r.Location())
	}
	if _, err := f.admin.Tenant(context.Background(), "sneaky"); client.ProblemCode(err) != "not-found" {
		t.Errorf("a signed-out form created a tenant: %v", err)
	}
	r := u.post("/signin", url.Values{"token": {f.tokens[tenants.RoleOwner]}, "next": {"/savepoints"}}).want(http.StatusSeeOther)
	if r.Location() != "/savepoints" {
		t.Fatalf("after sign-in: to %q, want /savepoints", r.Location())
	}
	u.page("/savepoints").has("Savepoints")
}

// TestPagesByRole: every page for an owner, a viewer and an admin: what
// it may see renders with the write forms its role may use, and only
// those; what it may not see is the API's 403 on the error page.
func TestPagesByRole(t *testing.T) {
	t.Parallel()
	f := newPagesFixture(t)
	f.upload()
	pages := []string{"/modules", "/modules/wordcount", "/deploy", "/deploy?module=wordcount&version=1", "/jobs", "/tenant", "/savepoints", "/admin", "/admin/tenants/acme"}
	type want struct {
		code  int
		forms []string // POST forms but sign-out; nil: none
	}
	tenantOnly := want{code: http.StatusForbidden}
	cases := map[tenants.Role]map[string]want{
		tenants.RoleOwner: {
			"/modules":                           {200, []string{"/modules"}},
			"/modules/wordcount":                 {200, []string{"/modules/wordcount/versions/1/delete"}},
			"/deploy":                            {200, []string{"/deploy"}},
			"/deploy?module=wordcount&version=1": {200, []string{"/deploy"}},
			"/jobs":                              {200, nil},
			"/tenant":                            {200, []string{"/tenant/keys/*/revoke", "/tenant/keys/*/revoke", "/tenant/keys"}},
			"/savepoints":                        {200, nil},
			"/admin":                             {code: http.StatusForbidden},
			"/admin/tenants/acme":                {code: http.StatusForbidden},
		},
		tenants.RoleViewer: {
			"/modules": {200, nil}, "/modules/wordcount": {200, nil}, "/deploy": {200, nil}, "/deploy?module=wordcount&version=1": {200, nil},
			"/jobs": {200, nil}, "/tenant": {200, nil}, "/savepoints": {200, nil},
			"/admin": {code: http.StatusForbidden}, "/admin/tenants/acme": {code: http.StatusForbidden},
		},
		tenants.RoleAdmin: {
			"/modules": tenantOnly, "/modules/wordcount": tenantOnly, "/deploy": tenantOnly, "/deploy?module=wordcount&version=1": tenantOnly,
			"/jobs": tenantOnly, "/tenant": tenantOnly, "/savepoints": tenantOnly,
			"/admin": {200, []string{"/admin/tenants"}},
			"/admin/tenants/acme": {200, []string{"/admin/tenants/acme/quotas", "/admin/tenants/acme/keys/*/revoke", "/admin/tenants/acme/keys/*/revoke",
				"/admin/tenants/acme/keys", "/admin/tenants/acme/delete"}},
		},
	}
	ids := map[string]bool{}
	keys, err := f.admin.Keys(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		ids[k.ID] = true
	}
	for role, byPage := range cases {
		u := f.signIn(role)
		for _, path := range pages {
			w := byPage[path]
			r := u.get(path).want(w.code)
			if w.code != 200 {
				// The error page shows the API's problem.
				if !strings.Contains(r.Text(), "403 Forbidden") || !strings.Contains(r.Text(), "403 ") {
					t.Errorf("%s GET %s: the error page does not say 403:\n%s", role, path, r.Text())
				}
				continue
			}
			r.labelled()
			var got []string
			for _, a := range r.postForms() {
				// Key ids vary: name them *.
				for id := range ids {
					a = strings.Replace(a, "/"+id+"/", "/*/", 1)
				}
				got = append(got, a)
			}
			if strings.Join(got, " ") != strings.Join(w.forms, " ") {
				t.Errorf("%s GET %s: POST forms %q, want %q", role, path, got, w.forms)
			}
			if len(r.all(func(n *html.Node) bool { return n.Data == "h1" })) != 1 {
				t.Errorf("%s GET %s: not exactly one h1", role, path)
			}
			for _, table := range r.all(func(n *html.Node) bool { return n.Data == "table" }) {
				if p := table.Parent; p == nil || !pageHasClass(p, "table-wrap") {
					t.Errorf("%s GET %s: a table outside .table-wrap", role, path)
				}
			}
		}
	}
	// The error page of a refused page names the API's reason.
	f.signIn(tenants.RoleViewer).get("/admin").want(http.StatusForbidden).has("cannot manage tenants")
	f.signIn(tenants.RoleAdmin).get("/modules").want(http.StatusForbidden).has("need a key of their tenant")
}

// TestModulesPages: upload through the form (the validation result, the
// same bytes again, bad bytes, no CSRF token, a viewer), and deleting a
// version (in use, confirmed, the last one).
func TestModulesPages(t *testing.T) {
	t.Parallel()
	f := newPagesFixture(t)
	ctx := context.Background()
	wasm := pagesWordcount(t)
	u := f.signIn(tenants.RoleOwner)

	r := u.page("/modules").has("No modules yet", "Upload a module")
	file := r.byID("module-file")
	if file == nil || pageAttr(file, "accept") != ".wasm,application/wasm" || pageAttr(file, "name") != "module" {
		t.Fatalf("the upload form's file input: %+v", file)
	}
	if form := r.byID("upload-form"); form == nil || pageAttr(form, "enctype") != "multipart/form-data" {
		t.Fatal("the upload form is not multipart")
	}
	modules := func() []string {
		t.Helper()
		ms, err := f.owner.Modules(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range ms {
			out = append(out, fmt.Sprintf("%s@%d", m.Name, m.Latest.Version))
		}
		return out
	}

	// Without the CSRF token nothing is stored.
	u.postFile("/modules", url.Values{"name": {"wordcount"}}, "wordcount.wasm", wasm).want(http.StatusForbidden).has("security token")
	if ms := modules(); len(ms) != 0 {
		t.Fatalf("a form without a CSRF token stored %v", ms)
	}

	// Bad bytes: the API's invalid-module detail in the page's error box,
	// nothing stored.
	junk := []byte("this is not WebAssembly")
	_, _, apiErr := f.owner.UploadModule(ctx, "junk", junk)
	pe := pageProblem(t, apiErr, "invalid-module")
	tok := u.csrf("/modules")
	r = u.postFile("/modules", url.Values{"csrf": {tok}, "name": {"junk"}}, "junk.wasm", junk).want(http.StatusBadRequest)
	if box := r.errorBox(); !strings.Contains(box, pe.Detail) || pe.Detail == "" {
		t.Fatalf("bad upload: error box %q lacks the API's detail %q", box, pe.Detail)
	}
	if v := pageAttr(r.byID("module-name"), "value"); v != "junk" {
		t.Errorf("bad upload: the name field lost its value: %q", v)
	}
	// No file at all.
	if box := u.post("/modules", url.Values{"csrf": {tok}, "name": {"x"}}).want(http.StatusBadRequest).errorBox(); !strings.Contains(box, "Choose a Wasm module file") {
		t.Errorf("no file: error box %q", box)
	}
	if ms := modules(); len(ms) != 0 {
		t.Fatalf("bad uploads stored %v", ms)
	}

	// The real module, named after its file: the validation result.
	sum := sha256.Sum256(wasm)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	r = u.postFile("/modules", url.Values{"csrf": {tok}, "name": {""}}, "WordCount.wasm", wasm).want(http.StatusSeeOther)
	if loc := r.Location(); !strings.HasPrefix(loc, "/modules/wordcount?") || !strings.Contains(loc, "uploaded=1") {
		t.Fatalf("upload: redirected to %q", loc)
	}
	r = u.follow(r).has("Uploaded wordcount version 1.", "Uploaded: wordcount version 1", digest, fmt.Sprintf("(%d bytes)", len(wasm)), "ABI version 1")
	ops := pageText(r.all(func(n *html.Node) bool { return pageHasClass(n, "operators") })[0])
	if ops != "split not keyed count keyed" {
		t.Errorf("operators found: %q, want split (not keyed) and count (keyed)", ops)
	}
	if ms := modules(); strings.Join(ms, " ") != "wordcount@1" {
		t.Fatalf("after the upload the API lists %v", ms)
	}
	v, err := f.owner.ModuleVersion(ctx, "wordcount", "1")
	if err != nil || v.Digest != digest {
		t.Fatalf("the stored version: %+v, %v", v, err)
	}
	// The same bytes again: already uploaded (the API's 200), no new version.
	r = u.follow(u.postFile("/modules", url.Values{"csrf": {tok}, "name": {"wordcount"}}, "x.wasm", wasm))
	r.has("Already uploaded: wordcount version 1", "nothing new was stored")
	if ms := modules(); strings.Join(ms, " ") != "wordcount@1" {
		t.Fatalf("the same bytes again made %v", ms)
	}
	// The list: latest version, short digest, size, operators.
	r = u.page("/modules").has("wordcount", digest[:19], "split, count keyed")
	if link := r.all(func(n *html.Node) bool { return n.Data == "a" && pageAttr(n, "href") == "/modules/wordcount" }); len(link) != 1 {
		t.Error("the list does not link the module's page")
	}

	// A viewer sees the versions without forms and may not upload.
	viewer := f.signIn(tenants.RoleViewer)
	vtok := viewer.csrf("/modules")
	viewer.postFile("/modules", url.Values{"csrf": {vtok}, "name": {"other"}}, "other.wasm", wasm).want(http.StatusForbidden).has("role viewer cannot do this")
	viewer.post("/modules/wordcount/versions/1/delete", url.Values{"csrf": {vtok}, "confirm": {"yes"}}).want(http.StatusForbidden)
	if ms := modules(); strings.Join(ms, " ") != "wordcount@1" {
		t.Fatalf("a viewer's forms changed the modules: %v", ms)
	}

	// Deleting a version a job uses: the API's 409 on the module's page.
	j := f.deployLive()
	del := "/modules/wordcount/versions/1/delete"
	r = u.post(del, url.Values{"csrf": {tok}}).want(http.StatusOK) // not confirmed: the question
	if !strings.Contains(r.Text(), "Delete wordcount version 1?") || len(r.all(func(n *html.Node) bool {
		return n.Data == "input" && pageAttr(n, "name") == "confirm" && pageAttr(n, "value") == "yes"
	})) != 1 {
		t.Fatalf("the confirmation page:\n%s", r.Text())
	}
	if ms := modules(); len(ms) != 1 {
		t.Fatal("an unconfirmed delete deleted")
	}
	err = f.owner.DeleteModuleVersion(ctx, "wordcount", "1")
	inUse := pageProblem(t, err, "module-in-use")
	r = u.post(del, url.Values{"csrf": {tok}, "confirm": {"yes"}}).want(http.StatusConflict)
	if box := r.errorBox(); !strings.Contains(box, inUse.Detail) {
		t.Fatalf("in use: error box %q lacks %q", box, inUse.Detail)
	}
	r.has("Versions") // still the module's page
	if _, err := f.owner.Cancel(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	r = u.post(del, url.Values{"csrf": {tok}, "confirm": {"yes"}}).want(http.StatusSeeOther)
	if !strings.HasPrefix(r.Location(), "/modules?flash=") {
		t.Fatalf("deleting the last version: to %q", r.Location())
	}
	u.follow(r).has("Deleted wordcount version 1. It was the name's last version.", "No modules yet")
	if ms := modules(); len(ms) != 0 {
		t.Fatalf("after the delete the API lists %v", ms)
	}
}

// TestDeployPage: the starter spec, a deploy, an invalid spec with each
// error under its line, a quota problem, no CSRF token, a viewer.
func TestDeployPage(t *testing.T) {
	t.Parallel()
	f := newPagesFixture(t)
	ctx := context.Background()
	f.upload()
	u := f.signIn(tenants.RoleOwner)

	r := u.page("/deploy")
	if opts := r.all(func(n *html.Node) bool { return n.Data == "option" && pageAttr(n, "value") == "wordcount" }); len(opts) != 1 {
		t.Fatal("the module list lacks wordcount")
	}
	if spec := r.byID("spec"); spec == nil || strings.TrimSpace(pageText(spec)) != "" {
		t.Fatal("the editor is missing, or not empty before a pick")
	}
	// Picking a version writes a starter spec into the editor.
	r = u.page("/deploy?module=wordcount&version=1").has("Picked wordcount@1", "split", "count keyed")
	spec := strings.TrimPrefix(r.byID("spec").FirstChild.Data, "\n")
	for _, want := range []string{"wordcount: wordcount@1", "operator: split", "operator: count", "partition: key", "source: datagen", "sink: print"} {
		if !strings.Contains(spec, want) {
			t.Fatalf("the starter spec lacks %q:\n%s", want, spec)
		}
	}
	if sel := r.all(func(n *html.Node) bool { return n.Data == "option" && pageAttr(n, "value") == "1" }); len(sel) != 1 || !pageHasAttr(sel[0], "selected") {
		t.Error("version 1 is not the selected version")
	}
	// "latest" picks the newest.
	if l := strings.TrimPrefix(u.page("/deploy?module=wordcount").byID("spec").FirstChild.Data, "\n"); l != spec {
		t.Errorf("the latest version's starter spec differs:\n%s", l)
	}
	u.get("/deploy?module=wordcount&version=7").want(http.StatusNotFound)

	tok := u.csrf("/deploy")
	jobCount := func() int {
		t.Helper()
		js, err := f.owner.Jobs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(js)
	}

	// Without a CSRF token, nothing is deployed.
	u.post("/deploy", url.Values{"spec": {spec}}).want(http.StatusForbidden)
	if n := jobCount(); n != 0 {
		t.Fatalf("%d jobs after a form without a CSRF token", n)
	}

	// The deploy form carries the picked module version, so a failed
	// deploy shows it picked again.
	if picked := u.get("/deploy?module=wordcount&version=1"); !strings.Contains(picked.Body, `<input type="hidden" name="module" value="wordcount"><input type="hidden" name="version" value="1">`) {
		t.Errorf("the deploy form does not carry the picked module version")
	}

	// An invalid spec: back with the errors, each right under the line it
	// is about, linked from the summary, and the spec kept in the editor.
	// The platform's rules are checked first, the engine's after them.
	for _, tc := range []struct {
		name, from, to string
		field, line    string // the field the API names, a text of its line
	}{
		{"platform", "checkpoints: {interval: 10s}", "checkpoints: {interval: 10s}\nrestart: {strategy: fixed, delay: 100ms}", "restart.delay", "restart: {"},
		{"engine", "partition: key", "partition: hash", "nodes[2] (count).inputs[0].partition", "partition: hash"},
		{"module ref", "wordcount: wordcount@1", "wordcount: wordcount@9", "modules.wordcount.ref", "wordcount: wordcount@9"},
	} {
		bad := strings.Replace(spec, tc.from, tc.to, 1)
		_, apiErr := f.owner.Deploy(ctx, []byte(bad), "", false)
		pe := pageProblem(t, apiErr, "invalid-job-spec")
		if len(pe.Errors) != 1 || pe.Errors[0].Field != tc.field {
			t.Fatalf("%s: the API named %v, want %s", tc.name, pe.Errors, tc.field)
		}
		// Browsers send a textarea's lines with CRLF.
		r = u.post("/deploy", url.Values{"csrf": {tok}, "spec": {strings.ReplaceAll(bad, "\n", "\r\n")}, "module": {"wordcount"}, "version": {"1"}}).want(http.StatusBadRequest)
		// The picked module version is still picked.
		if !strings.Contains(r.Body, `<option value="wordcount" selected>`) {
			t.Errorf("%s: after a failed deploy the module picker lost wordcount", tc.name)
		}
		lines := strings.Split(bad, "\n")
		line := 0
		for i, l := range lines {
			if strings.Contains(l, tc.line) {
				line = i + 1
				break
			}
		}
		row := r.byID(fmt.Sprintf("line-%d", line))
		if line == 0 || row == nil || !strings.Contains(pageText(row), strings.TrimSpace(lines[line-1])) {
			t.Fatalf("%s: no row for line %d (%q)", tc.name, line, tc.line)
		}
		next := pageNextElement(row)
		if next == nil || !pageHasClass(next, "spec-error") || !strings.Contains(pageText(next), pe.Errors[0].Problem) || !strings.Contains(pageText(next), tc.field) {
			t.Errorf("%s: the element after line %d is not the error %q at %s: %v", tc.name, line, pe.Errors[0].Problem, tc.field, next)
		}
		if n := r.all(func(n *html.Node) bool { return pageHasClass(n, "spec-error") }); len(n) != 1 {
			t.Errorf("%s: %d inline errors, want 1", tc.name, len(n))
		}
		if links := r.all(func(n *html.Node) bool { return n.Data == "a" && pageAttr(n, "href") == fmt.Sprintf("#line-%d", line) }); len(links) != 1 {
			t.Errorf("%s: the summary does not link line %d", tc.name, line)
		}
		if got := strings.TrimPrefix(r.byID("spec").FirstChild.Data, "\n"); got != bad {
			t.Errorf("%s: the editor does not hold the invalid spec:\n%s", tc.name, got)
		}
	}
	if n := jobCount(); n != 0 {
		t.Fatalf("invalid specs made %d jobs", n)
	}

	// A quota problem: the error box, the spec kept.
	big := strings.Replace(spec, "parallelism: 1\nmodules:", "parallelism: 9\nmodules:", 1)
	_, apiErr := f.owner.Deploy(ctx, []byte(big), "", false)
	qe := pageProblem(t, apiErr, "quota-exceeded")
	r = u.post("/deploy", url.Values{"csrf": {tok}, "spec": {big}}).want(qe.Status)
	if box := r.errorBox(); !strings.Contains(box, qe.Detail) {
		t.Errorf("quota: error box %q lacks %q", box, qe.Detail)
	}
	if !strings.Contains(r.byID("spec").FirstChild.Data, "parallelism: 9") {
		t.Error("quota: the editor lost the spec")
	}

	// A viewer may not deploy.
	viewer := f.signIn(tenants.RoleViewer)
	viewer.post("/deploy", url.Values{"csrf": {viewer.csrf("/deploy")}, "spec": {spec}}).want(http.StatusForbidden)
	if n := jobCount(); n != 0 {
		t.Fatalf("%d jobs after a viewer's deploy", n)
	}

	// The starter spec deploys: to the job's page.
	r = u.post("/deploy", url.Values{"csrf": {tok}, "spec": {spec}}).want(http.StatusSeeOther)
	id, ok := strings.CutPrefix(r.Location(), "/jobs/")
	id, _, _ = strings.Cut(id, "?")
	if !ok || id == "" || !strings.Contains(r.Location(), "flash=") {
		t.Fatalf("deploy: to %q", r.Location())
	}
	j, err := f.owner.Job(ctx, id)
	if err != nil || j.Name != "wordcount" || j.Modules["wordcount"] != "wordcount@1" {
		t.Fatalf("the deployed job: %+v, %v", j.Job, err)
	}
	if _, err := f.owner.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
}

func pageHasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

// TestJobsAndSavepointsPages: the empty jobs list, a running job with its
// state and rising throughput, its savepoint listed and deleted.
func TestJobsAndSavepointsPages(t *testing.T) {
	t.Parallel()
	f := newPagesFixture(t)
	ctx := context.Background()
	u := f.signIn(tenants.RoleOwner)
	r := u.page("/jobs").has("No jobs yet")
	if len(r.all(func(n *html.Node) bool { return n.Data == "a" && pageAttr(n, "href") == "/deploy" })) < 2 { // nav and empty state
		t.Error("the empty jobs list does not link /deploy")
	}
	f.upload()
	j := f.deployLive()

	// The job's row: link, state, modules, slots; records/s rises above 0
	// (the rate is measured between two looks at the job).
	var row *html.Node
	pageWaitFor(t, "records/s above 0 on the jobs page", func() bool {
		r := u.page("/jobs")
		rows := r.all(func(n *html.Node) bool { return n.Data == "tr" && strings.Contains(pageText(n), j.ID) })
		if len(rows) != 1 {
			t.Fatalf("the jobs list has %d rows for %s:\n%s", len(rows), j.ID, r.Text())
		}
		row = rows[0]
		var cells []string
		for c := row.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && c.Data == "td" {
				cells = append(cells, pageText(c))
			}
		}
		// state, modules, slots, records/s, restarts, created
		if len(cells) != 6 || !strings.HasSuffix(cells[3], "/s") {
			t.Fatalf("the job's row: cells %q", cells)
		}
		return cells[3] != "0/s"
	})
	txt := pageText(row)
	for _, want := range []string{"live", "running", "wc: wordcount@1"} {
		if !strings.Contains(txt, want) {
			t.Errorf("the job's row %q lacks %q", txt, want)
		}
	}
	var link, badge bool
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Data == "a" && pageAttr(n, "href") == "/jobs/"+j.ID {
			link = true
		}
		if pageHasClass(n, "state-running") {
			badge = true
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(row)
	if !link || !badge {
		t.Errorf("the job's row: link %v, running badge %v", link, badge)
	}

	// A savepoint is listed with its job; a viewer has no delete button.
	op, err := f.owner.Savepoint(ctx, j.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, pagesWait)
	defer cancel()
	if _, err := f.owner.WaitOperation(wctx, op.ID); err != nil {
		t.Fatal(err)
	}
	sps, err := f.owner.Savepoints(ctx, "")
	if err != nil || len(sps) != 1 {
		t.Fatalf("savepoints: %v, %v", sps, err)
	}
	sp := sps[0]
	r = u.page("/savepoints").has(sp.ID, fmt.Sprint(sp.Checkpoint))
	if len(r.all(func(n *html.Node) bool { return n.Data == "a" && pageAttr(n, "href") == "/jobs/"+j.ID })) != 1 {
		t.Error("the savepoint does not link its job")
	}
	if forms := f.signIn(tenants.RoleViewer).page("/savepoints").postForms(); len(forms) != 0 {
		t.Errorf("a viewer's savepoints page has forms %v", forms)
	}
	// "Deploy from it": the deploy page preselects the savepoint, keeps it
	// through the module pick, and the job starts from it.
	r = u.page("/deploy?from_savepoint=" + sp.ID)
	if o := r.all(func(n *html.Node) bool { return n.Data == "option" && pageAttr(n, "value") == sp.ID }); len(o) != 1 || !pageHasAttr(o[0], "selected") {
		t.Fatal("the deploy page does not preselect the savepoint")
	}
	if h := r.all(func(n *html.Node) bool {
		return pageAttr(n, "name") == "from_savepoint" && pageAttr(n, "type") == "hidden"
	}); len(h) != 1 || pageAttr(h[0], "value") != sp.ID {
		t.Error("the module pick does not keep the savepoint")
	}
	r = u.post("/deploy", url.Values{"csrf": {u.csrf("/deploy")}, "spec": {strings.Replace(pagesLiveSpec, "name: live", "name: again", 1)}, "from_savepoint": {sp.ID}}).want(http.StatusSeeOther)
	again, _, _ := strings.Cut(strings.TrimPrefix(r.Location(), "/jobs/"), "?")
	if d, err := f.owner.Job(ctx, again); err != nil || d.Savepoint != sp.ID {
		t.Fatalf("the job deployed from the savepoint: %+v, %v", d.Job, err)
	}
	if _, err := f.owner.Cancel(ctx, again); err != nil {
		t.Fatal(err)
	}

	del := "/savepoints/" + sp.ID + "/delete"
	tok := u.csrf("/savepoints")
	u.post(del, url.Values{"csrf": {tok}}).want(http.StatusOK).has("Delete savepoint " + sp.ID + " and its files?")
	u.post(del, url.Values{"confirm": {"yes"}}).want(http.StatusForbidden)
	if sps, _ := f.owner.Savepoints(ctx, ""); len(sps) != 1 {
		t.Fatal("an unconfirmed or token-less delete deleted the savepoint")
	}
	u.follow(u.post(del, url.Values{"csrf": {tok}, "confirm": {"yes"}})).has("Deleted savepoint "+sp.ID+".", "No savepoints")
	if _, err := f.owner.GetSavepoint(ctx, sp.ID); client.ProblemCode(err) != "not-found" {
		t.Fatalf("the savepoint is still there: %v", err)
	}
	// Deleting it again: the API's 404 in the page's error box.
	if box := u.post(del, url.Values{"csrf": {tok}, "confirm": {"yes"}}).want(http.StatusNotFound).errorBox(); box == "" {
		t.Error("deleting a deleted savepoint shows no error")
	}
	if _, err := f.owner.Cancel(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
}

// TestTenantPage: quotas next to usage, an owner's keys: create (the token
// shown once), a bad expiry at its field, revoke; a viewer's page has no
// keys and its forms are refused.
func TestTenantPage(t *testing.T) {
	t.Parallel()
	f := newPagesFixture(t)
	ctx := context.Background()
	u := f.signIn(tenants.RoleOwner)
	q, err := f.owner.Quotas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := u.page("/tenant").has("Tenant acme", "Quotas and usage", "API keys", "owner key", "this session")
	for field, want := range map[string]string{
		"slots":        fmt.Sprintf("%d %d", q.Quotas.Slots, q.Usage.Slots),
		"savepoints":   fmt.Sprintf("%d %d", q.Quotas.Savepoints, q.Usage.Savepoints),
		"call_timeout": q.Quotas.CallTimeout.String(),
	} {
		row := r.byID("quota-" + field)
		if row == nil || !strings.Contains(pageText(row), want) {
			t.Errorf("quota %s: row %v lacks %q", field, row, want)
		}
	}
	keyIDs := func() map[string]tenants.Key {
		t.Helper()
		ks, err := f.owner.Keys(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]tenants.Key{}
		for _, k := range ks {
			out[k.Name] = k
		}
		return out
	}
	tok := u.csrf("/tenant")

	// Without the token, or with a bad expiry: no key.
	u.post("/tenant/keys", url.Values{"name": {"ci"}, "role": {"viewer"}}).want(http.StatusForbidden)
	r = u.post("/tenant/keys", url.Values{"csrf": {tok}, "name": {"ci"}, "role": {"viewer"}, "expires_at": {"tomorrow"}}).want(http.StatusBadRequest)
	if e := r.byID("key-expires-error"); e == nil || !strings.Contains(pageText(e), `"tomorrow" is not a date`) || pageNextElement(r.byID("key-expires")) != e {
		t.Errorf("a bad expiry is not shown at its field")
	}
	// An expiry in the past: the API's field error, at the field.
	past := time.Now().UTC().Add(-time.Hour).Truncate(time.Minute)
	_, apiErr := f.owner.CreateKey(ctx, "", "ci", tenants.RoleViewer, &past)
	pe := pageProblem(t, apiErr, "invalid-request")
	r = u.post("/tenant/keys", url.Values{"csrf": {tok}, "name": {"ci"}, "role": {"viewer"},
		"expires_at": {past.Format("2006-01-02T15:04")}}).want(pe.Status)
	if e := r.byID("key-expires-error"); e == nil || len(pe.Errors) != 1 || !strings.Contains(pageText(e), pe.Errors[0].Problem) {
		t.Errorf("the API's expiry problem %v is not at the field", pe.Errors)
	}
	if v := pageAttr(r.byID("key-name"), "value"); v != "ci" {
		t.Errorf("the refused form lost the name: %q", v)
	}
	if _, ok := keyIDs()["ci"]; ok {
		t.Fatal("a refused form created a key")
	}

	// Create: the redirect does not carry the token; the next page shows it,
	// once; it works.
	r = u.post("/tenant/keys", url.Values{"csrf": {tok}, "name": {"ci"}, "role": {"viewer"}, "expires_at": {"2099-01-02T03:04"}}).want(http.StatusSeeOther)
	if strings.Contains(r.Location(), "weir_") {
		t.Fatalf("the token travels in the URL: %s", r.Location())
	}
	r = u.follow(r).has("Created key ci", "copy its token now", "only time the token is shown")
	token := pageText(r.byID("new-token"))
	me, err := client.New(f.srv.URL, token, nil).Me(ctx)
	if err != nil || me.Tenant != "acme" || me.Role != tenants.RoleViewer {
		t.Fatalf("the shown token: %+v, %v", me, err)
	}
	k := keyIDs()["ci"]
	if k.ExpiresAt == nil || !k.ExpiresAt.Equal(time.Date(2099, 1, 2, 3, 4, 0, 0, time.UTC)) {
		t.Errorf("the key's expiry: %v", k.ExpiresAt)
	}
	if again := u.page("/tenant"); again.byID("new-token") != nil || strings.Contains(again.Body, token) {
		t.Fatal("the token was shown twice")
	}

	// Revoke: asked first, then done.
	rev := "/tenant/keys/" + k.ID + "/revoke"
	u.post(rev, url.Values{"csrf": {tok}}).want(http.StatusOK).has("Revoke key " + k.ID + "?")
	if keyIDs()["ci"].RevokedAt != nil {
		t.Fatal("an unconfirmed revoke revoked")
	}
	u.follow(u.post(rev, url.Values{"csrf": {tok}, "confirm": {"yes"}})).has("Revoked key " + k.ID + ".")
	if keyIDs()["ci"].RevokedAt == nil {
		t.Fatal("the key was not revoked")
	}
	if row := u.page("/tenant").byID("key-" + k.ID); row == nil || !strings.Contains(pageText(row), "revoked") {
		t.Error("the key's row does not say revoked")
	}

	// A viewer: quotas, no keys, and the key forms are refused.
	viewer := f.signIn(tenants.RoleViewer)
	vr := viewer.page("/tenant").has("Quotas and usage")
	if strings.Contains(vr.Text(), "API keys") || len(vr.postForms()) != 0 {
		t.Error("a viewer sees the keys")
	}
	viewer.post("/tenant/keys", url.Values{"csrf": {viewer.csrf("/tenant")}, "name": {"mine"}, "role": {"owner"}}).want(http.StatusForbidden)
	if _, ok := keyIDs()["mine"]; ok {
		t.Fatal("a viewer created a key")
	}
}

// TestAdminPages: tenants with usage, create one, its quotas form (saved,
// refused at the field by the console and by the API), its keys, delete
// (refused while a job runs).
func TestAdminPages(t *testing.T) {
	t.Parallel()
	f := newPagesFixture(t)
	ctx := context.Background()
	f.upload()
	j := f.deployLive()
	u := f.signIn(tenants.RoleAdmin)

	r := u.page("/admin").has("Tenants", "Create a tenant")
	row := r.byID("tenant-acme")
	if row == nil || !strings.Contains(pageText(row), "1 of 100") { // one module version of 100
		t.Fatalf("acme's row: %v", row)
	}
	tok := u.csrf("/admin")

	// Create: a bad id at its field, then a good one.
	r = u.post("/admin/tenants", url.Values{"csrf": {tok}, "id": {"Bad Id"}}).want(http.StatusBadRequest)
	if e := r.byID("tenant-id-error"); e == nil || !strings.Contains(pageText(e), "Bad Id") {
		t.Errorf("a bad tenant id is not shown at its field:\n%s", r.Text())
	}
	u.post("/admin/tenants", url.Values{"id": {"beta"}}).want(http.StatusForbidden)
	r = u.post("/admin/tenants", url.Values{"csrf": {tok}, "id": {"beta"}}).want(http.StatusSeeOther)
	if !strings.HasPrefix(r.Location(), "/admin/tenants/beta?flash=") {
		t.Fatalf("create: to %q", r.Location())
	}
	r = u.follow(r).has("Created tenant beta")
	if _, err := f.admin.Tenant(ctx, "beta"); err != nil {
		t.Fatal(err)
	}

	// The quotas form: every quota labelled, holding its value.
	form := map[string]string{}
	for _, in := range r.all(func(n *html.Node) bool {
		return n.Data == "input" && strings.HasPrefix(pageAttr(n, "id"), "q-")
	}) {
		form[pageAttr(in, "name")] = pageAttr(in, "value")
	}
	r.labelled()
	def := tenants.DefaultQuotas()
	if len(form) != 10 || form["slots"] != fmt.Sprint(def.Slots) || form["call_timeout"] != "5s" || form["module_bytes"] != fmt.Sprint(def.ModuleBytes) {
		t.Fatalf("the quotas form: %v", form)
	}
	values := func(change map[string]string) url.Values {
		v := url.Values{"csrf": {tok}}
		for k, x := range form {
			v.Set(k, x)
		}
		for k, x := range change {
			v.Set(k, x)
		}
		return v
	}
	quotasPath := "/admin/tenants/beta/quotas"
	u.follow(u.post(quotasPath, values(map[string]string{"slots": "3", "call_timeout": "2s"}))).has("Saved the quotas of beta.")
	bt, err := f.admin.Tenant(ctx, "beta")
	if err != nil || bt.Quotas.Slots != 3 || time.Duration(bt.Quotas.CallTimeout) != 2*time.Second || bt.Quotas.Savepoints != def.Savepoints {
		t.Fatalf("after saving: %+v, %v", bt.Quotas, err)
	}
	// Refused by the API: its message next to the input; nothing changed.
	_, apiErr := f.admin.SetQuotas(ctx, "beta", tenants.Quotas{MemoryPages: 70000})
	pe := pageProblem(t, apiErr, "invalid-request")
	r = u.post(quotasPath, values(map[string]string{"slots": "4", "memory_pages": "70000"})).want(pe.Status)
	if e := r.byID("q-memory_pages-error"); e == nil || len(pe.Errors) == 0 || !strings.Contains(pageText(e), pe.Errors[0].Problem) || pageNextElement(r.byID("q-memory_pages")) != e {
		t.Errorf("the API's memory_pages problem %v is not next to its input", pe.Errors)
	}
	if v := pageAttr(r.byID("q-memory_pages"), "value"); v != "70000" {
		t.Errorf("the refused form lost what was typed: %q", v)
	}
	// Refused by the console: not a number.
	r = u.post(quotasPath, values(map[string]string{"slots": "many"})).want(http.StatusBadRequest)
	if e := r.byID("q-slots-error"); e == nil || !strings.Contains(pageText(e), `"many" is not a whole number`) {
		t.Error("a non-number is not shown at its field")
	}
	if bt, _ := f.admin.Tenant(ctx, "beta"); bt.Quotas.Slots != 3 {
		t.Fatalf("a refused form changed the quotas: %+v", bt.Quotas)
	}

	// Keys of the tenant: the token shown once, revoke.
	r = u.post("/admin/tenants/beta/keys", url.Values{"csrf": {tok}, "name": {"beta owner"}, "role": {"owner"}}).want(http.StatusSeeOther)
	r = u.follow(r).has("Created key beta owner")
	token := pageText(r.byID("new-token"))
	if me, err := client.New(f.srv.URL, token, nil).Me(ctx); err != nil || me.Tenant != "beta" || me.Role != tenants.RoleOwner {
		t.Fatalf("the shown token: %+v, %v", me, err)
	}
	if u.page("/admin/tenants/beta").byID("new-token") != nil {
		t.Fatal("the token was shown twice")
	}
	ks, err := f.admin.Keys(ctx, "beta")
	if err != nil || len(ks) != 1 {
		t.Fatalf("beta's keys: %v, %v", ks, err)
	}
	u.follow(u.post("/admin/tenants/beta/keys/"+ks[0].ID+"/revoke", url.Values{"csrf": {tok}, "confirm": {"yes"}})).has("Revoked key " + ks[0].ID)
	if _, err := client.New(f.srv.URL, token, nil).Me(ctx); client.ProblemCode(err) != "key-revoked" {
		t.Fatalf("the revoked key: %v", err)
	}

	// Delete: refused while acme runs a job (the API's 409 on the page).
	err = f.admin.DeleteTenant(ctx, "acme")
	conflict := pageProblem(t, err, "conflict")
	r = u.post("/admin/tenants/acme/delete", url.Values{"csrf": {tok}, "confirm": {"yes"}}).want(http.StatusConflict)
	if box := r.errorBox(); !strings.Contains(box, conflict.Detail) {
		t.Errorf("delete refused: error box %q lacks %q", box, conflict.Detail)
	}
	u.post("/admin/tenants/beta/delete", url.Values{"csrf": {tok}}).want(http.StatusOK).has("Delete tenant beta with its modules")
	r = u.post("/admin/tenants/beta/delete", url.Values{"csrf": {tok}, "confirm": {"yes"}}).want(http.StatusSeeOther)
	u.follow(r).has("Deleted tenant beta.")
	if _, err := f.admin.Tenant(ctx, "beta"); client.ProblemCode(err) != "not-found" {
		t.Fatalf("beta after its delete: %v", err)
	}

	// A tenant's owner may not use the admin forms.
	owner := f.signIn(tenants.RoleOwner)
	otok := owner.csrf("/tenant")
	owner.post("/admin/tenants", url.Values{"csrf": {otok}, "id": {"gamma"}}).want(http.StatusForbidden)
	owner.post("/admin/tenants/acme/quotas", url.Values{"csrf": {otok}, "slots": {"100"}}).want(http.StatusForbidden)
	if _, err := f.admin.Tenant(ctx, "gamma"); client.ProblemCode(err) != "not-found" {
		t.Fatal("an owner created a tenant")
	}
	if at, _ := f.admin.Tenant(ctx, "acme"); at.Quotas.Slots != def.Slots {
		t.Fatal("an owner changed its quotas")
	}
	if _, err := f.owner.Cancel(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
}
