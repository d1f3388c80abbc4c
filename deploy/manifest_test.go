package deploy

// The subset of the Kubernetes object schema the manifests in kubernetes/
// use, and the loader that fills it. Documents are decoded strictly: a
// field not modelled here is an error, because a misspelt field
// (readinessProbes, secretKeyref) is silently ignored by nothing but
// kubectl's server-side validation, which a unit test does not have. A
// real Kubernetes field the manifests start to use is added here.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// str is a string that must be written as a YAML string. Kubernetes
// rejects `value: 4` or `prometheus.io/scrape: true` where its schema
// wants a string, but yaml.v3 would quietly turn them into "4" and "true".
type str string

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *str) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return fmt.Errorf("line %d: %q is a %s where Kubernetes wants a string: quote it", n.Line, n.Value, n.ShortTag())
	}
	*s = str(n.Value)
	return nil
}

// strMap is a map of strings (labels, annotations, ConfigMap data).
type strMap map[string]str

// intOrString is Kubernetes' IntOrString (a port number or a port name).
type intOrString struct {
	num  int
	name string
}

// portNum and portName build intOrString values.
func portNum(n int) intOrString     { return intOrString{num: n} }
func portName(s string) intOrString { return intOrString{name: s} }

// UnmarshalYAML implements yaml.Unmarshaler.
func (p *intOrString) UnmarshalYAML(n *yaml.Node) error {
	switch {
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int":
		v, err := strconv.Atoi(n.Value)
		if err != nil {
			return fmt.Errorf("line %d: %q: %w", n.Line, n.Value, err)
		}
		*p = intOrString{num: v}
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" && n.Value != "":
		*p = intOrString{name: n.Value}
	default:
		return fmt.Errorf("line %d: %q is neither a port number nor a port name", n.Line, n.Value)
	}
	return nil
}

func (p intOrString) String() string {
	if p.name != "" {
		return strconv.Quote(p.name)
	}
	return strconv.Itoa(p.num)
}

// header is what every object has.
type header struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
}

func (h *header) head() *header { return h }

// object is any modelled Kubernetes object.
type object interface{ head() *header }

type objectMeta struct {
	Name        string `yaml:"name"`
	Namespace   string `yaml:"namespace"`
	Labels      strMap `yaml:"labels"`
	Annotations strMap `yaml:"annotations"`
}

type labelSelector struct {
	MatchLabels strMap `yaml:"matchLabels"`
}

type configMap struct {
	header `yaml:",inline"`
	Data   strMap `yaml:"data"`
}

type secret struct {
	header     `yaml:",inline"`
	Type       string `yaml:"type"`
	Data       strMap `yaml:"data"`
	StringData strMap `yaml:"stringData"`
}

// keys are the Secret's keys, whichever of data and stringData hold them.
func (s *secret) keys() []string {
	var keys []string
	for k := range s.Data {
		keys = append(keys, k)
	}
	for k := range s.StringData {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

type persistentVolumeClaim struct {
	header `yaml:",inline"`
	Spec   struct {
		AccessModes      []string             `yaml:"accessModes"`
		StorageClassName *string              `yaml:"storageClassName"`
		Resources        resourceRequirements `yaml:"resources"`
	} `yaml:"spec"`
}

type service struct {
	header `yaml:",inline"`
	Spec   struct {
		Type                     string        `yaml:"type"`
		ClusterIP                string        `yaml:"clusterIP"`
		PublishNotReadyAddresses bool          `yaml:"publishNotReadyAddresses"`
		Selector                 strMap        `yaml:"selector"`
		Ports                    []servicePort `yaml:"ports"`
	} `yaml:"spec"`
}

type servicePort struct {
	Name        string      `yaml:"name"`
	Port        int         `yaml:"port"`
	TargetPort  intOrString `yaml:"targetPort"`
	Protocol    string      `yaml:"protocol"`
	AppProtocol string      `yaml:"appProtocol"`
}

// headless says the Service has no cluster IP: DNS names its pods.
func (s *service) headless() bool { return s.Spec.ClusterIP == "None" }

type deployment struct {
	header `yaml:",inline"`
	Spec   struct {
		Replicas             *int          `yaml:"replicas"`
		RevisionHistoryLimit *int          `yaml:"revisionHistoryLimit"`
		Selector             labelSelector `yaml:"selector"`
		Strategy             struct {
			Type string `yaml:"type"`
		} `yaml:"strategy"`
		Template podTemplate `yaml:"template"`
	} `yaml:"spec"`
}

type statefulSet struct {
	header `yaml:",inline"`
	Spec   struct {
		Replicas             *int          `yaml:"replicas"`
		ServiceName          string        `yaml:"serviceName"`
		PodManagementPolicy  string        `yaml:"podManagementPolicy"`
		RevisionHistoryLimit *int          `yaml:"revisionHistoryLimit"`
		Selector             labelSelector `yaml:"selector"`
		UpdateStrategy       struct {
			Type string `yaml:"type"`
		} `yaml:"updateStrategy"`
		Template podTemplate `yaml:"template"`
	} `yaml:"spec"`
}

type podDisruptionBudget struct {
	header `yaml:",inline"`
	Spec   struct {
		MaxUnavailable *intOrString  `yaml:"maxUnavailable"`
		MinAvailable   *intOrString  `yaml:"minAvailable"`
		Selector       labelSelector `yaml:"selector"`
	} `yaml:"spec"`
}

type podTemplate struct {
	Metadata objectMeta `yaml:"metadata"`
	Spec     podSpec    `yaml:"spec"`
}

type podSpec struct {
	AutomountServiceAccountToken  *bool                      `yaml:"automountServiceAccountToken"`
	EnableServiceLinks            *bool                      `yaml:"enableServiceLinks"`
	TerminationGracePeriodSeconds *int                       `yaml:"terminationGracePeriodSeconds"`
	TopologySpreadConstraints     []topologySpreadConstraint `yaml:"topologySpreadConstraints"`
	SecurityContext               *podSecurityContext        `yaml:"securityContext"`
	Containers                    []container                `yaml:"containers"`
	Volumes                       []volume                   `yaml:"volumes"`
}

type topologySpreadConstraint struct {
	MaxSkew           int           `yaml:"maxSkew"`
	TopologyKey       string        `yaml:"topologyKey"`
	WhenUnsatisfiable string        `yaml:"whenUnsatisfiable"`
	LabelSelector     labelSelector `yaml:"labelSelector"`
}

type podSecurityContext struct {
	RunAsNonRoot   *bool `yaml:"runAsNonRoot"`
	RunAsUser      *int  `yaml:"runAsUser"`
	RunAsGroup     *int  `yaml:"runAsGroup"`
	FSGroup        *int  `yaml:"fsGroup"`
	SeccompProfile *struct {
		Type string `yaml:"type"`
	} `yaml:"seccompProfile"`
}

type container struct {
	Name            string                    `yaml:"name"`
	Image           string                    `yaml:"image"`
	ImagePullPolicy string                    `yaml:"imagePullPolicy"`
	Command         []string                  `yaml:"command"`
	Args            []string                  `yaml:"args"`
	Env             []envVar                  `yaml:"env"`
	EnvFrom         []envFromSource           `yaml:"envFrom"`
	Ports           []containerPort           `yaml:"ports"`
	ReadinessProbe  *probe                    `yaml:"readinessProbe"`
	LivenessProbe   *probe                    `yaml:"livenessProbe"`
	StartupProbe    *probe                    `yaml:"startupProbe"`
	Resources       resourceRequirements      `yaml:"resources"`
	SecurityContext *containerSecurityContext `yaml:"securityContext"`
	VolumeMounts    []volumeMount             `yaml:"volumeMounts"`
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     *str   `yaml:"value"`
	ValueFrom *struct {
		FieldRef *struct {
			FieldPath string `yaml:"fieldPath"`
		} `yaml:"fieldRef"`
		ResourceFieldRef *struct {
			Resource string `yaml:"resource"`
			Divisor  str    `yaml:"divisor"`
		} `yaml:"resourceFieldRef"`
		SecretKeyRef    *keyRef `yaml:"secretKeyRef"`
		ConfigMapKeyRef *keyRef `yaml:"configMapKeyRef"`
	} `yaml:"valueFrom"`
}

type keyRef struct {
	Name     string `yaml:"name"`
	Key      string `yaml:"key"`
	Optional bool   `yaml:"optional"`
}

type envFromSource struct {
	Prefix       string   `yaml:"prefix"`
	SecretRef    *nameRef `yaml:"secretRef"`
	ConfigMapRef *nameRef `yaml:"configMapRef"`
}

type nameRef struct {
	Name     string `yaml:"name"`
	Optional bool   `yaml:"optional"`
}

type containerPort struct {
	Name          string `yaml:"name"`
	ContainerPort int    `yaml:"containerPort"`
	Protocol      string `yaml:"protocol"`
}

type probe struct {
	HTTPGet *struct {
		Path   string      `yaml:"path"`
		Port   intOrString `yaml:"port"`
		Scheme string      `yaml:"scheme"`
	} `yaml:"httpGet"`
	TCPSocket *struct {
		Port intOrString `yaml:"port"`
	} `yaml:"tcpSocket"`
	InitialDelaySeconds int `yaml:"initialDelaySeconds"`
	PeriodSeconds       int `yaml:"periodSeconds"`
	TimeoutSeconds      int `yaml:"timeoutSeconds"`
	SuccessThreshold    int `yaml:"successThreshold"`
	FailureThreshold    int `yaml:"failureThreshold"`
}

type resourceRequirements struct {
	Requests strMap `yaml:"requests"`
	Limits   strMap `yaml:"limits"`
}

type containerSecurityContext struct {
	AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
	RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
	Capabilities             *struct {
		Drop []string `yaml:"drop"`
	} `yaml:"capabilities"`
}

type volumeMount struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
	ReadOnly  bool   `yaml:"readOnly"`
}

type volume struct {
	Name     string `yaml:"name"`
	EmptyDir *struct {
		Medium    string `yaml:"medium"`
		SizeLimit str    `yaml:"sizeLimit"`
	} `yaml:"emptyDir"`
	PersistentVolumeClaim *struct {
		ClaimName string `yaml:"claimName"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"persistentVolumeClaim"`
	Secret *struct {
		SecretName  string      `yaml:"secretName"`
		Items       []keyToPath `yaml:"items"`
		DefaultMode *int        `yaml:"defaultMode"`
		Optional    bool        `yaml:"optional"`
	} `yaml:"secret"`
	ConfigMap *struct {
		Name     string      `yaml:"name"`
		Items    []keyToPath `yaml:"items"`
		Optional bool        `yaml:"optional"`
	} `yaml:"configMap"`
}

type keyToPath struct {
	Key  string `yaml:"key"`
	Path string `yaml:"path"`
}

// kustomization is kustomization.yaml. It is not a Kubernetes object (it
// has no metadata), so the header checks do not apply to it.
type kustomization struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Resources  []string `yaml:"resources"`
}

// kinds are the object kinds the manifests may contain, with the API
// version Kubernetes serves them under.
var kinds = map[string]struct {
	apiVersion string
	new        func() object
}{
	"ConfigMap":             {"v1", func() object { return new(configMap) }},
	"Secret":                {"v1", func() object { return new(secret) }},
	"PersistentVolumeClaim": {"v1", func() object { return new(persistentVolumeClaim) }},
	"Service":               {"v1", func() object { return new(service) }},
	"Deployment":            {"apps/v1", func() object { return new(deployment) }},
	"StatefulSet":           {"apps/v1", func() object { return new(statefulSet) }},
	"PodDisruptionBudget":   {"policy/v1", func() object { return new(podDisruptionBudget) }},
}

// kustomizationFile is the name kubectl apply -k looks for.
const kustomizationFile = "kustomization.yaml"

// document is one YAML document of a manifest file.
type document struct {
	file string // base name
	line int    // where the document starts
	obj  object
}

func (d *document) String() string {
	h := d.obj.head()
	return fmt.Sprintf("%s:%d %s/%s", d.file, d.line, h.Kind, h.Metadata.Name)
}

// bundle is a folder of manifests.
type bundle struct {
	files []string // the YAML files present besides kustomization.yaml, sorted
	kust  *kustomization
	docs  []*document
}

// loadDir reads every YAML file of dir.
func loadDir(dir string) (*bundle, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("manifests: %w", err)
	}
	b := &bundle{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || (!strings.HasSuffix(name, ".yaml") && !strings.HasSuffix(name, ".yml")) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("manifests: %w", err)
		}
		if name == kustomizationFile {
			if b.kust, err = parseKustomization(data); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			continue
		}
		b.files = append(b.files, name)
		docs, err := parseManifests(name, data)
		if err != nil {
			return nil, err
		}
		b.docs = append(b.docs, docs...)
	}
	if b.kust == nil {
		return nil, fmt.Errorf("manifests: %s: no %s", dir, kustomizationFile)
	}
	return b, nil
}

func parseKustomization(data []byte) (*kustomization, error) {
	d := yaml.NewDecoder(bytes.NewReader(data))
	d.KnownFields(true)
	var k kustomization
	if err := d.Decode(&k); err != nil {
		return nil, err
	}
	return &k, nil
}

// parseManifests decodes every document of a file, strictly, into the
// type its kind names. Empty documents (only comments) are skipped.
func parseManifests(file string, data []byte) ([]*document, error) {
	// Two decoders walk the same documents in step: the first reads each
	// one's kind and line, the second decodes it strictly into its type
	// (yaml.Node.Decode has no strict mode) with the file's line numbers.
	heads := yaml.NewDecoder(bytes.NewReader(data))
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	var docs []*document
	for i := 1; ; i++ {
		var n yaml.Node
		err := heads.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, i, err)
		}
		if len(n.Content) == 0 || n.Content[0].ShortTag() == "!!null" {
			var skip yaml.Node
			if err := strict.Decode(&skip); err != nil {
				return nil, fmt.Errorf("%s: document %d: %w", file, i, err)
			}
			continue
		}
		line := n.Content[0].Line
		var h header
		if err := n.Decode(&h); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, line, err)
		}
		k, ok := kinds[h.Kind]
		if !ok {
			return nil, fmt.Errorf("%s:%d: kind %q is not one the manifests may use (%s); model it in manifest_test.go first", file, line, h.Kind, strings.Join(sortedKeys(kinds), ", "))
		}
		obj := k.new()
		if err := strict.Decode(obj); err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", file, line, h.Kind, err)
		}
		docs = append(docs, &document{file: file, line: line, obj: obj})
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// lookup returns the object of type T named name, or nil.
func lookup[T object](b *bundle, name string) T {
	var zero T
	for _, d := range b.docs {
		if o, ok := d.obj.(T); ok && o.head().Metadata.Name == name {
			return o
		}
	}
	return zero
}

// all returns the documents holding objects of type T.
func all[T object](b *bundle) []*document {
	var out []*document
	for _, d := range b.docs {
		if _, ok := d.obj.(T); ok {
			out = append(out, d)
		}
	}
	return out
}
