package api

// RouteInfo is a route of the table as the external tests see it: the
// isolation matrix is driven by the table itself, so that a new route is
// covered without editing the tests.
type RouteInfo struct {
	Method, Path string // echo path (":param")
	ID           string
	// Access is who may call it: public, any-key, tenant-read,
	// tenant-write, tenant-keys or admin.
	Access string
	Status int // success status
}

// Routes returns the route table.
func Routes() []RouteInfo {
	names := map[access]string{public: "public", anyKey: "any-key", tenantRead: "tenant-read", tenantWrite: "tenant-write",
		tenantKeys: "tenant-keys", adminOnly: "admin"}
	var out []RouteInfo
	for _, r := range routeTable() {
		out = append(out, RouteInfo{Method: r.method, Path: r.path, ID: r.id, Access: names[r.access], Status: r.status})
	}
	return out
}
