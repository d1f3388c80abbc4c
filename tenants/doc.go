// Package tenants will own tenants, API keys, roles and quotas (the
// multi-tenant platform issue). It is empty until then.
package tenants
