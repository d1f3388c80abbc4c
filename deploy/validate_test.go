package deploy

// The validator: what the manifests must say for `weir coordinator` and
// `weir worker` to find each other and run, checked on a loaded bundle.
// It reports every problem it finds, each naming the file, line, object
// and container, so one run shows everything a change broke.

import (
	"fmt"
	"log/slog"
	"net"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weirstream/weir/checkpoint"
)

// flagKind says what a flag's value must look like.
type flagKind int

const (
	listenAddr       flagKind = iota // [host]:port this process listens on
	optionalListen                   // listenAddr, or empty: off
	dialAddr                         // host:port of another member
	absDir                           // a directory
	absFile                          // a file
	positiveInt                      // a count
	positiveDuration                 // a time.Duration
	logLevel                         // a slog level name
	placementName                    // spread or pack
	clusterStorage                   // a storage URL every pod can reach
	brokerList                       // comma-separated host:port, or empty
	nonEmpty                         // any value but ""
)

// flagSpec describes one flag of a weir command.
type flagSpec struct {
	kind flagKind
	// def is the default when it is a fixed value, "" otherwise (no
	// default, or one computed at run time such as the cache under $HOME).
	def string
}

// Sample values for what the downward API gives a pod, so that addresses
// built from $(POD_NAME), $(POD_NAMESPACE) and $(POD_IP) can be checked.
const (
	sampleNamespace = "sample-namespace"
	samplePodIP     = "10.11.12.13"
)

// Environment variables that hold credentials: never literal values.
var secretEnv = []string{"WEIR_CLUSTER_SECRET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}

// healthPath is the coordinator's unauthenticated health route (GET
// /v1/healthz in platform/api/routes.go; TestHealthRouteExists keeps the
// two in step).
const healthPath = "/v1/healthz"

var (
	// dnsLabel is an RFC 1123 label: object names (Services need it).
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// portNameRE is an IANA service name: what a port's name may be.
	portNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	quantityRE = regexp.MustCompile(`^([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$`)
)

// workload is a Deployment or StatefulSet: something that makes pods.
type workload struct {
	doc      *document
	selector labelSelector
	pod      *podTemplate
	podName  string // the name one of its pods gets: $(POD_NAME)
}

func (w *workload) String() string { return w.doc.String() }

// envValue is what a container's environment variable holds.
type envValue struct {
	value  string  // literal, ConfigMap value or sample downward-API value
	secret *keyRef // set when it comes from a Secret
}

// member is a container running a weir command.
type member struct {
	w     *workload
	c     *container
	where string
	cmd   string
	flags map[string]string // the flags given, $(VAR)s expanded
	env   map[string]envValue
}

// validator collects problems.
type validator struct {
	b     *bundle
	cmds  map[string]map[string]flagSpec
	probs []string
}

// validate checks a bundle against the commands' flag table and returns
// every problem found; none means the manifests hang together.
func validate(b *bundle, cmds map[string]map[string]flagSpec) []string {
	v := &validator{b: b, cmds: cmds}
	v.checkKustomization()
	v.checkHeaders()
	ws := v.workloads()
	v.checkSelectors(ws)
	for _, w := range ws {
		v.checkPod(w)
	}
	v.checkServices(ws)
	v.checkMembers(ws)
	return v.probs
}

func (v *validator) report(where any, format string, args ...any) {
	v.probs = append(v.probs, fmt.Sprintf("%v: %s", where, fmt.Sprintf(format, args...)))
}

func (v *validator) checkKustomization() {
	k := v.b.kust
	where := kustomizationFile
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		v.report(where, "apiVersion/kind are %q/%q, want kustomize.config.k8s.io/v1beta1/Kustomization", k.APIVersion, k.Kind)
	}
	listed := map[string]bool{}
	for _, r := range k.Resources {
		switch {
		case listed[r]:
			v.report(where, "resource %q is listed twice", r)
		case r != path.Base(r) || strings.Contains(r, "://"):
			v.report(where, "resource %q is not a file of this folder: the folder must be complete on its own", r)
		case !slices.Contains(v.b.files, r):
			v.report(where, "resource %q is listed but there is no such file", r)
		}
		listed[r] = true
	}
	for _, f := range v.b.files {
		if !listed[f] {
			v.report(where, "%s is in the folder but not in resources: kubectl apply -k would skip it", f)
		}
	}
}

func (v *validator) checkHeaders() {
	seen := map[string]*document{}
	for _, d := range v.b.docs {
		h := d.obj.head()
		k, ok := kinds[h.Kind]
		switch {
		case h.Kind == "":
			v.report(d, "kind is missing")
		case !ok:
			v.report(d, "kind %q is not modelled", h.Kind)
		case h.APIVersion == "":
			v.report(d, "apiVersion is missing (want %s)", k.apiVersion)
		case h.APIVersion != k.apiVersion:
			v.report(d, "apiVersion is %q, want %q for a %s", h.APIVersion, k.apiVersion, h.Kind)
		}
		name := h.Metadata.Name
		switch {
		case name == "":
			v.report(d, "metadata.name is missing")
		case len(name) > 63 || !dnsLabel.MatchString(name):
			v.report(d, "metadata.name %q is not a DNS label (lower case letters, digits and '-', at most 63)", name)
		}
		if h.Metadata.Namespace != "" {
			v.report(d, "metadata.namespace is %q: the manifests are namespace-agnostic (kubectl apply -n NS -k)", h.Metadata.Namespace)
		}
		id := h.Kind + "/" + name
		if first, dup := seen[id]; dup {
			v.report(d, "%s is defined twice (first at %s)", id, first)
		}
		seen[id] = d
	}
}

func (v *validator) workloads() []*workload {
	var ws []*workload
	for _, d := range v.b.docs {
		switch o := d.obj.(type) {
		case *deployment:
			ws = append(ws, &workload{doc: d, selector: o.Spec.Selector, pod: &o.Spec.Template,
				podName: o.Metadata.Name + "-5d4f8b7c9-x2k4q"})
		case *statefulSet:
			ws = append(ws, &workload{doc: d, selector: o.Spec.Selector, pod: &o.Spec.Template,
				podName: o.Metadata.Name + "-0"})
		}
	}
	return ws
}

// matches says whether a (non-empty) selector selects pods with labels.
func matches(sel, labels strMap) bool {
	if len(sel) == 0 {
		return false
	}
	for k, want := range sel {
		if got, ok := labels[k]; !ok || got != want {
			return false
		}
	}
	return true
}

// selected lists the workloads whose pods sel selects.
func selected(ws []*workload, sel strMap) []*workload {
	var out []*workload
	for _, w := range ws {
		if matches(sel, w.pod.Metadata.Labels) {
			out = append(out, w)
		}
	}
	return out
}

func names(ws []*workload) string {
	var s []string
	for _, w := range ws {
		s = append(s, w.doc.obj.head().Kind+"/"+w.doc.obj.head().Metadata.Name)
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func (v *validator) checkSelectors(ws []*workload) {
	for _, w := range ws {
		sel := w.selector.MatchLabels
		switch {
		case len(sel) == 0:
			v.report(w, "spec.selector.matchLabels is empty")
		case !matches(sel, w.pod.Metadata.Labels):
			v.report(w, "spec.selector %v does not match the pod template's labels %v", sel, w.pod.Metadata.Labels)
		}
		for _, other := range ws {
			if other != w && matches(sel, other.pod.Metadata.Labels) {
				v.report(w, "spec.selector %v also matches the pods of %s: the two controllers would fight over them", sel, other)
			}
		}
		for i, t := range w.pod.Spec.TopologySpreadConstraints {
			if !matches(t.LabelSelector.MatchLabels, w.pod.Metadata.Labels) {
				v.report(w, "topologySpreadConstraints[%d].labelSelector %v does not match its own pods: it would spread nothing", i, t.LabelSelector.MatchLabels)
			}
		}
	}
	for _, d := range all[*service](v.b) {
		s := d.obj.(*service)
		if len(s.Spec.Selector) == 0 {
			v.report(d, "spec.selector is empty: the Service would get no pods")
			continue
		}
		if sel := selected(ws, s.Spec.Selector); len(sel) != 1 {
			v.report(d, "spec.selector %v selects the pods of %s, want exactly one workload", s.Spec.Selector, names(sel))
		}
	}
	for _, d := range all[*podDisruptionBudget](v.b) {
		p := d.obj.(*podDisruptionBudget)
		if sel := selected(ws, p.Spec.Selector.MatchLabels); len(sel) != 1 {
			v.report(d, "spec.selector %v selects the pods of %s, want exactly one workload", p.Spec.Selector.MatchLabels, names(sel))
		}
		if (p.Spec.MaxUnavailable == nil) == (p.Spec.MinAvailable == nil) {
			v.report(d, "set exactly one of maxUnavailable and minAvailable")
		}
	}
}

// checkPod checks what every pod needs, whatever it runs.
func (v *validator) checkPod(w *workload) {
	spec := &w.pod.Spec
	nonRoot := spec.SecurityContext != nil && spec.SecurityContext.RunAsNonRoot != nil && *spec.SecurityContext.RunAsNonRoot
	if !nonRoot {
		v.report(w, "the pod's securityContext.runAsNonRoot is not true: the image runs as an unprivileged user and should be held to it")
	}
	if spec.TerminationGracePeriodSeconds == nil {
		v.report(w, "terminationGracePeriodSeconds is not set: say how long weir gets to stop")
	}
	vols := map[string]*volume{}
	hasPVC := false
	for i := range spec.Volumes {
		vol := &spec.Volumes[i]
		if vols[vol.Name] != nil {
			v.report(w, "volume %q is defined twice", vol.Name)
		}
		vols[vol.Name] = vol
		sources := 0
		if vol.EmptyDir != nil {
			sources++
		}
		if c := vol.PersistentVolumeClaim; c != nil {
			sources++
			hasPVC = true
			if lookup[*persistentVolumeClaim](v.b, c.ClaimName) == nil {
				v.report(w, "volume %q claims PersistentVolumeClaim %q, which the manifests do not define", vol.Name, c.ClaimName)
			}
		}
		if s := vol.Secret; s != nil {
			sources++
			for _, it := range s.Items {
				v.checkSecretKey(w, fmt.Sprintf("volume %q", vol.Name), keyRef{Name: s.SecretName, Key: it.Key, Optional: s.Optional})
			}
			if len(s.Items) == 0 && !s.Optional && lookup[*secret](v.b, s.SecretName) == nil {
				v.report(w, "volume %q: Secret %q does not exist in the manifests", vol.Name, s.SecretName)
			}
		}
		if c := vol.ConfigMap; c != nil {
			sources++
			for _, it := range c.Items {
				v.checkConfigMapKey(w, fmt.Sprintf("volume %q", vol.Name), keyRef{Name: c.Name, Key: it.Key, Optional: c.Optional})
			}
		}
		if sources != 1 {
			v.report(w, "volume %q has %d sources, want exactly one", vol.Name, sources)
		}
	}
	if hasPVC && nonRoot && (spec.SecurityContext.FSGroup == nil) {
		v.report(w, "the pod mounts a PersistentVolumeClaim as non-root without securityContext.fsGroup: many provisioners create volumes only root can write")
	}
	if len(spec.Containers) == 0 {
		v.report(w, "the pod has no containers")
	}
	mounted := map[string]bool{}
	cnames := map[string]bool{}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		where := fmt.Sprintf("%s container %q", w, c.Name)
		if c.Name == "" || cnames[c.Name] {
			v.report(where, "container names must be present and unique")
		}
		cnames[c.Name] = true
		if c.Image == "" {
			v.report(where, "image is missing")
		}
		v.checkPorts(where, c)
		v.checkEnv(where, w, c)
		paths := map[string]bool{}
		for _, m := range c.VolumeMounts {
			mounted[m.Name] = true
			if vols[m.Name] == nil {
				v.report(where, "volumeMount %q names no volume of the pod", m.Name)
			}
			if !path.IsAbs(m.MountPath) || paths[m.MountPath] {
				v.report(where, "volumeMount %q: mountPath %q must be absolute and unique", m.Name, m.MountPath)
			}
			paths[m.MountPath] = true
		}
		for _, p := range []struct {
			name string
			p    *probe
		}{{"readinessProbe", c.ReadinessProbe}, {"livenessProbe", c.LivenessProbe}, {"startupProbe", c.StartupProbe}} {
			if p.p != nil {
				v.checkProbe(where, p.name, c, p.p)
			}
		}
		for _, r := range []struct {
			what string
			m    strMap
		}{{"requests", c.Resources.Requests}, {"limits", c.Resources.Limits}} {
			for _, res := range []string{"cpu", "memory"} {
				q, ok := r.m[res]
				switch {
				case !ok:
					v.report(where, "resources.%s.%s is not set: the scheduler and the kernel need it", r.what, res)
				case !quantityRE.MatchString(string(q)):
					v.report(where, "resources.%s.%s %q is not a quantity", r.what, res, q)
				}
			}
		}
	}
	for name := range vols {
		if !mounted[name] {
			v.report(w, "volume %q is not mounted by any container", name)
		}
	}
}

func (v *validator) checkPorts(where string, c *container) {
	seenNames, nums := map[string]bool{}, map[int]bool{}
	for _, p := range c.Ports {
		if p.ContainerPort < 1 || p.ContainerPort > 65535 || nums[p.ContainerPort] {
			v.report(where, "containerPort %d must be in 1..65535 and unique", p.ContainerPort)
		}
		nums[p.ContainerPort] = true
		if p.Name == "" {
			continue
		}
		if len(p.Name) > 15 || !portNameRE.MatchString(p.Name) || strings.Contains(p.Name, "--") || strings.Trim(p.Name, "0123456789-") == "" {
			v.report(where, "port name %q is not an IANA service name (at most 15 of a-z, 0-9 and '-', with a letter)", p.Name)
		}
		if seenNames[p.Name] {
			v.report(where, "port name %q is used twice", p.Name)
		}
		seenNames[p.Name] = true
	}
}

// containerPortOf resolves a probe's or a Service's target port: a name
// or a number, which must be one the container declares.
func containerPortOf(cs []container, t intOrString) (int, bool) {
	for _, c := range cs {
		for _, p := range c.Ports {
			if t.name != "" && p.Name == t.name || t.name == "" && p.ContainerPort == t.num {
				return p.ContainerPort, true
			}
		}
	}
	return 0, false
}

func (v *validator) checkProbe(where, name string, c *container, p *probe) {
	var port intOrString
	switch {
	case p.HTTPGet != nil && p.TCPSocket == nil:
		port = p.HTTPGet.Port
		if !strings.HasPrefix(p.HTTPGet.Path, "/") {
			v.report(where, "%s.httpGet.path %q must start with /", name, p.HTTPGet.Path)
		}
	case p.TCPSocket != nil && p.HTTPGet == nil:
		port = p.TCPSocket.Port
	default:
		v.report(where, "%s needs exactly one handler (httpGet or tcpSocket)", name)
		return
	}
	if _, ok := containerPortOf([]container{*c}, port); !ok {
		v.report(where, "%s port %s is not a port the container declares", name, port)
	}
}

func (v *validator) checkSecretKey(where any, what string, ref keyRef) {
	s := lookup[*secret](v.b, ref.Name)
	switch {
	case ref.Optional:
	case s == nil:
		v.report(where, "%s: Secret %q does not exist in the manifests", what, ref.Name)
	case !slices.Contains(s.keys(), ref.Key):
		v.report(where, "%s: Secret %q has no key %q (it has %s)", what, ref.Name, ref.Key, keyList(s.keys()))
	}
}

func keyList(keys []string) string {
	if len(keys) == 0 {
		return "no keys"
	}
	return strings.Join(keys, ", ")
}

func (v *validator) checkConfigMapKey(where any, what string, ref keyRef) {
	cm := lookup[*configMap](v.b, ref.Name)
	switch {
	case ref.Optional:
	case cm == nil:
		v.report(where, "%s: ConfigMap %q does not exist in the manifests", what, ref.Name)
	default:
		if _, ok := cm.Data[ref.Key]; !ok {
			v.report(where, "%s: ConfigMap %q has no key %q (it has %s)", what, ref.Name, ref.Key, keyList(sortedKeys(cm.Data)))
		}
	}
}

func (v *validator) checkEnv(where string, w *workload, c *container) {
	seen := map[string]bool{}
	for _, e := range c.Env {
		what := fmt.Sprintf("env %s", e.Name)
		if e.Name == "" || seen[e.Name] {
			v.report(where, "env names must be present and unique (%q)", e.Name)
		}
		seen[e.Name] = true
		if (e.Value == nil) == (e.ValueFrom == nil) {
			v.report(where, "%s: set exactly one of value and valueFrom", what)
			continue
		}
		if e.Value != nil {
			if slices.Contains(secretEnv, e.Name) {
				v.report(where, "%s holds a credential as a literal value: take it from a Secret (secretKeyRef or envFrom)", what)
			}
			continue
		}
		f := e.ValueFrom
		sources := 0
		if f.SecretKeyRef != nil {
			sources++
			v.checkSecretKey(where, what, *f.SecretKeyRef)
		}
		if f.ConfigMapKeyRef != nil {
			sources++
			v.checkConfigMapKey(where, what, *f.ConfigMapKeyRef)
		}
		if f.FieldRef != nil {
			sources++
		}
		if r := f.ResourceFieldRef; r != nil {
			sources++
			kind, res, _ := strings.Cut(r.Resource, ".")
			set := c.Resources.Requests
			if kind == "limits" {
				set = c.Resources.Limits
			}
			if _, ok := set[res]; !ok {
				v.report(where, "%s: resourceFieldRef %s is not set on the container (it would be the node's capacity)", what, r.Resource)
			}
		}
		if sources != 1 {
			v.report(where, "%s: valueFrom needs exactly one source, has %d", what, sources)
		}
	}
	for _, ef := range c.EnvFrom {
		switch {
		case (ef.SecretRef == nil) == (ef.ConfigMapRef == nil):
			v.report(where, "envFrom entries need exactly one of secretRef and configMapRef")
		case ef.SecretRef != nil && !ef.SecretRef.Optional && lookup[*secret](v.b, ef.SecretRef.Name) == nil:
			v.report(where, "envFrom: Secret %q does not exist in the manifests", ef.SecretRef.Name)
		case ef.ConfigMapRef != nil && !ef.ConfigMapRef.Optional && lookup[*configMap](v.b, ef.ConfigMapRef.Name) == nil:
			v.report(where, "envFrom: ConfigMap %q does not exist in the manifests", ef.ConfigMapRef.Name)
		}
	}
}

// environment is a container's environment as Kubernetes builds it:
// envFrom first, env entries override.
func (v *validator) environment(w *workload, c *container) map[string]envValue {
	env := map[string]envValue{}
	for _, ef := range c.EnvFrom {
		if ef.SecretRef != nil {
			if s := lookup[*secret](v.b, ef.SecretRef.Name); s != nil {
				for _, k := range s.keys() {
					env[ef.Prefix+k] = envValue{secret: &keyRef{Name: s.Metadata.Name, Key: k}}
				}
			}
		}
		if ef.ConfigMapRef != nil {
			if cm := lookup[*configMap](v.b, ef.ConfigMapRef.Name); cm != nil {
				for k, val := range cm.Data {
					env[ef.Prefix+k] = envValue{value: string(val)}
				}
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.Value != nil:
			env[e.Name] = envValue{value: string(*e.Value)}
		case e.ValueFrom == nil:
		case e.ValueFrom.SecretKeyRef != nil:
			ref := *e.ValueFrom.SecretKeyRef
			env[e.Name] = envValue{secret: &ref}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			var val string
			if cm := lookup[*configMap](v.b, ref.Name); cm != nil {
				val = string(cm.Data[ref.Key])
			}
			env[e.Name] = envValue{value: val}
		case e.ValueFrom.FieldRef != nil:
			val := "<" + e.ValueFrom.FieldRef.FieldPath + ">"
			switch e.ValueFrom.FieldRef.FieldPath {
			case "metadata.name":
				val = w.podName
			case "metadata.namespace":
				val = sampleNamespace
			case "status.podIP":
				val = samplePodIP
			}
			env[e.Name] = envValue{value: val}
		case e.ValueFrom.ResourceFieldRef != nil:
			env[e.Name] = envValue{value: "<" + e.ValueFrom.ResourceFieldRef.Resource + ">"}
		}
	}
	return env
}

// expand replaces $(VAR) in s as the kubelet does for args: with the
// container's variable, "$$" being a literal "$". An undefined variable
// stays as written (and reaches weir literally), a Secret's value would
// be visible in the pod spec and the process list: both are problems.
func expand(s string, env map[string]envValue) (string, []string) {
	var out strings.Builder
	var probs []string
	for i := 0; i < len(s); {
		if s[i] == '$' && i+1 < len(s) {
			if s[i+1] == '$' {
				out.WriteByte('$')
				i += 2
				continue
			}
			if s[i+1] == '(' {
				if j := strings.IndexByte(s[i+2:], ')'); j >= 0 {
					name := s[i+2 : i+2+j]
					ev, ok := env[name]
					switch {
					case !ok:
						probs = append(probs, fmt.Sprintf("$(%s) is not defined in the container's environment: Kubernetes would pass it literally", name))
						out.WriteString(s[i : i+3+j])
					case ev.secret != nil:
						probs = append(probs, fmt.Sprintf("$(%s) puts Secret %s's value in the arguments, where the pod spec and the process list show it", name, ev.secret.Name))
						out.WriteString("<secret>")
					default:
						out.WriteString(ev.value)
					}
					i += 3 + j
					continue
				}
			}
		}
		out.WriteByte(s[i])
		i++
	}
	return out.String(), probs
}

// parseCommand reads a weir command line as its flag package would (after
// cmd/weir's reordering): the command, then -flag=value, --flag=value or
// --flag value. Every flag must be one of the command's, once; no
// positional arguments (the server commands take none).
func parseCommand(args []string, cmds map[string]map[string]flagSpec) (string, map[string]string, []string) {
	if len(args) == 0 {
		return "", nil, []string{"args are empty: the first argument is the weir command"}
	}
	cmd := args[0]
	table, ok := cmds[cmd]
	if !ok {
		return cmd, nil, []string{fmt.Sprintf("args start with %q, which is not a weir server command (%s)", cmd, strings.Join(sortedKeys(cmds), ", "))}
	}
	var probs []string
	flags := map[string]string{}
	for i := 1; i < len(args); i++ {
		a := args[i]
		name, hasDash := strings.CutPrefix(a, "-")
		name = strings.TrimPrefix(name, "-")
		if !hasDash || name == "" || strings.HasPrefix(name, "-") {
			probs = append(probs, fmt.Sprintf("argument %q is not a flag: weir %s takes no positional arguments", a, cmd))
			continue
		}
		name, val, hasVal := strings.Cut(name, "=")
		if !hasVal {
			if i+1 == len(args) {
				probs = append(probs, fmt.Sprintf("flag --%s has no value", name))
				continue
			}
			i++
			val = args[i]
		}
		if _, ok := table[name]; !ok {
			probs = append(probs, fmt.Sprintf("--%s is not a flag of weir %s", name, cmd))
			continue
		}
		if _, dup := flags[name]; dup {
			probs = append(probs, fmt.Sprintf("--%s is given twice (the last one would win)", name))
		}
		flags[name] = val
	}
	return cmd, flags, probs
}

// listenPort is the port of a [host]:port address.
func listenPort(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is not a number in 1..65535", p)
	}
	return n, nil
}

// checkValue checks a flag's value as the command will read it.
func checkValue(kind flagKind, val string) error {
	switch kind {
	case listenAddr:
		_, err := listenPort(val)
		return err
	case optionalListen:
		if val == "" {
			return nil
		}
		_, err := listenPort(val)
		return err
	case dialAddr:
		h, _, err := net.SplitHostPort(val)
		if err == nil && h == "" {
			err = fmt.Errorf("host is empty")
		}
		if err == nil {
			_, err = listenPort(val)
		}
		return err
	case absDir, absFile:
		if !path.IsAbs(val) {
			return fmt.Errorf("%q is not absolute: a relative path depends on the image's working directory", val)
		}
	case positiveInt:
		if n, err := strconv.Atoi(val); err != nil || n <= 0 {
			return fmt.Errorf("%q is not a positive integer", val)
		}
	case positiveDuration:
		if d, err := time.ParseDuration(val); err != nil || d <= 0 {
			return fmt.Errorf("%q is not a positive duration", val)
		}
	case logLevel:
		var l slog.Level
		return l.UnmarshalText([]byte(val))
	case placementName:
		if val != "spread" && val != "pack" {
			return fmt.Errorf("%q is not spread or pack", val)
		}
	case clusterStorage:
		if !strings.HasPrefix(val, "s3://") {
			return fmt.Errorf("%q is not s3://...: the coordinator announces its storage to the workers, and pods share no filesystem", val)
		}
		// The binary's own parser; with S3 nothing is sent before the
		// first operation, and credentials are the environment's, so
		// stand-ins let it check the URL alone.
		fake := func(k string) string {
			if strings.HasPrefix(k, "AWS_") {
				return "stand-in"
			}
			return ""
		}
		_, err := checkpoint.OpenStorage(val, checkpoint.StorageOptions{Getenv: fake})
		return err
	case nonEmpty:
		if val == "" {
			return fmt.Errorf("the value is empty")
		}
	case brokerList:
		for b := range strings.SplitSeq(val, ",") {
			if b = strings.TrimSpace(b); b == "" {
				continue
			}
			if err := checkValue(dialAddr, b); err != nil {
				return fmt.Errorf("broker %q: %w", b, err)
			}
		}
	}
	return nil
}

// value is a flag's effective value: as given, else its default.
func (v *validator) value(m *member, name string) (string, bool) {
	if val, ok := m.flags[name]; ok {
		return val, true
	}
	return v.cmds[m.cmd][name].def, false
}

// mountFor returns the mount (and its volume) under which p lies.
func mountFor(w *workload, c *container, p string) (*volumeMount, *volume) {
	var best *volumeMount
	for i := range c.VolumeMounts {
		m := &c.VolumeMounts[i]
		if (p == m.MountPath || strings.HasPrefix(p, strings.TrimSuffix(m.MountPath, "/")+"/")) && (best == nil || len(m.MountPath) > len(best.MountPath)) {
			best = m
		}
	}
	if best == nil {
		return nil, nil
	}
	for i := range w.pod.Spec.Volumes {
		if w.pod.Spec.Volumes[i].Name == best.Name {
			return best, &w.pod.Spec.Volumes[i]
		}
	}
	return best, nil
}

func readOnlyRoot(c *container) bool {
	return c.SecurityContext != nil && c.SecurityContext.ReadOnlyRootFilesystem != nil && *c.SecurityContext.ReadOnlyRootFilesystem
}

func (v *validator) checkMembers(ws []*workload) {
	var coords, workers []*member
	for _, w := range ws {
		for i := range w.pod.Spec.Containers {
			c := &w.pod.Spec.Containers[i]
			if len(c.Args) == 0 {
				continue
			}
			m := v.member(w, c)
			switch m.cmd {
			case "coordinator":
				coords = append(coords, m)
			case "worker":
				workers = append(workers, m)
			}
		}
	}
	if len(coords) != 1 {
		v.report("the manifests", "%d containers run weir coordinator, want exactly 1", len(coords))
	}
	if len(workers) == 0 {
		v.report("the manifests", "no container runs weir worker")
	}
	var coord *coordinatorFacts
	if len(coords) == 1 {
		coord = v.checkCoordinator(coords[0])
	}
	for _, m := range workers {
		v.checkWorker(m, coord)
	}
}

// member parses a container's command line and checks what any weir
// server command needs.
func (v *validator) member(w *workload, c *container) *member {
	m := &member{w: w, c: c, where: fmt.Sprintf("%s container %q", w, c.Name), env: v.environment(w, c)}
	if len(c.Command) > 0 && !slices.Equal(c.Command, []string{"/weir"}) {
		v.report(m.where, "command %q replaces the image's entrypoint /weir: give weir's arguments in args only", c.Command)
	}
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		var probs []string
		args[i], probs = expand(a, m.env)
		for _, p := range probs {
			v.report(m.where, "args[%d]: %s", i, p)
		}
	}
	var probs []string
	m.cmd, m.flags, probs = parseCommand(args, v.cmds)
	for _, p := range probs {
		v.report(m.where, "%s", p)
	}
	for _, name := range sortedKeys(m.flags) {
		if err := checkValue(v.cmds[m.cmd][name].kind, m.flags[name]); err != nil {
			v.report(m.where, "--%s: %v", name, err)
		}
	}
	if _, ok := v.cmds[m.cmd]; !ok {
		return m
	}
	// Directories must be writable where they are.
	for _, name := range sortedKeys(v.cmds[m.cmd]) {
		if v.cmds[m.cmd][name].kind != absDir {
			continue
		}
		val, given := v.value(m, name)
		if !readOnlyRoot(c) {
			continue
		}
		if !given {
			v.report(m.where, "--%s is not given and the root filesystem is read-only: set it to a directory on a mounted volume", name)
			continue
		}
		mnt, vol := mountFor(w, c, val)
		if mnt == nil || vol == nil || mnt.ReadOnly || vol.Secret != nil || vol.ConfigMap != nil {
			v.report(m.where, "--%s=%s is not on a writable volume and the root filesystem is read-only", name, val)
		}
	}
	return m
}

// coordinatorFacts is what the workers' checks need to know about the
// coordinator.
type coordinatorFacts struct {
	m           *member
	services    []*service // Services that select its pods
	clusterPort int        // its --cluster-listen port
	secret      *keyRef    // its cluster secret
	storage     string     // its --storage
	image       string
}

func (v *validator) checkCoordinator(m *member) *coordinatorFacts {
	f := &coordinatorFacts{m: m, image: m.c.Image}
	d, ok := m.w.doc.obj.(*deployment)
	if !ok {
		v.report(m.where, "weir coordinator runs in a %s, want a Deployment", m.w.doc.obj.head().Kind)
	} else {
		if r := d.Spec.Replicas; r == nil || *r != 1 {
			v.report(m.w, "replicas must be exactly 1: the metadata store (Pebble) has one writer")
		}
		if d.Spec.Strategy.Type != "Recreate" {
			v.report(m.w, "strategy.type is %q, want Recreate: a rolling update would run two coordinators on one metadata store", d.Spec.Strategy.Type)
		}
	}
	if f.storage, ok = m.flags["storage"]; !ok {
		v.report(m.where, "--storage is not given: the default is a directory in the coordinator's pod, which workers cannot reach")
	}
	f.secret = v.clusterSecret(m)
	ports := map[string]int{}
	for _, name := range []string{"listen", "cluster-listen"} {
		val, _ := v.value(m, name)
		p, err := listenPort(val)
		if err != nil {
			continue // reported with the flag's value
		}
		ports[name] = p
		if _, ok := containerPortOf([]container{*m.c}, portNum(p)); !ok {
			v.report(m.where, "--%s=%s: port %d is not a containerPort of the container", name, val, p)
		}
	}
	f.clusterPort = ports["cluster-listen"]
	// The Services in front of it must reach both listeners.
	exposed := map[int]bool{}
	for _, d := range all[*service](v.b) {
		s := d.obj.(*service)
		if !matches(s.Spec.Selector, m.w.pod.Metadata.Labels) {
			continue
		}
		f.services = append(f.services, s)
		for _, sp := range s.Spec.Ports {
			if p, ok := containerPortOf([]container{*m.c}, targetOf(sp)); ok {
				exposed[p] = true
			}
		}
	}
	for _, name := range []string{"listen", "cluster-listen"} {
		if p, ok := ports[name]; ok && !exposed[p] {
			v.report(m.where, "no Service port targets the --%s port %d", name, p)
		}
	}
	if rp := m.c.ReadinessProbe; rp == nil || rp.HTTPGet == nil || rp.HTTPGet.Path != healthPath {
		v.report(m.where, "readinessProbe must be httpGet %s (the API's unauthenticated health route)", healthPath)
	} else if p, ok := containerPortOf([]container{*m.c}, rp.HTTPGet.Port); ok && p != ports["listen"] {
		v.report(m.where, "readinessProbe port %d is not the --listen port %d", p, ports["listen"])
	}
	if m.c.LivenessProbe == nil {
		v.report(m.where, "livenessProbe is missing")
	}
	if m.w.pod.Metadata.Annotations["prometheus.io/scrape"] == "true" {
		v.report(m.w, "prometheus.io/scrape is true, but the coordinator's /metrics needs an admin key, which annotation-based scraping cannot send")
	}
	if dir, given := m.flags["data-dir"]; !given {
		v.report(m.where, "--data-dir is not given: the metadata store must be on the PersistentVolumeClaim")
	} else if _, vol := mountFor(m.w, m.c, dir); vol == nil || vol.PersistentVolumeClaim == nil {
		v.report(m.where, "--data-dir=%s is not on a PersistentVolumeClaim: tenants, keys and jobs would be lost with the pod", dir)
	}
	v.checkStorageCredentials(m, f.storage)
	return f
}

// targetOf is a Service port's target: targetPort, or the port itself.
func targetOf(sp servicePort) intOrString {
	if sp.TargetPort.name == "" && sp.TargetPort.num == 0 {
		return portNum(sp.Port)
	}
	return sp.TargetPort
}

func (v *validator) checkWorker(m *member, coord *coordinatorFacts) {
	st, ok := m.w.doc.obj.(*statefulSet)
	if !ok {
		v.report(m.where, "weir worker runs in a %s, want a StatefulSet (stable names for --advertise)", m.w.doc.obj.head().Kind)
	}
	for _, name := range []string{"coordinator", "slots", "advertise"} {
		if _, ok := m.flags[name]; !ok {
			v.report(m.where, "--%s is not given", name)
		}
	}
	listenVal, _ := v.value(m, "listen")
	listen, err := listenPort(listenVal)
	if err == nil {
		if _, ok := containerPortOf([]container{*m.c}, portNum(listen)); !ok {
			v.report(m.where, "--listen=%s: port %d is not a containerPort of the container", listenVal, listen)
		}
	}
	if rp := m.c.ReadinessProbe; rp == nil {
		v.report(m.where, "readinessProbe is missing")
	} else if p, ok := probePort(m.c, rp); ok && p != listen {
		v.report(m.where, "readinessProbe port %d is not the --listen port %d", p, listen)
	}
	secret := v.clusterSecret(m)
	if dir, given := m.flags["data-dir"]; !given {
		v.report(m.where, "--data-dir is not given")
	} else if _, vol := mountFor(m.w, m.c, dir); vol == nil || vol.EmptyDir == nil {
		v.report(m.where, "--data-dir=%s is not on an emptyDir: a worker's state is disposable, rebuilt from checkpoints", dir)
	}
	if val, _ := v.value(m, "metrics-listen"); val != "" {
		if p, err := listenPort(val); err == nil {
			if _, ok := containerPortOf([]container{*m.c}, portNum(p)); !ok {
				v.report(m.where, "--metrics-listen=%s: port %d is not a containerPort of the container", val, p)
			}
			ann := m.w.pod.Metadata.Annotations
			if ann["prometheus.io/scrape"] != "true" {
				v.report(m.w, "the pod template lacks the annotation prometheus.io/scrape: \"true\" for the worker's /metrics")
			}
			if got := string(ann["prometheus.io/port"]); got != strconv.Itoa(p) {
				v.report(m.w, "annotation prometheus.io/port is %q, want the --metrics-listen port %d", got, p)
			}
			if got, ok := ann["prometheus.io/path"]; ok && got != "/metrics" {
				v.report(m.w, "annotation prometheus.io/path is %q, want /metrics", got)
			}
		}
	}
	// --advertise must be this pod's stable address: its DNS name under
	// the StatefulSet's governing Service, or its IP.
	advDNS := true
	if adv, ok := m.flags["advertise"]; ok && err == nil {
		if host, port, aerr := net.SplitHostPort(adv); aerr == nil {
			if port != strconv.Itoa(listen) {
				v.report(m.where, "--advertise=%s: port %s is not the --listen port %d", adv, port, listen)
			}
			labels := strings.Split(host, ".")
			switch {
			case host == samplePodIP:
				advDNS = false
			case st == nil:
			case len(labels) >= 2 && labels[0] == m.w.podName && labels[1] == st.Spec.ServiceName && namespaceSuffix(labels[2:]):
			default:
				v.report(m.where, "--advertise host %q is neither $(POD_NAME).%s.$(POD_NAMESPACE).svc nor $(POD_IP): other members could not reach this pod by it (a literal namespace ties the manifests to one namespace)", host, st.Spec.ServiceName)
			}
		}
	}
	if st != nil {
		v.checkGoverningService(m, st, advDNS)
	}
	if coord == nil {
		return
	}
	if m.c.Image != coord.image {
		v.report(m.where, "image %q differs from the coordinator's %q: members of another build may speak another cluster protocol and refuse each other", m.c.Image, coord.image)
	}
	if secret != nil && coord.secret != nil && *secret != *coord.secret {
		v.report(m.where, "the cluster secret comes from Secret %s key %s, the coordinator's from Secret %s key %s: they must share one", secret.Name, secret.Key, coord.secret.Name, coord.secret.Key)
	}
	storage, ok := m.flags["storage"]
	if !ok {
		storage = coord.storage // announced by the coordinator
	}
	v.checkStorageCredentials(m, storage)
	if addr, ok := m.flags["coordinator"]; ok {
		v.checkCoordinatorAddress(m, addr, coord)
	}
}

// checkGoverningService checks the StatefulSet's serviceName: a headless
// Service of its pods, which publishes them before they are ready when
// workers advertise DNS names.
func (v *validator) checkGoverningService(m *member, st *statefulSet, dns bool) {
	s := lookup[*service](v.b, st.Spec.ServiceName)
	switch {
	case s == nil:
		v.report(m.w, "serviceName %q names no Service of the manifests: the pods get no DNS names", st.Spec.ServiceName)
	case !s.headless():
		v.report(m.w, "serviceName %q is not a headless Service (clusterIP: None): the pods get no DNS names", st.Spec.ServiceName)
	case !matches(s.Spec.Selector, m.w.pod.Metadata.Labels):
		v.report(m.w, "serviceName %q does not select the StatefulSet's pods", st.Spec.ServiceName)
	case dns && !s.Spec.PublishNotReadyAddresses:
		v.report(m.w, "Service %q does not set publishNotReadyAddresses: a worker registers before it is ready, and its DNS name would not resolve yet", st.Spec.ServiceName)
	}
}

// namespaceSuffix says whether labels (after SERVICE or POD.SERVICE) are
// empty, NS, NS.svc or NS.svc.DOMAIN... with the pod's own namespace.
func namespaceSuffix(labels []string) bool {
	if len(labels) >= 1 && labels[0] != sampleNamespace {
		return false
	}
	return len(labels) < 2 || labels[1] == "svc"
}

func probePort(c *container, p *probe) (int, bool) {
	switch {
	case p.HTTPGet != nil:
		return containerPortOf([]container{*c}, p.HTTPGet.Port)
	case p.TCPSocket != nil:
		return containerPortOf([]container{*c}, p.TCPSocket.Port)
	}
	return 0, false
}

// checkCoordinatorAddress checks a worker's --coordinator: a Service of
// the coordinator's pods, on a port that leads to its --cluster-listen.
func (v *validator) checkCoordinatorAddress(m *member, addr string, coord *coordinatorFacts) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return // reported with the flag's value
	}
	labels := strings.Split(host, ".")
	var svc *service
	for _, s := range coord.services {
		if labels[0] == s.Metadata.Name && namespaceSuffix(labels[1:]) {
			svc = s
		}
	}
	if svc == nil {
		var known []string
		for _, s := range coord.services {
			known = append(known, s.Metadata.Name)
		}
		v.report(m.where, "--coordinator=%s: %q is not the DNS name of a Service of the coordinator's pods (%s) in the pod's namespace", addr, host, strings.Join(known, ", "))
		return
	}
	for _, sp := range svc.Spec.Ports {
		if strconv.Itoa(sp.Port) != port {
			continue
		}
		p, ok := containerPortOf([]container{*coord.m.c}, targetOf(sp))
		switch {
		case !ok:
			v.report(m.where, "--coordinator=%s: Service %s port %d leads to no port of the coordinator's container", addr, svc.Metadata.Name, sp.Port)
		case p != coord.clusterPort:
			v.report(m.where, "--coordinator=%s: Service %s port %d leads to the coordinator's port %d, not its --cluster-listen port %d", addr, svc.Metadata.Name, sp.Port, p, coord.clusterPort)
		}
		return
	}
	v.report(m.where, "--coordinator=%s: Service %s has no port %s", addr, svc.Metadata.Name, port)
}

// clusterSecret finds where a member's cluster secret comes from
// (--cluster-secret-file in a Secret volume, else WEIR_CLUSTER_SECRET from
// a Secret) and reports it missing; nil when it cannot be told.
func (v *validator) clusterSecret(m *member) *keyRef {
	if file, ok := m.flags["cluster-secret-file"]; ok {
		mnt, vol := mountFor(m.w, m.c, file)
		if mnt == nil || vol == nil || vol.Secret == nil || file == mnt.MountPath {
			v.report(m.where, "--cluster-secret-file=%s is not a file of a mounted Secret volume", file)
			return nil
		}
		rel := strings.TrimPrefix(file, strings.TrimSuffix(mnt.MountPath, "/")+"/")
		key := rel
		if len(vol.Secret.Items) > 0 {
			key = ""
			for _, it := range vol.Secret.Items {
				if it.Path == rel {
					key = it.Key
				}
			}
			if key == "" {
				v.report(m.where, "--cluster-secret-file=%s: volume %q projects no item to path %q", file, vol.Name, rel)
				return nil
			}
		}
		ref := keyRef{Name: vol.Secret.SecretName, Key: key}
		v.checkSecretKey(m.where, "--cluster-secret-file", ref)
		return &ref
	}
	ev, ok := m.env["WEIR_CLUSTER_SECRET"]
	switch {
	case !ok:
		v.report(m.where, "no cluster secret: give --cluster-secret-file or WEIR_CLUSTER_SECRET from a Secret")
	case ev.secret != nil:
		return ev.secret
	}
	return nil // a literal value is reported with the env checks
}

// checkStorageCredentials checks that a member using S3 storage gets the
// credentials checkpoint.OpenStorage reads from the environment.
func (v *validator) checkStorageCredentials(m *member, storage string) {
	if !strings.HasPrefix(storage, "s3://") {
		return
	}
	for _, name := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		if _, ok := m.env[name]; !ok {
			v.report(m.where, "the storage is S3 and %s is not in the container's environment", name)
		}
	}
}

// checkServices checks that every Service port reaches a declared port
// of the pods it selects.
func (v *validator) checkServices(ws []*workload) {
	for _, d := range all[*service](v.b) {
		s := d.obj.(*service)
		if t := s.Spec.Type; t != "" && t != "ClusterIP" {
			v.report(d, "type %q: the manifests expose nothing outside the cluster; do that in an overlay", t)
		}
		if len(s.Spec.Ports) == 0 {
			v.report(d, "the Service has no ports")
		}
		sel := selected(ws, s.Spec.Selector)
		seenNames := map[string]bool{}
		for _, sp := range s.Spec.Ports {
			if len(s.Spec.Ports) > 1 && (sp.Name == "" || seenNames[sp.Name]) {
				v.report(d, "port %d: the ports of a multi-port Service need unique names", sp.Port)
			}
			seenNames[sp.Name] = true
			if sp.Port < 1 || sp.Port > 65535 {
				v.report(d, "port %d is not in 1..65535", sp.Port)
			}
			for _, w := range sel {
				if _, ok := containerPortOf(w.pod.Spec.Containers, targetOf(sp)); !ok {
					v.report(d, "port %d: targetPort %s is not a port the containers of %s declare", sp.Port, targetOf(sp), w)
				}
			}
		}
	}
}
