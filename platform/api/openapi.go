package api

import (
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/weirstream/weir/checkpoint"
	"github.com/weirstream/weir/platform/jobs"
	"github.com/weirstream/weir/platform/registry"
	"github.com/weirstream/weir/tenants"
)

// schemaTypes are the Go types behind the route table's schema names; the
// document's schemas are derived from them by reflection, so a field added
// to a response shows up in the document.
var schemaTypes = map[string]any{
	"Health":           map[string]string{},
	"Me":               Me{},
	"QuotasAndUsage":   QuotasAndUsage{},
	"CreateTenant":     CreateTenant{},
	"Tenant":           TenantView{},
	"TenantPage":       page[tenants.Tenant]{},
	"Quotas":           tenants.Quotas{},
	"CreateKey":        CreateKey{},
	"CreatedKey":       CreatedKey{},
	"KeyPage":          page[tenants.Key]{},
	"ModuleVersion":    registry.Version{},
	"ModuleNamePage":   page[registry.NameSummary]{},
	"ModuleVersions":   ModuleVersions{},
	"Job":              jobs.Job{},
	"JobPage":          page[jobs.Job]{},
	"JobDetail":        jobs.Detail{},
	"DeployJob":        DeployJob{},
	"OperationRequest": OperationRequest{},
	"Upgrade":          Upgrade{},
	"Rescale":          Rescale{},
	"Operation":        jobs.Operation{},
	"ExceptionPage":    page[jobs.Exception]{},
	"LogPage":          page[jobs.LogLine]{},
	"CheckpointPage":   page[checkpoint.StatsJSON]{},
	"Savepoint":        jobs.Savepoint{},
	"SavepointPage":    page[jobs.Savepoint]{},
	"Problem":          Problem{},
}

// OpenAPI returns the API's OpenAPI 3.0 document, built from the route
// table the server registers.
func (s *Server) OpenAPI() map[string]any {
	paths := map[string]map[string]any{}
	for _, r := range s.routes {
		p := openAPIPath(r.path)
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		op := map[string]any{
			"operationId": r.id,
			"summary":     r.summary,
			"responses":   responses(r),
		}
		if r.access == public {
			op["security"] = []any{}
		} else {
			op["description"] = "Needs: " + accessText(r.access)
		}
		var params []any
		for _, seg := range strings.Split(r.path, "/") {
			if name, ok := strings.CutPrefix(seg, ":"); ok {
				params = append(params, map[string]any{"name": name, "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
			}
		}
		if strings.HasSuffix(r.response, "Page") {
			params = append(params,
				map[string]any{"name": "page_size", "in": "query", "schema": map[string]any{"type": "integer", "minimum": 1, "maximum": maxPageSize, "default": defaultPageSize}},
				map[string]any{"name": "page_token", "in": "query", "schema": map[string]any{"type": "string"}})
		}
		if r.request == "OperationRequest" || r.request == "Upgrade" || r.request == "Rescale" {
			params = append(params, map[string]any{"name": "Idempotency-Key", "in": "header", "schema": map[string]any{"type": "string"},
				"description": "makes a retry return the same operation"})
		}
		if params != nil {
			op["parameters"] = params
		}
		switch r.request {
		case "":
		case "wasm":
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/wasm":         map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}},
				"application/octet-stream": map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}},
				"multipart/form-data":      map[string]any{"schema": map[string]any{"type": "object", "required": []string{"module"}, "properties": map[string]any{"module": map[string]any{"type": "string", "format": "binary"}}}},
			}}
		case "spec":
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/yaml": map[string]any{"schema": map[string]any{"type": "string", "description": "a job spec (README: Running jobs)"}},
				"application/json": map[string]any{"schema": ref("DeployJob")},
			}}
		default:
			op["requestBody"] = map[string]any{"required": r.request != "OperationRequest", "content": map[string]any{"application/json": map[string]any{"schema": ref(r.request)}}}
		}
		paths[p][strings.ToLower(r.method)] = op
	}
	schemas := map[string]any{}
	for name, v := range schemaTypes {
		schemas[name] = schemaOf(reflect.TypeOf(v))
	}
	codes := make([]string, 0, len(Catalogue))
	for _, k := range Catalogue {
		codes = append(codes, ProblemTypePrefix+k.Code)
	}
	sort.Strings(codes)
	schemas["Problem"].(map[string]any)["properties"].(map[string]any)["type"] = map[string]any{"type": "string", "enum": codes}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       "Weir API",
			"version":     "v1",
			"description": "Tenants, API keys, modules, jobs, savepoints and operations. Errors are application/problem+json (RFC 9457).",
		},
		"servers":  []any{map[string]any{"url": "/"}},
		"security": []any{map[string]any{"apiKey": []any{}}},
		"paths":    paths,
		"components": map[string]any{
			"schemas":         schemas,
			"securitySchemes": map[string]any{"apiKey": map[string]any{"type": "http", "scheme": "bearer", "description": "weir_<key id>_<secret>"}},
		},
	}
}

func accessText(a access) string {
	return map[access]string{anyKey: "any key", tenantRead: "a tenant key (any role)", tenantWrite: "a tenant key with role owner or developer",
		tenantKeys: "a tenant key with role owner", adminOnly: "an admin key"}[a]
}

// openAPIPath turns echo's ":param" into "{param}".
func openAPIPath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if name, ok := strings.CutPrefix(s, ":"); ok {
			segs[i] = "{" + name + "}"
		}
	}
	return strings.Join(segs, "/")
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

func responses(r route) map[string]any {
	problem := map[string]any{"description": "a problem", "content": map[string]any{"application/problem+json": map[string]any{"schema": ref("Problem")}}}
	ok := map[string]any{"description": "success"}
	switch r.response {
	case "":
		if r.id == "openapi" {
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}
		}
	case "wasm":
		ok["content"] = map[string]any{"application/wasm": map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}}
	default:
		ok["content"] = map[string]any{"application/json": map[string]any{"schema": ref(r.response)}}
	}
	out := map[string]any{itoa(r.status): ok, "default": problem}
	if r.id == "uploadModule" {
		out["200"] = map[string]any{"description": "these bytes already are a version of the name", "content": ok["content"]}
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

var (
	timeType  = reflect.TypeOf(time.Time{})
	statsType = reflect.TypeOf(checkpoint.Stats{})
)

// schemaOf derives a JSON schema from a Go type as encoding/json encodes it.
func schemaOf(t reflect.Type) map[string]any {
	if t.Kind() == reflect.Pointer {
		s := schemaOf(t.Elem())
		s["nullable"] = true
		return s
	}
	if t == statsType { // encodes as StatsJSON
		return schemaOf(reflect.TypeOf(checkpoint.StatsJSON{}))
	}
	if t == timeType {
		return map[string]any{"type": "string", "format": "date-time"}
	}
	if t.Implements(reflect.TypeOf((*interface{ MarshalJSON() ([]byte, error) })(nil)).Elem()) {
		if t.Kind() == reflect.Int64 { // durations: "5s"
			return map[string]any{"type": "string", "description": "a Go duration such as 1.5s"}
		}
		return map[string]any{}
	}
	switch t.Kind() {
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if t.Kind() == reflect.Int64 && t.Name() == "Duration" {
			return map[string]any{"type": "integer", "description": "nanoseconds"}
		}
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			if t.Name() == "RawMessage" {
				return map[string]any{"description": "any JSON value"}
			}
			return map[string]any{"type": "string", "format": "byte"}
		}
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		props := map[string]any{}
		addFields(t, props)
		return map[string]any{"type": "object", "properties": props}
	}
	return map[string]any{}
}

func addFields(t reflect.Type, props map[string]any) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if f.Anonymous && tag == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(ft, props)
				continue
			}
		}
		if !f.IsExported() || tag == "-" {
			continue
		}
		name := strings.Split(tag, ",")[0]
		if name == "" {
			name = f.Name
		}
		props[name] = schemaOf(f.Type)
	}
}
