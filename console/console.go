package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/weirstream/weir/platform/api"
	"github.com/weirstream/weir/platform/client"
	"github.com/weirstream/weir/runtime"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures the console.
type Config struct {
	// API is the REST API's handler; the console calls it in process.
	API http.Handler
	// SessionTTL is how long a sign-in lasts (default 12h).
	SessionTTL time.Duration
	// SecureCookies sets the Secure flag on the session cookie (serve the
	// console over TLS, or behind a proxy that does).
	SecureCookies bool
	// Now is the clock of sessions (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Console serves the pages.
type Console struct {
	cfg   Config
	pages map[string]*template.Template

	mu       sync.Mutex
	sessions map[string]*session
}

// session is one signed-in browser.
type session struct {
	token   string // the API key
	csrf    string
	me      api.Me
	expires time.Time
}

// CookieName is the session cookie.
const CookieName = "weir_session"

// New builds the console. It panics if its embedded templates do not parse
// (a build defect, caught by every test).
func New(cfg Config) *Console {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Console{cfg: cfg, sessions: map[string]*session{}}
	c.pages = parsePages()
	return c
}

// parsePages parses every page with the layout: templates/layout.html
// defines "layout", each other file defines "title" and "content".
func parsePages() map[string]*template.Template {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" || strings.HasPrefix(base, "_") {
			continue
		}
		files := []string{"templates/layout.html", n}
		partials, _ := fs.Glob(templateFS, "templates/_*.html")
		files = append(files, partials...)
		pages[base] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, files...))
	}
	return pages
}

// Register mounts the console's routes on e (the platform's server).
func (c *Console) Register(e *echo.Echo) {
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	e.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static/", cacheStatic(http.FileServer(http.FS(static))))))
	e.GET("/", c.page(func(r *request) error {
		if r.sess.me.Tenant == "" {
			return r.redirect("/admin")
		}
		return r.redirect("/jobs")
	}))
	e.GET("/signin", c.signInPage)
	e.POST("/signin", c.signIn)
	e.POST("/signout", c.page(c.signOut))
	for _, rt := range c.routes() {
		e.Add(rt.method, rt.path, c.page(rt.handler))
	}
}

// Form bodies are bounded before anything reads them (the CSRF check
// parses the form): a module upload by the largest module the engine
// takes plus the form's overhead, the module_bytes quota being the API's
// check; everything else by maxFormBytes.
const (
	maxFormBytes   = 1 << 20
	maxUploadBytes = runtime.MaxModuleBytes + 1<<20
)

func bodyLimit(req *http.Request) int64 {
	if req.Method == http.MethodPost && req.URL.Path == "/modules" {
		return maxUploadBytes
	}
	return maxFormBytes
}

// route is one page or form of the console.
type route struct {
	method, path string
	handler      func(*request) error
}

// routes are the console's pages, one list per page file.
func (c *Console) routes() []route {
	return slices.Concat(c.moduleRoutes(), c.deployRoutes(), c.jobListRoutes(), c.jobRoutes(), c.tenantRoutes(), c.adminRoutes())
}

// request is a signed-in request.
type request struct {
	echo.Context
	c       *Console
	sess    *session
	sid     string
	API     *client.Client
	flashes []string
}

// Ctx is the request's context.
func (r *request) Ctx() context.Context { return r.Request().Context() }

func (r *request) redirect(to string) error { return r.Redirect(http.StatusSeeOther, to) }

// page wraps a handler that needs a signed-in session: without one the
// browser is sent to the sign-in page (and back afterwards). POSTs must
// carry the session's CSRF token.
func (c *Console) page(h func(*request) error) echo.HandlerFunc {
	return func(e echo.Context) error {
		sid, sess := c.session(e)
		if sess == nil {
			next := e.Request().URL.RequestURI()
			if e.Request().Method != http.MethodGet {
				next = "/"
			}
			return e.Redirect(http.StatusSeeOther, "/signin?next="+url.QueryEscape(next))
		}
		r := &request{Context: e, c: c, sess: sess, sid: sid, API: c.client(sess.token)}
		if e.Request().Body != nil {
			e.Request().Body = http.MaxBytesReader(e.Response(), e.Request().Body, bodyLimit(e.Request()))
		}
		if e.Request().Method == http.MethodPost {
			if err := c.checkCSRF(e, sess); err != nil {
				return r.fail(http.StatusForbidden, err)
			}
		}
		if err := h(r); err != nil {
			return r.fail(0, err)
		}
		return nil
	}
}

// fail renders an error page. A problem from the API keeps its status and
// message; a 401 (key revoked or expired meanwhile) ends the session.
func (r *request) fail(status int, err error) error {
	var pe *client.ProblemError
	if errors.As(err, &pe) {
		if status == 0 {
			status = pe.Status
		}
		if pe.Status == http.StatusUnauthorized {
			r.c.endSession(r.sid)
			return r.Redirect(http.StatusSeeOther, "/signin?expired=1")
		}
	}
	if status == 0 {
		status = http.StatusInternalServerError
		r.c.cfg.Logger.Error("console page failed", "path", r.Request().URL.Path, "err", err)
	}
	return r.render(status, "error", map[string]any{"Status": status, "StatusText": http.StatusText(status), "Error": err.Error()})
}

// render writes a page with the layout.
func (r *request) render(status int, page string, data map[string]any) error {
	t, ok := r.c.pages[page]
	if !ok {
		return fmt.Errorf("console: no page %q", page)
	}
	if data == nil {
		data = map[string]any{}
	}
	if r.sess != nil {
		data["Me"] = r.sess.me
		data["CSRF"] = r.sess.csrf
	}
	data["Path"] = r.Request().URL.Path
	if _, ok := data["Flash"]; !ok {
		data["Flash"] = r.QueryParam("flash")
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", data); err != nil {
		r.c.cfg.Logger.Error("rendering a console page", "page", page, "err", err)
		return r.String(http.StatusInternalServerError, "the page could not be rendered; it is logged")
	}
	h := r.Response().Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	return r.HTMLBlob(status, buf.Bytes())
}

// session returns the request's live session.
func (c *Console) session(e echo.Context) (string, *session) {
	ck, err := e.Cookie(CookieName)
	if err != nil || ck.Value == "" {
		return "", nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sessions[ck.Value]
	if s == nil {
		return "", nil
	}
	if !c.cfg.Now().Before(s.expires) {
		delete(c.sessions, ck.Value)
		return "", nil
	}
	return ck.Value, s
}

func (c *Console) endSession(sid string) {
	c.mu.Lock()
	delete(c.sessions, sid)
	c.mu.Unlock()
}

func (c *Console) checkCSRF(e echo.Context, s *session) error {
	if o := e.Request().Header.Get("Origin"); o != "" && o != "null" {
		if u, err := url.Parse(o); err != nil || u.Host != e.Request().Host {
			return errors.New("the form was sent from another site")
		}
	}
	tok := e.FormValue("csrf")
	if tok == "" {
		tok = e.Request().Header.Get("X-CSRF-Token")
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(s.csrf)) != 1 {
		return errors.New("the form's security token is missing or stale: reload the page and try again")
	}
	return nil
}

func (c *Console) signInPage(e echo.Context) error {
	r := &request{Context: e, c: c}
	msg := ""
	if e.QueryParam("expired") != "" {
		msg = "Your key is no longer valid (revoked or expired); sign in again."
	}
	return r.render(http.StatusOK, "signin", map[string]any{"Next": safeNext(e.QueryParam("next")), "Notice": msg})
}

// signIn checks the key against the API (GET /v1/me) and starts a session.
func (c *Console) signIn(e echo.Context) error {
	r := &request{Context: e, c: c}
	e.Request().Body = http.MaxBytesReader(e.Response(), e.Request().Body, maxFormBytes)
	token := strings.TrimSpace(e.FormValue("token"))
	next := safeNext(e.FormValue("next"))
	if o := e.Request().Header.Get("Origin"); o != "" && o != "null" {
		if u, err := url.Parse(o); err != nil || u.Host != e.Request().Host {
			return r.render(http.StatusForbidden, "signin", map[string]any{"Next": next, "Error": "The form was sent from another site."})
		}
	}
	if token == "" {
		return r.render(http.StatusBadRequest, "signin", map[string]any{"Next": next, "Error": "Paste an API key (weir_...)."})
	}
	me, err := c.client(token).Me(e.Request().Context())
	if err != nil {
		msg := err.Error()
		var pe *client.ProblemError
		if errors.As(err, &pe) {
			msg = pe.Problem.Detail
		}
		return r.render(http.StatusUnauthorized, "signin", map[string]any{"Next": next, "Error": "Sign-in failed: " + msg})
	}
	sid, csrf := randomID(), randomID()
	c.mu.Lock()
	c.sessions[sid] = &session{token: token, csrf: csrf, me: me, expires: c.cfg.Now().Add(c.cfg.SessionTTL)}
	c.mu.Unlock()
	e.SetCookie(&http.Cookie{Name: CookieName, Value: sid, Path: "/", HttpOnly: true, Secure: c.cfg.SecureCookies,
		SameSite: http.SameSiteLaxMode, MaxAge: int(c.cfg.SessionTTL / time.Second)})
	if next == "" {
		next = "/jobs"
		if me.Tenant == "" {
			next = "/admin"
		}
	}
	return e.Redirect(http.StatusSeeOther, next)
}

func (c *Console) signOut(r *request) error {
	c.endSession(r.sid)
	r.SetCookie(&http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, Secure: c.cfg.SecureCookies, SameSite: http.SameSiteLaxMode, MaxAge: -1})
	return r.Redirect(http.StatusSeeOther, "/signin")
}

// safeNext keeps a post-sign-in target on this site.
func safeNext(n string) string {
	if !strings.HasPrefix(n, "/") || strings.HasPrefix(n, "//") || strings.HasPrefix(n, "/\\") {
		return ""
	}
	return n
}

func randomID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// client is an API client with the key, calling the API handler in process.
func (c *Console) client(token string) *client.Client {
	return client.New("http://console.internal", token, &http.Client{Transport: handlerTransport{c.cfg.API}})
}

// handlerTransport serves requests with a handler, in process.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	w := &responseRecorder{header: http.Header{}, status: http.StatusOK}
	t.h.ServeHTTP(w, req)
	return &http.Response{
		StatusCode: w.status, Status: fmt.Sprintf("%d %s", w.status, http.StatusText(w.status)),
		Header: w.header, Body: io.NopCloser(&w.body), ContentLength: int64(w.body.Len()),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Request: req,
	}, nil
}

type responseRecorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (w *responseRecorder) Header() http.Header { return w.header }
func (w *responseRecorder) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
}
func (w *responseRecorder) Write(b []byte) (int, error) {
	w.wrote = true
	return w.body.Write(b)
}

// cacheStatic lets browsers keep the embedded assets for an hour.
func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"since": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"bytes": func(n int64) string {
		switch {
		case n >= 1<<30:
			return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
		case n >= 1<<20:
			return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
		case n >= 1<<10:
			return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
		}
		return fmt.Sprintf("%d B", n)
	},
	"rate": func(f float64) string {
		switch {
		case f >= 1e6:
			return fmt.Sprintf("%.2f M/s", f/1e6)
		case f >= 1e3:
			return fmt.Sprintf("%.1f k/s", f/1e3)
		}
		return fmt.Sprintf("%.0f/s", f)
	},
	"short": func(s string) string {
		if len(s) > 19 {
			return s[:19] + "…"
		}
		return s
	},
}
