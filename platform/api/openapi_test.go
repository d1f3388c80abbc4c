package api_test

import (
	"fmt"
	"github.com/labstack/echo/v4"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/weirstream/weir/platform/api"
)

// openAPIPath turns echo's ":param" into OpenAPI's "{param}".
func openAPIPath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if name, ok := strings.CutPrefix(s, ":"); ok {
			segs[i] = "{" + name + "}"
		}
	}
	return strings.Join(segs, "/")
}

// TestOpenAPI checks /v1/openapi.json against the server: every route
// echo serves is documented with its method, every documented operation
// is served, every $ref resolves, and the problem types are the catalogue.
func TestOpenAPI(t *testing.T) {
	s := fx.srv
	var doc map[string]any
	s.get(t, "", "/v1/openapi.json").ok(t, http.StatusOK, &doc)
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Fatalf("openapi %q, want 3.x", v)
	}
	paths, _ := doc["paths"].(map[string]any)
	if len(paths) == 0 {
		t.Fatal("no paths")
	}

	t.Run("every registered route is documented", func(t *testing.T) {
		// The API's routes: the web console shares the server outside /v1.
		var routes []*echo.Route
		for _, r := range s.p.API.Echo().Routes() {
			if strings.HasPrefix(r.Path, "/v1/") {
				routes = append(routes, r)
			}
		}
		if len(routes) < len(api.Routes()) {
			t.Fatalf("echo has %d routes, the table %d", len(routes), len(api.Routes()))
		}
		for _, r := range routes {
			p := openAPIPath(r.Path)
			item, ok := paths[p].(map[string]any)
			if !ok {
				t.Errorf("%s %s (%s) is not in the document's paths", r.Method, r.Path, p)
				continue
			}
			if _, ok := item[strings.ToLower(r.Method)]; !ok {
				t.Errorf("%s %s: the document's path %s has no %s operation", r.Method, r.Path, p, strings.ToLower(r.Method))
			}
		}
	})

	t.Run("every documented operation is served", func(t *testing.T) {
		ids := map[string]string{}
		for p, v := range paths {
			item := v.(map[string]any)
			for method, o := range item {
				op, ok := o.(map[string]any)
				if !ok {
					t.Errorf("%s %s is not an operation object", method, p)
					continue
				}
				id, _ := op["operationId"].(string)
				if id == "" || ids[id] != "" {
					t.Errorf("%s %s: operationId %q is empty or also %s", method, p, id, ids[id])
				}
				ids[id] = method + " " + p
				if resp, _ := op["responses"].(map[string]any); resp["default"] == nil || len(resp) < 2 {
					t.Errorf("%s %s: responses %v, want the success status and a default problem", method, p, resp)
				}
				// Path parameters are declared.
				declared := map[string]bool{}
				params, _ := op["parameters"].([]any)
				for _, pr := range params {
					pm := pr.(map[string]any)
					if pm["in"] == "path" {
						declared[pm["name"].(string)] = true
					}
				}
				url := p
				for _, seg := range strings.Split(p, "/") {
					if name, ok := strings.CutPrefix(seg, "{"); ok {
						name = strings.TrimSuffix(name, "}")
						if !declared[name] {
							t.Errorf("%s %s: path parameter %s is not declared", method, p, name)
						}
						url = strings.Replace(url, seg, "x1", 1)
					}
				}
				// Without a key: a served route answers 401 (or 200 when
				// public); the router's 404 or 405 mean it is not served.
				a := s.do(t, req{method: strings.ToUpper(method), path: url})
				if a.Status == http.StatusNotFound || a.Status == http.StatusMethodNotAllowed {
					t.Errorf("documented %s %s is not served: %v", method, p, a)
				}
				if op["security"] != nil && a.Status != http.StatusOK {
					t.Errorf("%s %s is public in the document, but answered %v", method, p, a)
				}
				if op["security"] == nil && a.Status != http.StatusUnauthorized {
					t.Errorf("%s %s needs a key in the document, but answered %v", method, p, a)
				}
			}
		}
		if len(ids) != len(api.Routes()) {
			t.Errorf("the document has %d operations, the route table %d", len(ids), len(api.Routes()))
		}
	})

	t.Run("every $ref resolves", func(t *testing.T) {
		schemas, _ := dig(doc, "components", "schemas").(map[string]any)
		refs := 0
		var walk func(where string, v any)
		walk = func(where string, v any) {
			switch x := v.(type) {
			case map[string]any:
				for k, e := range x {
					if k == "$ref" {
						refs++
						ref, _ := e.(string)
						name, ok := strings.CutPrefix(ref, "#/components/schemas/")
						if !ok || schemas[name] == nil {
							t.Errorf("%s: $ref %q does not resolve to a components schema", where, ref)
						}
						continue
					}
					walk(where+"/"+k, e)
				}
			case []any:
				for _, e := range x {
					walk(where+"[]", e)
				}
			}
		}
		walk("#", doc)
		if refs == 0 {
			t.Fatal("no $ref at all")
		}
	})

	t.Run("the problem types are the catalogue", func(t *testing.T) {
		enum := problemEnum(doc)
		var want []string
		for _, k := range api.Catalogue {
			want = append(want, api.ProblemTypePrefix+k.Code)
		}
		sort.Strings(enum)
		sort.Strings(want)
		if strings.Join(enum, " ") != strings.Join(want, " ") {
			t.Fatalf("Problem type enum:\n%v\ncatalogue:\n%v", enum, want)
		}
	})
}

// TestDocs checks docs/API.md against the server: every route of the table
// has its row (or, for the public ones, its mention), and every problem
// type of the catalogue is in its table.
func TestDocs(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "docs", "API.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, r := range api.Routes() {
		p := openAPIPath(r.Path)
		if !strings.Contains(doc, "| "+r.Method+" | `"+p+"` |") && !strings.Contains(doc, "`"+r.Method+" "+p+"`") {
			t.Errorf("docs/API.md does not describe %s %s", r.Method, p)
		}
	}
	for _, k := range api.Catalogue {
		if !strings.Contains(doc, fmt.Sprintf("| `%s` | %d |", k.Code, k.Status)) {
			t.Errorf("docs/API.md's problem table lacks %s (%d)", k.Code, k.Status)
		}
	}
}
