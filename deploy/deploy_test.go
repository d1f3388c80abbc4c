package deploy

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// commandFlags mirrors the flag sets cmd/weir defines for `weir
// coordinator` (runPlatform) and `weir worker` (runWorker): the manifests
// may give only these flags, and each value must be of its kind. Two real
// flags are left out on purpose so that manifests cannot use them: --demo
// (it reads the examples folder, which the image does not ship) and the
// worker's --protocol-version (it exists for upgrade tests).
var commandFlags = map[string]map[string]flagSpec{
	"coordinator": {
		"listen":              {listenAddr, ":8080"},
		"cluster-listen":      {listenAddr, ":7070"},
		"data-dir":            {absDir, "weir-data"},
		"storage":             {clusterStorage, ""}, // default DATA-DIR/storage
		"cluster-secret-file": {absFile, ""},        // default $WEIR_CLUSTER_SECRET
		"placement":           {placementName, "spread"},
		"heartbeat-timeout":   {positiveDuration, "10s"},
		"slot-wait":           {positiveDuration, "30s"},
		"log-level":           {logLevel, "info"},
		"cache-dir":           {absDir, ""}, // default under $HOME/.cache
		"kafka-brokers":       {brokerList, ""},
	},
	"worker": {
		"coordinator":         {dialAddr, ""},
		"slots":               {positiveInt, "4"},
		"listen":              {listenAddr, ":7071"},
		"advertise":           {dialAddr, ""}, // default the listen address
		"id":                  {nonEmpty, ""}, // default the advertised address
		"metrics-listen":      {optionalListen, ":9249"},
		"data-dir":            {absDir, "weir-worker-data"},
		"storage":             {clusterStorage, ""}, // default the coordinator's
		"cluster-secret-file": {absFile, ""},
		"log-level":           {logLevel, "info"},
		"cache-dir":           {absDir, ""},
	},
}

const manifestsDir = "kubernetes"

func mustLoad(t *testing.T) *bundle {
	t.Helper()
	b, err := loadDir(manifestsDir)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestManifests is the check that matters: the shipped manifests are
// valid. The other tests show that it could fail.
func TestManifests(t *testing.T) {
	b := mustLoad(t)
	for _, p := range validate(b, commandFlags) {
		t.Error(p)
	}
	// The validator must have had something to look at.
	want := []string{
		"ConfigMap/weir-config", "Secret/weir-s3", "Secret/weir-cluster",
		"PersistentVolumeClaim/weir-coordinator-data", "Deployment/weir-coordinator",
		"Service/weir-coordinator", "Service/weir-worker", "StatefulSet/weir-worker",
		"PodDisruptionBudget/weir-worker",
	}
	var got []string
	for _, d := range b.docs {
		got = append(got, d.obj.head().Kind+"/"+d.obj.head().Metadata.Name)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("objects:\n got %v\nwant %v", got, want)
	}
}

// Mutation helpers: each test case loads a fresh bundle and changes it.

func coordinatorDeployment(b *bundle) *deployment { return lookup[*deployment](b, "weir-coordinator") }
func workerStatefulSet(b *bundle) *statefulSet    { return lookup[*statefulSet](b, "weir-worker") }
func coordinator(b *bundle) *container {
	return &coordinatorDeployment(b).Spec.Template.Spec.Containers[0]
}
func worker(b *bundle) *container { return &workerStatefulSet(b).Spec.Template.Spec.Containers[0] }

// setFlag replaces --name=... in c's args, or appends it.
func setFlag(c *container, name, val string) {
	for i, a := range c.Args {
		if strings.HasPrefix(a, "--"+name+"=") {
			c.Args[i] = "--" + name + "=" + val
			return
		}
	}
	c.Args = append(c.Args, "--"+name+"="+val)
}

func dropFlag(c *container, name string) {
	c.Args = slices.DeleteFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--"+name+"=") })
}

func dropEnv(c *container, name string) {
	c.Env = slices.DeleteFunc(c.Env, func(e envVar) bool { return e.Name == name })
}

func env(c *container, name string) *envVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

func removeObject(b *bundle, kind, name string) {
	b.docs = slices.DeleteFunc(b.docs, func(d *document) bool {
		return d.obj.head().Kind == kind && d.obj.head().Metadata.Name == name
	})
}

func ptr[T any](v T) *T { return &v }

// useSecretFile switches a container from WEIR_CLUSTER_SECRET to
// --cluster-secret-file in a volume of Secret weir-cluster.
func useSecretFile(pod *podTemplate, items []keyToPath, file string) {
	c := &pod.Spec.Containers[0]
	dropEnv(c, "WEIR_CLUSTER_SECRET")
	vol := volume{Name: "cluster-secret"}
	vol.Secret = &struct {
		SecretName  string      `yaml:"secretName"`
		Items       []keyToPath `yaml:"items"`
		DefaultMode *int        `yaml:"defaultMode"`
		Optional    bool        `yaml:"optional"`
	}{SecretName: "weir-cluster", Items: items}
	pod.Spec.Volumes = append(pod.Spec.Volumes, vol)
	c.VolumeMounts = append(c.VolumeMounts, volumeMount{Name: "cluster-secret", MountPath: "/etc/weir/cluster", ReadOnly: true})
	setFlag(c, "cluster-secret-file", file)
}

// TestValidateCatches breaks the manifests one way at a time and expects
// the validator to say so.
func TestValidateCatches(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(b *bundle)
		want   string
	}{
		// Every document.
		{"missing apiVersion", func(b *bundle) { lookup[*configMap](b, "weir-config").APIVersion = "" }, "apiVersion is missing"},
		{"wrong apiVersion", func(b *bundle) { coordinatorDeployment(b).APIVersion = "apps/v1beta1" }, `apiVersion is "apps/v1beta1"`},
		{"missing kind", func(b *bundle) { lookup[*secret](b, "weir-s3").Kind = "" }, "kind is missing"},
		{"missing name", func(b *bundle) { lookup[*persistentVolumeClaim](b, "weir-coordinator-data").Metadata.Name = "" }, "metadata.name is missing"},
		{"name not a DNS label", func(b *bundle) { lookup[*configMap](b, "weir-config").Metadata.Name = "Weir_Config" }, "is not a DNS label"},
		{"namespace set", func(b *bundle) { workerStatefulSet(b).Metadata.Namespace = "weir" }, "namespace-agnostic"},
		{"duplicate object", func(b *bundle) { b.docs = append(b.docs, b.docs[0]) }, "is defined twice"},

		// The kustomization.
		{"file not listed", func(b *bundle) { b.files = append(b.files, "extra.yaml") }, "extra.yaml is in the folder but not in resources"},
		{"resource dropped", func(b *bundle) { b.kust.Resources = b.kust.Resources[1:] }, "but not in resources"},
		{"resource without file", func(b *bundle) { b.kust.Resources = append(b.kust.Resources, "gone.yaml") }, `"gone.yaml" is listed but there is no such file`},
		{"remote resource", func(b *bundle) { b.kust.Resources = append(b.kust.Resources, "../base") }, "is not a file of this folder"},
		{"resource twice", func(b *bundle) { b.kust.Resources = append(b.kust.Resources, b.kust.Resources[0]) }, "is listed twice"},

		// Selectors.
		{"workload selector off its pods", func(b *bundle) {
			workerStatefulSet(b).Spec.Selector.MatchLabels["app.kubernetes.io/component"] = "workers"
		}, "does not match the pod template's labels"},
		{"service selector selects nothing", func(b *bundle) {
			lookup[*service](b, "weir-coordinator").Spec.Selector["app.kubernetes.io/component"] = "coord"
		}, "selects the pods of none"},
		{"service selector selects both", func(b *bundle) {
			delete(lookup[*service](b, "weir-worker").Spec.Selector, "app.kubernetes.io/component")
		}, "selects the pods of Deployment/weir-coordinator, StatefulSet/weir-worker"},
		{"overlapping workload selectors", func(b *bundle) {
			delete(coordinatorDeployment(b).Spec.Selector.MatchLabels, "app.kubernetes.io/component")
		}, "also matches the pods of"},
		{"pdb selector", func(b *bundle) {
			lookup[*podDisruptionBudget](b, "weir-worker").Spec.Selector.MatchLabels["app.kubernetes.io/name"] = "flink"
		}, "selects the pods of none"},
		{"spread constraint selector", func(b *bundle) {
			workerStatefulSet(b).Spec.Template.Spec.TopologySpreadConstraints[0].LabelSelector.MatchLabels["app.kubernetes.io/component"] = "x"
		}, "does not match its own pods"},

		// Secrets and ConfigMaps referenced.
		{"secret key dropped", func(b *bundle) { delete(lookup[*secret](b, "weir-cluster").StringData, "secret") }, `Secret "weir-cluster" has no key "secret"`},
		{"secret dropped", func(b *bundle) { removeObject(b, "Secret", "weir-s3") }, `envFrom: Secret "weir-s3" does not exist`},
		{"configmap key dropped", func(b *bundle) { delete(lookup[*configMap](b, "weir-config").Data, "worker-slots") }, `ConfigMap "weir-config" has no key "worker-slots"`},
		{"configmap dropped", func(b *bundle) { removeObject(b, "ConfigMap", "weir-config") }, `ConfigMap "weir-config" does not exist`},
		{"literal cluster secret", func(b *bundle) {
			e := env(worker(b), "WEIR_CLUSTER_SECRET")
			e.ValueFrom, e.Value = nil, ptr(str("hunter2"))
		}, "env WEIR_CLUSTER_SECRET holds a credential as a literal value"},
		{"no cluster secret", func(b *bundle) { dropEnv(worker(b), "WEIR_CLUSTER_SECRET") }, "no cluster secret"},
		{"different cluster secrets", func(b *bundle) {
			env(worker(b), "WEIR_CLUSTER_SECRET").ValueFrom.SecretKeyRef.Name = "weir-s3"
			env(worker(b), "WEIR_CLUSTER_SECRET").ValueFrom.SecretKeyRef.Key = "AWS_SECRET_ACCESS_KEY"
		}, "they must share one"},
		{"secret file not in a secret volume", func(b *bundle) {
			dropEnv(worker(b), "WEIR_CLUSTER_SECRET")
			setFlag(worker(b), "cluster-secret-file", "/var/cache/weir/secret")
		}, "is not a file of a mounted Secret volume"},
		{"secret file not projected", func(b *bundle) {
			useSecretFile(&workerStatefulSet(b).Spec.Template, []keyToPath{{Key: "secret", Path: "token"}}, "/etc/weir/cluster/secret")
		}, `projects no item to path "secret"`},
		{"secret file key missing", func(b *bundle) {
			useSecretFile(&workerStatefulSet(b).Spec.Template, nil, "/etc/weir/cluster/token")
		}, `has no key "token"`},
		{"no S3 credentials", func(b *bundle) { worker(b).EnvFrom = nil }, "the storage is S3 and AWS_ACCESS_KEY_ID is not in the container's environment"},
		{"secret value in args", func(b *bundle) { setFlag(worker(b), "id", "$(WEIR_CLUSTER_SECRET)") }, "puts Secret weir-cluster's value in the arguments"},
		{"undefined variable", func(b *bundle) { dropEnv(worker(b), "WEIR_SLOTS") }, "$(WEIR_SLOTS) is not defined"},
		{"resource field not set", func(b *bundle) { delete(worker(b).Resources.Limits, "memory") }, "resourceFieldRef limits.memory is not set"},

		// The coordinator.
		{"two coordinators", func(b *bundle) { coordinatorDeployment(b).Spec.Replicas = ptr(2) }, "replicas must be exactly 1"},
		{"replicas unset", func(b *bundle) { coordinatorDeployment(b).Spec.Replicas = nil }, "replicas must be exactly 1"},
		{"rolling coordinator", func(b *bundle) { coordinatorDeployment(b).Spec.Strategy.Type = "RollingUpdate" }, "want Recreate"},
		{"coordinator command", func(b *bundle) { coordinator(b).Args[0] = "standalone" }, `args start with "standalone"`},
		{"entrypoint replaced", func(b *bundle) { coordinator(b).Command = []string{"/bin/sh", "-c"} }, "replaces the image's entrypoint"},
		{"no storage", func(b *bundle) { dropFlag(coordinator(b), "storage") }, "--storage is not given"},
		{"local storage", func(b *bundle) {
			lookup[*configMap](b, "weir-config").Data["storage"] = "/var/lib/weir/storage"
		}, "pods share no filesystem"},
		{"bad storage URL", func(b *bundle) {
			lookup[*configMap](b, "weir-config").Data["storage"] = "s3://weir/cluster?endpoint=minio:9000&tls=false"
		}, `unknown parameter "tls"`},
		{"bad placement", func(b *bundle) { lookup[*configMap](b, "weir-config").Data["placement"] = "packed" }, `--placement: "packed" is not spread or pack`},
		{"bad heartbeat", func(b *bundle) { setFlag(coordinator(b), "heartbeat-timeout", "10") }, "--heartbeat-timeout"},
		{"bad kafka brokers", func(b *bundle) { lookup[*configMap](b, "weir-config").Data["kafka-brokers"] = "kafka:9092,kafka" }, `broker "kafka"`},
		{"cluster-listen not a container port", func(b *bundle) { setFlag(coordinator(b), "cluster-listen", ":7000") }, "--cluster-listen=:7000: port 7000 is not a containerPort"},
		{"service targets a missing port", func(b *bundle) {
			lookup[*service](b, "weir-coordinator").Spec.Ports[1].TargetPort = portNum(7071)
		}, "targetPort 7071 is not a port the containers"},
		{"service targets a missing name", func(b *bundle) {
			lookup[*service](b, "weir-coordinator").Spec.Ports[0].TargetPort = portName("api")
		}, `targetPort "api" is not a port`},
		{"cluster port not exposed", func(b *bundle) {
			s := lookup[*service](b, "weir-coordinator")
			s.Spec.Ports = s.Spec.Ports[:1]
		}, "no Service port targets the --cluster-listen port 7070"},
		{"readiness not the health route", func(b *bundle) { coordinator(b).ReadinessProbe.HTTPGet.Path = "/healthz" }, "readinessProbe must be httpGet /v1/healthz"},
		{"probe on an undeclared port", func(b *bundle) { coordinator(b).LivenessProbe.HTTPGet.Port = portName("web") }, `livenessProbe port "web" is not a port`},
		{"probe with two handlers", func(b *bundle) {
			p := worker(b).LivenessProbe
			p.HTTPGet = coordinator(b).ReadinessProbe.HTTPGet
		}, "livenessProbe needs exactly one handler"},
		{"coordinator scraped by annotation", func(b *bundle) {
			coordinatorDeployment(b).Spec.Template.Metadata.Annotations = strMap{"prometheus.io/scrape": "true"}
		}, "needs an admin key"},
		{"metadata on an emptyDir", func(b *bundle) { setFlag(coordinator(b), "data-dir", "/var/cache/weir/data") }, "is not on a PersistentVolumeClaim"},
		{"data-dir relative", func(b *bundle) { setFlag(coordinator(b), "data-dir", "weir-data") }, "is not absolute"},
		{"no fsGroup", func(b *bundle) { coordinatorDeployment(b).Spec.Template.Spec.SecurityContext.FSGroup = nil }, "without securityContext.fsGroup"},
		{"claim without PVC", func(b *bundle) { removeObject(b, "PersistentVolumeClaim", "weir-coordinator-data") }, `claims PersistentVolumeClaim "weir-coordinator-data", which the manifests do not define`},
		{"cache on the read-only root", func(b *bundle) { dropFlag(coordinator(b), "cache-dir") }, "--cache-dir is not given and the root filesystem is read-only"},
		{"cache on a read-only mount", func(b *bundle) { coordinator(b).VolumeMounts[1].ReadOnly = true }, "--cache-dir=/var/cache/weir is not on a writable volume"},

		// The workers.
		{"worker command", func(b *bundle) { worker(b).Args[0] = "workers" }, `args start with "workers"`},
		{"unknown flag", func(b *bundle) { setFlag(worker(b), "slot", "4") }, "--slot is not a flag of weir worker"},
		{"coordinator-only flag", func(b *bundle) { setFlag(worker(b), "placement", "spread") }, "--placement is not a flag of weir worker"},
		{"duplicate flag", func(b *bundle) { worker(b).Args = append(worker(b).Args, "--slots=8") }, "--slots is given twice"},
		{"positional argument", func(b *bundle) { worker(b).Args = append(worker(b).Args, "extra") }, `argument "extra" is not a flag`},
		{"no slots", func(b *bundle) { dropFlag(worker(b), "slots") }, "--slots is not given"},
		{"zero slots", func(b *bundle) { lookup[*configMap](b, "weir-config").Data["worker-slots"] = "0" }, `--slots: "0" is not a positive integer`},
		{"no coordinator", func(b *bundle) { dropFlag(worker(b), "coordinator") }, "--coordinator is not given"},
		{"coordinator by wrong name", func(b *bundle) { setFlag(worker(b), "coordinator", "weir-coord:7070") }, `"weir-coord" is not the DNS name of a Service of the coordinator's pods`},
		{"coordinator in a literal namespace", func(b *bundle) { setFlag(worker(b), "coordinator", "weir-coordinator.weir.svc:7070") }, "is not the DNS name of a Service"},
		{"coordinator on the API port", func(b *bundle) { setFlag(worker(b), "coordinator", "weir-coordinator:8080") }, "not its --cluster-listen port 7070"},
		{"coordinator on a port the Service lacks", func(b *bundle) { setFlag(worker(b), "coordinator", "weir-coordinator:7071") }, "has no port 7071"},
		{"no advertise", func(b *bundle) { dropFlag(worker(b), "advertise") }, "--advertise is not given"},
		{"advertise wrong port", func(b *bundle) {
			setFlag(worker(b), "advertise", "$(POD_NAME).weir-worker.$(POD_NAMESPACE).svc:7070")
		}, "is not the --listen port 7071"},
		{"advertise the service", func(b *bundle) { setFlag(worker(b), "advertise", "weir-worker:7071") }, "is neither $(POD_NAME).weir-worker.$(POD_NAMESPACE).svc nor $(POD_IP)"},
		{"advertise a literal namespace", func(b *bundle) { setFlag(worker(b), "advertise", "$(POD_NAME).weir-worker.weir.svc:7071") }, "a literal namespace"},
		{"listen not a container port", func(b *bundle) {
			setFlag(worker(b), "listen", ":7072")
			setFlag(worker(b), "advertise", "$(POD_NAME).weir-worker.$(POD_NAMESPACE).svc:7072")
		}, "--listen=:7072: port 7072 is not a containerPort"},
		{"serviceName mismatch", func(b *bundle) { workerStatefulSet(b).Spec.ServiceName = "weir-workers" }, `serviceName "weir-workers" names no Service`},
		{"serviceName names no Service", func(b *bundle) {
			workerStatefulSet(b).Spec.ServiceName = "weir-workers"
			setFlag(worker(b), "advertise", "$(POD_NAME).weir-workers.$(POD_NAMESPACE).svc:7071")
		}, `serviceName "weir-workers" names no Service`},
		{"serviceName not headless", func(b *bundle) { lookup[*service](b, "weir-worker").Spec.ClusterIP = "" }, "is not a headless Service"},
		{"not-ready pods unpublished", func(b *bundle) { lookup[*service](b, "weir-worker").Spec.PublishNotReadyAddresses = false }, "publishNotReadyAddresses"},
		{"workers in a Deployment", func(b *bundle) {
			st := workerStatefulSet(b)
			d := &deployment{header: st.header}
			d.Kind = "Deployment"
			d.Spec.Replicas, d.Spec.Selector, d.Spec.Template = st.Spec.Replicas, st.Spec.Selector, st.Spec.Template
			d.Spec.Strategy.Type = "RollingUpdate"
			for _, doc := range b.docs {
				if doc.obj == object(st) {
					doc.obj = d
				}
			}
		}, "weir worker runs in a Deployment, want a StatefulSet"},
		{"worker state on a volume", func(b *bundle) { setFlag(worker(b), "data-dir", "/srv/weir") }, "--data-dir=/srv/weir is not on an emptyDir"},
		{"metrics port undeclared", func(b *bundle) { setFlag(worker(b), "metrics-listen", ":9250") }, "port 9250 is not a containerPort"},
		{"metrics annotation port", func(b *bundle) {
			workerStatefulSet(b).Spec.Template.Metadata.Annotations["prometheus.io/port"] = "9090"
		}, `prometheus.io/port is "9090", want the --metrics-listen port 9249`},
		{"metrics not scraped", func(b *bundle) {
			delete(workerStatefulSet(b).Spec.Template.Metadata.Annotations, "prometheus.io/scrape")
		}, "lacks the annotation prometheus.io/scrape"},
		{"different images", func(b *bundle) { worker(b).Image = "ghcr.io/weirstream/weir:v0.1.0" }, "differs from the coordinator's"},
		{"readiness on the metrics port", func(b *bundle) { worker(b).ReadinessProbe.TCPSocket.Port = portName("metrics") }, "readinessProbe port 9249 is not the --listen port 7071"},

		// Pods in general.
		{"root allowed", func(b *bundle) {
			workerStatefulSet(b).Spec.Template.Spec.SecurityContext.RunAsNonRoot = ptr(false)
		}, "runAsNonRoot is not true"},
		{"no grace period", func(b *bundle) { workerStatefulSet(b).Spec.Template.Spec.TerminationGracePeriodSeconds = nil }, "terminationGracePeriodSeconds is not set"},
		{"port name too long", func(b *bundle) {
			worker(b).Ports[1].Name = "prometheus-metrics"
			worker(b).LivenessProbe.TCPSocket.Port = portName("prometheus-metrics")
		}, `port name "prometheus-metrics" is not an IANA service name`},
		{"mount of a missing volume", func(b *bundle) { worker(b).VolumeMounts[0].Name = "state" }, `volumeMount "state" names no volume`},
		{"unmounted volume", func(b *bundle) { worker(b).VolumeMounts = worker(b).VolumeMounts[:2] }, `volume "tmp" is not mounted`},
		{"no memory limit", func(b *bundle) { delete(coordinator(b).Resources.Limits, "memory") }, "resources.limits.memory is not set"},
		{"no cpu request", func(b *bundle) { delete(worker(b).Resources.Requests, "cpu") }, "resources.requests.cpu is not set"},
		{"bad quantity", func(b *bundle) { worker(b).Resources.Requests["memory"] = "2 GB" }, `resources.requests.memory "2 GB" is not a quantity`},
		{"service exposed outside", func(b *bundle) { lookup[*service](b, "weir-coordinator").Spec.Type = "LoadBalancer" }, "expose nothing outside the cluster"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := mustLoad(t)
			tc.mutate(b)
			probs := validate(b, commandFlags)
			for _, p := range probs {
				if strings.Contains(p, tc.want) {
					return
				}
			}
			t.Errorf("no problem mentions %q; got:\n  %s", tc.want, strings.Join(probs, "\n  "))
		})
	}
}

// TestValidateAccepts changes the manifests in ways that are still right:
// the validator must not be stricter than Kubernetes and weir are.
func TestValidateAccepts(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(b *bundle)
	}{
		{"cluster secret as a file", func(b *bundle) {
			useSecretFile(&coordinatorDeployment(b).Spec.Template, nil, "/etc/weir/cluster/secret")
			useSecretFile(&workerStatefulSet(b).Spec.Template, nil, "/etc/weir/cluster/secret")
		}},
		{"cluster secret as a projected file", func(b *bundle) {
			useSecretFile(&workerStatefulSet(b).Spec.Template, []keyToPath{{Key: "secret", Path: "token"}}, "/etc/weir/cluster/token")
		}},
		{"advertise the pod IP", func(b *bundle) { setFlag(worker(b), "advertise", "$(POD_IP):7071") }},
		{"advertise a fully qualified name", func(b *bundle) {
			setFlag(worker(b), "advertise", "$(POD_NAME).weir-worker.$(POD_NAMESPACE).svc.cluster.local:7071")
		}},
		{"coordinator by fully qualified name", func(b *bundle) {
			setFlag(worker(b), "coordinator", "weir-coordinator.$(POD_NAMESPACE).svc.cluster.local:7070")
		}},
		{"flag and value as two arguments", func(b *bundle) {
			dropFlag(worker(b), "slots")
			worker(b).Args = append(worker(b).Args, "--slots", "$(WEIR_SLOTS)")
		}},
		{"numeric target ports", func(b *bundle) {
			s := lookup[*service](b, "weir-coordinator")
			s.Spec.Ports[0].TargetPort, s.Spec.Ports[1].TargetPort = portNum(8080), portNum(7070)
		}},
		{"metrics off", func(b *bundle) {
			setFlag(worker(b), "metrics-listen", "")
			delete(workerStatefulSet(b).Spec.Template.Metadata.Annotations, "prometheus.io/scrape")
		}},
		{"workers with their own storage", func(b *bundle) { setFlag(worker(b), "storage", "s3://weir/cluster?endpoint=minio:9000&secure=false") }},
		{"kafka brokers", func(b *bundle) {
			lookup[*configMap](b, "weir-config").Data["kafka-brokers"] = "kafka-0.kafka:9092, kafka-1.kafka:9092"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := mustLoad(t)
			tc.mutate(b)
			for _, p := range validate(b, commandFlags) {
				t.Error(p)
			}
		})
	}
}

// TestParseManifests covers the loader: strict decoding, string typing,
// known kinds, empty documents and line numbers.
func TestParseManifests(t *testing.T) {
	cases := []struct {
		name      string
		yaml      string
		wantErr   string
		wantLines []int
	}{
		{"documents and empty ones", "# header\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n# nothing\n---\n\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: b}\nstringData: {k: v}\n", "", []int{3, 11}},
		{"misspelt field", "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  selectr: {a: b}\n", "field selectr not found", nil},
		{"misspelt nested field", "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: a}\nspec:\n  template:\n    spec:\n      containers:\n        - name: c\n          readinessProbes: {}\n", "line 9: field readinessProbes not found", nil},
		{"unquoted annotation", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  annotations: {prometheus.io/scrape: true}\n", `"true" is a !!bool where Kubernetes wants a string: quote it`, nil},
		{"unquoted env value", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  template:\n    spec:\n      containers:\n        - name: c\n          env: [{name: N, value: 4}]\n", `"4" is a !!int`, nil},
		{"port neither number nor name", "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  ports: [{port: 1, targetPort: [1]}]\n", "neither a port number nor a port name", nil},
		{"unknown kind", "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: a}\n", `kind "Ingress" is not one the manifests may use`, nil},
		{"string for a number", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec: {replicas: \"1\"}\n", "cannot unmarshal", nil},
		{"broken YAML", "apiVersion: v1\nkind: [\n", "f.yaml: document 1", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := parseManifests("f.yaml", []byte(tc.yaml))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var lines []int
			for _, d := range docs {
				lines = append(lines, d.line)
			}
			if !slices.Equal(lines, tc.wantLines) {
				t.Errorf("document lines %v, want %v", lines, tc.wantLines)
			}
		})
	}
}

func TestParseCommand(t *testing.T) {
	cases := []struct {
		name      string
		args      []string
		wantCmd   string
		wantFlags map[string]string
		wantProbs []string
	}{
		{"equals forms", []string{"worker", "--slots=4", "-listen=:7071"}, "worker", map[string]string{"slots": "4", "listen": ":7071"}, nil},
		{"separate value", []string{"worker", "--slots", "4", "--metrics-listen", ""}, "worker", map[string]string{"slots": "4", "metrics-listen": ""}, nil},
		{"value with equals", []string{"coordinator", "--storage=s3://b/p?endpoint=h:1&secure=false"}, "coordinator", map[string]string{"storage": "s3://b/p?endpoint=h:1&secure=false"}, nil},
		{"empty", nil, "", nil, []string{"args are empty"}},
		{"not a command", []string{"--slots=4"}, "--slots=4", nil, []string{"not a weir server command"}},
		{"unknown flag", []string{"worker", "--placement=pack"}, "worker", map[string]string{}, []string{"--placement is not a flag of weir worker"}},
		{"duplicate", []string{"worker", "--slots=1", "--slots=2"}, "worker", map[string]string{"slots": "2"}, []string{"--slots is given twice"}},
		{"positional", []string{"coordinator", "job.yaml"}, "coordinator", map[string]string{}, []string{`argument "job.yaml" is not a flag`}},
		{"three dashes", []string{"coordinator", "---listen=:1"}, "coordinator", map[string]string{}, []string{"is not a flag"}},
		{"missing value", []string{"worker", "--slots"}, "worker", map[string]string{}, []string{"flag --slots has no value"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd, flags, probs := parseCommand(tc.args, commandFlags)
			if cmd != tc.wantCmd {
				t.Errorf("command %q, want %q", cmd, tc.wantCmd)
			}
			if tc.wantFlags != nil && !mapsEqual(flags, tc.wantFlags) {
				t.Errorf("flags %v, want %v", flags, tc.wantFlags)
			}
			if len(probs) != len(tc.wantProbs) {
				t.Fatalf("problems %q, want %d like %q", probs, len(tc.wantProbs), tc.wantProbs)
			}
			for i, want := range tc.wantProbs {
				if !strings.Contains(probs[i], want) {
					t.Errorf("problem %q, want one containing %q", probs[i], want)
				}
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestExpand(t *testing.T) {
	env := map[string]envValue{
		"POD_NAME": {value: "w-0"},
		"EMPTY":    {value: ""},
		"S":        {secret: &keyRef{Name: "s", Key: "k"}},
	}
	cases := []struct {
		in, want string
		probs    int
	}{
		{"--advertise=$(POD_NAME).svc:1", "--advertise=w-0.svc:1", 0},
		{"$(POD_NAME)$(POD_NAME)", "w-0w-0", 0},
		{"--kafka-brokers=$(EMPTY)", "--kafka-brokers=", 0},
		{"$$(POD_NAME)", "$(POD_NAME)", 0},
		{"cost: $5 $", "cost: $5 $", 0},
		{"$(POD_NAME", "$(POD_NAME", 0},
		{"$(NOPE)", "$(NOPE)", 1},
		{"--x=$(S)", "--x=<secret>", 1},
	}
	for _, tc := range cases {
		got, probs := expand(tc.in, env)
		if got != tc.want || len(probs) != tc.probs {
			t.Errorf("expand(%q) = %q with %d problems %q, want %q with %d", tc.in, got, len(probs), probs, tc.want, tc.probs)
		}
	}
}

func TestCheckValue(t *testing.T) {
	cases := []struct {
		kind flagKind
		val  string
		ok   bool
	}{
		{listenAddr, ":8080", true},
		{listenAddr, "0.0.0.0:7070", true},
		{listenAddr, "8080", false},
		{listenAddr, ":http", false},
		{listenAddr, ":70000", false},
		{optionalListen, "", true},
		{optionalListen, ":9249", true},
		{optionalListen, "9249", false},
		{dialAddr, "weir-coordinator:7070", true},
		{dialAddr, ":7070", false},
		{dialAddr, "weir-coordinator", false},
		{absDir, "/var/lib/weir", true},
		{absDir, "weir-data", false},
		{absFile, "/etc/weir/secret", true},
		{positiveInt, "4", true},
		{positiveInt, "0", false},
		{positiveInt, "four", false},
		{positiveDuration, "10s", true},
		{positiveDuration, "10", false},
		{positiveDuration, "-1s", false},
		{logLevel, "debug", true},
		{logLevel, "WARN", true},
		{logLevel, "verbose", false},
		{placementName, "spread", true},
		{placementName, "pack", true},
		{placementName, "random", false},
		{nonEmpty, "w-0", true},
		{nonEmpty, "", false},
		{clusterStorage, "s3://weir", true},
		{clusterStorage, "s3://weir/cluster/prod?endpoint=minio.minio.svc:9000&secure=false&region=us-east-1", true},
		{clusterStorage, "s3://weir/cluster?endpoint=https://minio:9000", false},
		{clusterStorage, "s3://weir/cluster?secure=maybe", false},
		{clusterStorage, "s3://Weir_Bucket/x", false},
		{clusterStorage, "s3://key:secret@weir/x", false},
		{clusterStorage, "file:///var/lib/weir/storage", false},
		{clusterStorage, "/var/lib/weir/storage", false},
		{brokerList, "", true},
		{brokerList, "a:9092, b:9092", true},
		{brokerList, "a:9092,b", false},
	}
	for _, tc := range cases {
		err := checkValue(tc.kind, tc.val)
		if (err == nil) != tc.ok {
			t.Errorf("checkValue(%d, %q) = %v, want ok=%v", tc.kind, tc.val, err, tc.ok)
		}
	}
}

// TestSecretTemplateHoldsPlaceholders keeps real credentials out of the
// repository: every value of the Secret template is marked as one to
// replace.
func TestSecretTemplateHoldsPlaceholders(t *testing.T) {
	b := mustLoad(t)
	n := 0
	for _, d := range all[*secret](b) {
		s := d.obj.(*secret)
		if len(s.Data) > 0 {
			t.Errorf("%s: use stringData, so the placeholders stay readable", d)
		}
		for k, v := range s.StringData {
			n++
			if !strings.Contains(string(v), "REPLACE-ME") {
				t.Errorf("%s: key %s holds %q, not a REPLACE-ME placeholder", d, k, v)
			}
		}
	}
	if n == 0 {
		t.Error("the manifests hold no Secret values")
	}
}

// TestHealthRouteExists keeps the coordinator's probes on a route the
// REST API really serves without a key.
func TestHealthRouteExists(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "platform", "api", "routes.go"))
	if err != nil {
		t.Fatal(err)
	}
	route := regexp.MustCompile(`\{"GET", "` + regexp.QuoteMeta(healthPath) + `", public,`)
	if !route.Match(src) {
		t.Errorf("platform/api/routes.go has no public GET %s route: the coordinator's probes use it", healthPath)
	}
}

// TestDockerfile checks the image the manifests run: a static build of
// cmd/weir with the toolchain go.mod asks for, run as non-root with /weir
// as its entrypoint (the manifests give only args).
func TestDockerfile(t *testing.T) {
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if goVersion == nil {
		t.Fatal("go.mod has no go directive")
	}
	var froms, users []string
	var run, entrypoint string
	sc := bufio.NewScanner(bytes.NewReader(df))
	var cont strings.Builder
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		if s, ok := strings.CutSuffix(line, `\`); ok {
			cont.WriteString(s + " ")
			continue
		}
		cont.WriteString(line)
		instr := cont.String()
		cont.Reset()
		word, rest, _ := strings.Cut(instr, " ")
		switch strings.ToUpper(word) {
		case "FROM":
			froms = append(froms, rest)
		case "USER":
			users = append(users, rest)
		case "RUN":
			if strings.Contains(rest, "go build") {
				run = rest
			}
		case "ENTRYPOINT":
			entrypoint = rest
		}
	}
	if len(froms) < 2 {
		t.Fatalf("FROM lines %q: want a build stage and a runtime stage", froms)
	}
	if want := "golang:" + string(goVersion[1]) + " "; !strings.HasPrefix(froms[0]+" ", want) {
		t.Errorf("build stage FROM %q, want %q (go.mod's go %s)", froms[0], strings.TrimSpace(want), goVersion[1])
	}
	if last := froms[len(froms)-1]; !strings.Contains(last, "distroless/static") && last != "scratch" {
		t.Errorf("runtime stage FROM %q, want distroless/static or scratch", last)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-o /weir", "./cmd/weir"} {
		if !strings.Contains(run, want) {
			t.Errorf("the go build RUN %q lacks %q", run, want)
		}
	}
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1], "0") || strings.HasPrefix(users[len(users)-1], "root") {
		t.Errorf("USER %q: the image must run as non-root", users)
	}
	if entrypoint != `["/weir"]` {
		t.Errorf(`ENTRYPOINT %s, want ["/weir"]`, entrypoint)
	}
}
