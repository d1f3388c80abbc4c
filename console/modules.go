package console

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/weirstream/weir/platform/api"
	"github.com/weirstream/weir/platform/client"
	"github.com/weirstream/weir/tenants"
)

// The modules pages: the tenant's module names, the upload form (a plain
// multipart form; weir.js adds drag-and-drop to it), one name's versions
// with their delete buttons, and the validation result of an upload.

// moduleRoutes are the modules pages and forms.
func (c *Console) moduleRoutes() []route {
	return []route{
		{http.MethodGet, "/modules", func(r *request) error { return c.showModules(r, http.StatusOK, nil) }},
		{http.MethodPost, "/modules", c.uploadModule},
		{http.MethodGet, "/modules/:name", func(r *request) error { return c.showModule(r, http.StatusOK, nil) }},
		{http.MethodPost, "/modules/:name/versions/:version/delete", c.deleteModuleVersion},
	}
}

// showModules renders the module list with the upload form; extra adds to
// (or overrides) the page's data, e.g. a failed upload's problem.
func (c *Console) showModules(r *request, status int, extra map[string]any) error {
	mods, err := r.API.Modules(r.Ctx())
	if err != nil {
		return r.fail(0, err)
	}
	data := map[string]any{"Modules": mods, "CanWrite": callerCan(r, tenants.ActWrite)}
	for k, v := range extra {
		data[k] = v
	}
	return r.render(status, "modules", data)
}

// uploadModule takes the upload form: a name (default: the file's name)
// and the .wasm file. It answers with the API's verdict: a redirect to the
// name's page showing the validation result, or the modules page with the
// problem (nothing stored).
func (c *Console) uploadModule(r *request) error {
	name := strings.TrimSpace(r.FormValue("name"))
	again := func(p *shownProblem) error {
		return c.showModules(r, p.Status, map[string]any{"Problem": p, "UploadName": name})
	}
	fh, err := r.FormFile("module")
	if err != nil {
		return again(&shownProblem{Status: http.StatusBadRequest, Title: "No module file",
			Message: "Choose a Wasm module file (.wasm) to upload."})
	}
	if name == "" {
		name = moduleNameFromFile(fh.Filename)
	}
	if name == "" {
		return again(&shownProblem{Status: http.StatusBadRequest, Title: "No module name",
			Message: fmt.Sprintf("Give the module a name: %q does not make one (use a-z, 0-9, '-', '_' and '.').", fh.Filename)})
	}
	// The tenant's module_bytes quota bounds what is worth reading: the API
	// refuses anything larger (413), so one byte over is enough for it to
	// say so.
	q, err := r.API.Quotas(r.Ctx())
	if err != nil {
		return showOrFail(r, err, again)
	}
	f, err := fh.Open()
	if err != nil {
		return r.fail(http.StatusBadRequest, fmt.Errorf("reading the uploaded file %q: %w", fh.Filename, err))
	}
	wasm, err := io.ReadAll(io.LimitReader(f, q.Quotas.ModuleBytes+1))
	f.Close()
	if err != nil {
		return r.fail(http.StatusBadRequest, fmt.Errorf("reading the uploaded file %q: %w", fh.Filename, err))
	}
	v, created, err := r.API.UploadModule(r.Ctx(), name, wasm)
	if err != nil {
		return showOrFail(r, err, again)
	}
	query := url.Values{"uploaded": {strconv.Itoa(v.Version)}}
	msg := fmt.Sprintf("Uploaded %s version %d.", v.Name, v.Version)
	if !created {
		query.Set("existing", "1")
		msg = fmt.Sprintf("These bytes already are %s version %d: nothing new was stored.", v.Name, v.Version)
	}
	query.Set("flash", msg)
	return r.redirect("/modules/" + url.PathEscape(v.Name) + "?" + query.Encode())
}

// moduleNameFromFile makes a module name of an uploaded file's name:
// "WordCount v2.wasm" -> "wordcount-v2". "" when nothing usable is left.
func moduleNameFromFile(file string) string {
	file = file[strings.LastIndexAny(file, `/\`)+1:]
	file = strings.TrimSuffix(strings.ToLower(file), ".wasm")
	var b strings.Builder
	for _, ch := range file {
		switch {
		case ch >= 'a' && ch <= 'z', ch >= '0' && ch <= '9':
			b.WriteRune(ch)
		case b.Len() > 0 && (ch == '-' || ch == '_' || ch == '.'):
			b.WriteRune(ch)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-') // a run of other characters is one '-'
		}
	}
	s := strings.TrimRight(b.String(), "-_.")
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-_.")
	}
	return s
}

// showModule renders one module name's versions. A version named by
// ?uploaded= is shown as an upload's validation result (?existing=1: the
// bytes were already that version).
func (c *Console) showModule(r *request, status int, extra map[string]any) error {
	name := r.Param("name")
	m, err := r.API.Module(r.Ctx(), name)
	if err != nil {
		return r.fail(0, err)
	}
	versions := slices.Clone(m.Versions)
	slices.Reverse(versions) // newest first
	data := map[string]any{"Name": m.Name, "Versions": versions, "CanWrite": callerCan(r, tenants.ActWrite)}
	if up := r.QueryParam("uploaded"); up != "" {
		for i := range versions {
			if strconv.Itoa(versions[i].Version) == up {
				data["Uploaded"] = &versions[i]
				data["Existing"] = r.QueryParam("existing") == "1"
			}
		}
	}
	for k, v := range extra {
		data[k] = v
	}
	return r.render(status, "module", data)
}

// deleteModuleVersion deletes one version (after a confirmation); a
// version a job uses stays, and the page says why (409 module-in-use).
func (c *Console) deleteModuleVersion(r *request) error {
	name, version := r.Param("name"), r.Param("version")
	back := "/modules/" + url.PathEscape(name)
	if !confirmedForm(r) {
		return askConfirmation(r, confirmation{
			Title:    "Delete a module version",
			Question: fmt.Sprintf("Delete %s version %s? Jobs can no longer be deployed with it.", name, version),
			Button:   "Delete version " + version, Back: back,
		})
	}
	err := r.API.DeleteModuleVersion(r.Ctx(), name, version)
	if err != nil {
		return showOrFail(r, err, func(p *shownProblem) error {
			return c.showModule(r, p.Status, map[string]any{"Problem": p})
		})
	}
	msg := fmt.Sprintf("Deleted %s version %s.", name, version)
	if _, err := r.API.Module(r.Ctx(), name); client.ProblemCode(err) == "not-found" {
		return flashRedirect(r, "/modules", msg+" It was the name's last version.")
	}
	return flashRedirect(r, back, msg)
}

// ---- Helpers shared by the modules, deploy, jobs, tenant and admin pages.

// shownProblem is an API problem (or the console's own objection to a
// form) that a page shows in its error box, keeping the form.
type shownProblem struct {
	Status  int
	Title   string
	Message string
	// Fields are the problem's errors[]: each names its field.
	Fields []api.FieldProblem
}

// FieldProblem returns the problem's message for the form field named
// field (the API's names: "slots", "quotas.slots" and "name" all match
// their input), or "".
func (p *shownProblem) FieldProblem(field string) string {
	if p == nil {
		return ""
	}
	var msgs []string
	for _, f := range p.Fields {
		if f.Field == field || strings.TrimPrefix(f.Field, "quotas.") == field {
			msgs = append(msgs, f.Problem)
		}
	}
	return strings.Join(msgs, "; ")
}

// problemToShow is how a form shows a failed API call: nil when the error
// belongs on the error page instead — not an API problem, an expired or
// revoked key (r.fail signs out), a role or key that may not do this at
// all (403 forbidden, tenant-key-required), a server fault.
func problemToShow(err error) *shownProblem {
	var pe *client.ProblemError
	if !errors.As(err, &pe) {
		return nil
	}
	switch code := pe.Code(); {
	case pe.Status == http.StatusUnauthorized, code == "forbidden", code == "tenant-key-required":
		return nil
	case pe.Status >= 500 && pe.Status != http.StatusServiceUnavailable:
		return nil
	}
	p := &shownProblem{Status: pe.Status, Title: pe.Title, Message: pe.Detail, Fields: pe.Errors}
	if p.Title == "" {
		p.Title = http.StatusText(pe.Status)
	}
	if p.Message == "" && len(p.Fields) == 0 {
		p.Message = pe.Error()
	}
	return p
}

// showOrFail shows err with show when it is a problem the form's page
// explains, else renders the error page.
func showOrFail(r *request, err error, show func(*shownProblem) error) error {
	if p := problemToShow(err); p != nil {
		return show(p)
	}
	return r.fail(0, err)
}

// callerCan reports whether the signed-in key is a tenant's key whose role
// may perform a: pages show write forms only then. (The API decides
// anyway; this only spares a viewer forms it cannot use.)
func callerCan(r *request, a tenants.Action) bool {
	return r.sess != nil && r.sess.me.Tenant != "" && r.sess.me.Role.Can(a)
}

// flashRedirect ends a successful form: POST-redirect-GET with a message
// the next page shows once.
func flashRedirect(r *request, to, msg string) error {
	sep := "?"
	if strings.Contains(to, "?") {
		sep = "&"
	}
	return r.redirect(to + sep + "flash=" + url.QueryEscape(msg))
}

// confirmation is the server-rendered question a destructive form asks
// when scripts are off (weir.js asks with a dialog and marks the form
// confirmed instead).
type confirmation struct {
	Title, Question, Button, Back string
	// Fields are the form's own fields, sent again with the answer.
	Fields map[string]string
}

// confirmedForm reports whether a destructive form was confirmed: by the
// confirmation page's button, or by weir.js after its dialog (both send
// confirm=yes, as the job page's forms do).
func confirmedForm(r *request) bool { return r.FormValue("confirm") == "yes" }

// askConfirmation renders the question; its form posts to the same path
// with confirm=yes.
func askConfirmation(r *request, q confirmation) error {
	return r.render(http.StatusOK, "confirm_form", map[string]any{"Q": q, "Action": r.Request().URL.Path})
}
