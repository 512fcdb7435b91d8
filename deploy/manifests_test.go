package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

// The manifests of deploy/k8s, decoded with the Kubernetes API types in
// strict mode (an unknown, misspelt or duplicated field is an error), and
// checked against each other as the cluster would join them.

// strictDecoder decodes any built-in kind, refusing unknown fields.
var strictDecoder = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()

// manifest is one object of a file.
type manifest struct {
	file string
	obj  runtime.Object
}

func (m manifest) String() string {
	return fmt.Sprintf("%s %s %s", m.file, m.obj.GetObjectKind().GroupVersionKind().Kind, name(m.obj))
}

func name(obj runtime.Object) string {
	if o, ok := obj.(interface{ GetName() string }); ok {
		return o.GetName()
	}
	return "?"
}

func namespace(obj runtime.Object) string {
	if o, ok := obj.(interface{ GetNamespace() string }); ok {
		return o.GetNamespace()
	}
	return ""
}

// yamlDocs splits a file into its YAML documents, skipping empty ones.
func yamlDocs(b []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(uncommentedBytes(doc))) > 0 {
			docs = append(docs, doc)
		}
	}
}

func uncommentedBytes(b []byte) []byte { return []byte(uncommented(string(b))) }

// loadManifests decodes every object of the files (paths under deploy/).
func loadManifests(t *testing.T, files ...string) []manifest {
	t.Helper()
	var out []manifest
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := yamlDocs(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i, doc := range docs {
			obj, _, err := strictDecoder.Decode(doc, nil, nil)
			if err != nil {
				t.Fatalf("%s, document %d: %v", f, i+1, err)
			}
			out = append(out, manifest{file: f, obj: obj})
		}
	}
	return out
}

// globYAML lists the .yaml files of a directory (not its subdirectories,
// as `kubectl apply -f dir` takes them).
func globYAML(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s (%v)", dir, err)
	}
	sort.Strings(files)
	return files
}

// patch is a strategic merge patch of patches/ and the object it is for.
type patch struct {
	file, kind, name string
}

// patches are the files of k8s/patches/; every file there must be listed.
var patches = []patch{
	{file: "k8s/patches/gateway-delta.yaml", kind: "StatefulSet", name: "otelcsp-gateway"},
	{file: "k8s/patches/agent-k8s-resolver.yaml", kind: "DaemonSet", name: "otelcsp-agent"},
}

// applyPatch patches the object of that kind and name as `kubectl patch
// --patch-file` does (strategic merge), and decodes the result strictly.
func applyPatch(t *testing.T, ms []manifest, p patch) []manifest {
	t.Helper()
	b, err := os.ReadFile(p.file)
	if err != nil {
		t.Fatal(err)
	}
	patchJSON, err := utilyaml.ToJSON(b)
	if err != nil {
		t.Fatalf("%s: %v", p.file, err)
	}
	out := slices.Clone(ms)
	for i, m := range out {
		if m.obj.GetObjectKind().GroupVersionKind().Kind != p.kind || name(m.obj) != p.name {
			continue
		}
		orig, err := json.Marshal(m.obj)
		if err != nil {
			t.Fatal(err)
		}
		var schema any
		switch p.kind {
		case "StatefulSet":
			schema = appsv1.StatefulSet{}
		case "DaemonSet":
			schema = appsv1.DaemonSet{}
		default:
			t.Fatalf("%s: patches of %s are not understood here", p.file, p.kind)
		}
		patched, err := strategicpatch.StrategicMergePatch(orig, patchJSON, schema)
		if err != nil {
			t.Fatalf("%s: %v", p.file, err)
		}
		obj, _, err := strictDecoder.Decode(patched, nil, nil)
		if err != nil {
			t.Fatalf("%s applied to %s: %v", p.file, m, err)
		}
		out[i] = manifest{file: m.file + " patched by " + p.file, obj: obj}
		return out
	}
	t.Fatalf("%s: no %s %s to patch", p.file, p.kind, p.name)
	return nil
}

// manifestSet is what a user applies together.
type manifestSet struct {
	name string
	objs []manifest
}

// manifestSets are the ways deploy/k8s is meant to be applied: the base
// (agents and gateways), the base with the k8s resolver, and the base
// with delta gateways and the aggregator tier.
func manifestSets(t *testing.T) []manifestSet {
	t.Helper()
	base := loadManifests(t, globYAML(t, "k8s")...)
	aggregators := loadManifests(t, globYAML(t, "k8s/aggregator")...)
	files, _ := filepath.Glob("k8s/patches/*.yaml")
	for _, f := range files {
		if !slices.ContainsFunc(patches, func(p patch) bool { return p.file == f }) {
			t.Fatalf("%s is not in the test's list of patches: say what it patches", f)
		}
	}
	return []manifestSet{
		{name: "k8s/", objs: base},
		{name: "k8s/ + patches/agent-k8s-resolver.yaml", objs: applyPatch(t, base, patches[1])},
		{name: "k8s/ + k8s/aggregator/ + patches/gateway-delta.yaml", objs: applyPatch(t, append(slices.Clone(base), aggregators...), patches[0])},
	}
}

func TestManifestsDecodeStrictly(t *testing.T) {
	sets := manifestSets(t)
	kinds := map[string]int{}
	for _, m := range sets[0].objs {
		kinds[m.obj.GetObjectKind().GroupVersionKind().Kind]++
	}
	// What the base must hold, so that a file that silently decodes to
	// nothing is noticed.
	for kind, n := range map[string]int{"Namespace": 1, "ServiceAccount": 1, "Role": 1, "RoleBinding": 1, "Service": 2, "DaemonSet": 1, "StatefulSet": 1, "ConfigMap": 2} {
		if kinds[kind] != n {
			t.Errorf("deploy/k8s holds %d %s, want %d (all: %v)", kinds[kind], kind, n, kinds)
		}
	}
	// The decoder refuses what it does not know; make sure of it.
	bad := []byte("apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  selectr: {a: b}\n")
	if _, _, err := strictDecoder.Decode(bad, nil, nil); err == nil || !strings.Contains(err.Error(), "selectr") {
		t.Errorf("a misspelt field decoded without an error naming it: %v", err)
	}
}

// workload is a DaemonSet or StatefulSet of a set.
type workload struct {
	m        manifest
	selector map[string]string
	template corev1.PodTemplateSpec
}

// index is a set's objects by kind, namespace and name.
type index struct {
	set             manifestSet
	services        map[string]*corev1.Service
	configMaps      map[string]*corev1.ConfigMap
	serviceAccounts map[string]*corev1.ServiceAccount
	roles           map[string]*rbacv1.Role
	roleBindings    []*rbacv1.RoleBinding
	workloads       []workload
}

func key(ns, name string) string { return ns + "/" + name }

func indexSet(t *testing.T, set manifestSet) index {
	t.Helper()
	ix := index{set: set, services: map[string]*corev1.Service{}, configMaps: map[string]*corev1.ConfigMap{},
		serviceAccounts: map[string]*corev1.ServiceAccount{}, roles: map[string]*rbacv1.Role{}}
	for _, m := range set.objs {
		k := key(namespace(m.obj), name(m.obj))
		switch o := m.obj.(type) {
		case *corev1.Namespace:
		case *corev1.Service:
			ix.services[k] = o
		case *corev1.ConfigMap:
			ix.configMaps[k] = o
		case *corev1.ServiceAccount:
			ix.serviceAccounts[k] = o
		case *rbacv1.Role:
			ix.roles[k] = o
		case *rbacv1.RoleBinding:
			ix.roleBindings = append(ix.roleBindings, o)
		case *appsv1.DaemonSet:
			ix.workloads = append(ix.workloads, workload{m: m, selector: o.Spec.Selector.MatchLabels, template: o.Spec.Template})
		case *appsv1.StatefulSet:
			ix.workloads = append(ix.workloads, workload{m: m, selector: o.Spec.Selector.MatchLabels, template: o.Spec.Template})
		default:
			t.Errorf("%s: a kind the checks do not know", m)
		}
		if _, isNS := m.obj.(*corev1.Namespace); !isNS && namespace(m.obj) != "observability" {
			t.Errorf("%s: namespace %q, want observability (namespace.yaml)", m, namespace(m.obj))
		}
	}
	return ix
}

// selected lists the workloads whose pods the selector picks.
func (ix index) selected(ns string, selector map[string]string) []workload {
	var out []workload
	for _, w := range ix.workloads {
		if namespace(w.m.obj) == ns && len(selector) > 0 && labels.SelectorFromSet(selector).Matches(labels.Set(w.template.Labels)) {
			out = append(out, w)
		}
	}
	return out
}

// units are the collector containers of a set with the config each runs.
func (ix index) units() ([]podUnit, []error) {
	var out []podUnit
	var errs []error
	for _, w := range ix.workloads {
		ns := namespace(w.m.obj)
		for _, c := range w.template.Spec.Containers {
			u := podUnit{name: w.m.String() + " container " + c.Name, namespace: ns, spec: w.template.Spec, container: c}
			config, err := ix.configOf(ns, w.template.Spec, c)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", u.name, err))
				continue
			}
			u.config = config
			out = append(out, u)
		}
	}
	return out, errs
}

// configOf finds the file `--config` names among the container's mounts and
// reads it from the ConfigMap mounted there.
func (ix index) configOf(ns string, spec corev1.PodSpec, c corev1.Container) (string, error) {
	var file string
	for i, a := range c.Args {
		switch {
		case a == "--config" && i+1 < len(c.Args):
			file = c.Args[i+1]
		case strings.HasPrefix(a, "--config="):
			file = strings.TrimPrefix(a, "--config=")
		}
	}
	if file == "" {
		return "", fmt.Errorf("args %v name no --config", c.Args)
	}
	for _, vm := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(vm.MountPath, "/")+"/")
		if !ok {
			continue
		}
		i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name })
		if i < 0 || spec.Volumes[i].ConfigMap == nil {
			return "", fmt.Errorf("--config %s is on mount %q, which is not a ConfigMap volume", file, vm.Name)
		}
		src := spec.Volumes[i].ConfigMap
		cm, ok := ix.configMaps[key(ns, src.Name)]
		if !ok {
			return "", fmt.Errorf("volume %q mounts ConfigMap %s, which the set does not hold", vm.Name, src.Name)
		}
		keyName := rel
		for _, item := range src.Items {
			if item.Path == rel {
				keyName = item.Key
			}
		}
		data, ok := cm.Data[keyName]
		if !ok {
			return "", fmt.Errorf("--config %s: ConfigMap %s has no key %q (keys: %v)", file, src.Name, keyName, mapKeys(cm.Data))
		}
		return data, nil
	}
	return "", fmt.Errorf("--config %s is on none of the container's mounts", file)
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestConfigMapsHoldTheShippedConfigs: each ConfigMap key is a file of
// testdata/deploy, byte for byte (or its named variant).
func TestConfigMapsHoldTheShippedConfigs(t *testing.T) {
	for _, dir := range []string{"k8s", "k8s/aggregator"} {
		for _, f := range globYAML(t, dir) {
			copies := embeddedIn(t, f)
			for _, m := range loadManifests(t, f) {
				cm, ok := m.obj.(*corev1.ConfigMap)
				if !ok {
					continue
				}
				for k, data := range cm.Data {
					i := slices.IndexFunc(copies, func(e embedded) bool { return e.key == k })
					if i < 0 {
						t.Errorf("%s: key %s is not generated from testdata/deploy (no otelcsp:embed marker)", m, k)
						continue
					}
					want, err := copies[i].sourceText()
					if err != nil {
						t.Fatal(err)
					}
					if data != want {
						t.Errorf("%s: key %s differs from %s %s", m, k, copies[i].source, copies[i].variant)
					}
					if copies[i].variant == "" && path.Base(copies[i].source) != k {
						t.Errorf("%s: key %s holds %s: name the key after the file", m, k, copies[i].source)
					}
				}
			}
		}
	}
}

func TestManifestCrossReferences(t *testing.T) {
	for _, set := range manifestSets(t) {
		t.Run(set.name, func(t *testing.T) {
			ix := indexSet(t, set)
			for _, err := range ix.check() {
				t.Error(err)
			}
			units, errs := ix.units()
			for _, err := range errs {
				t.Error(err)
			}
			if len(units) == 0 {
				t.Fatal("no collector container found")
			}
			for _, u := range units {
				for _, err := range slices.Concat(u.checkEnv(), u.checkPorts(), u.checkMounts()) {
					t.Error(err)
				}
				for _, err := range ix.checkResolvers(u) {
					t.Error(err)
				}
			}
		})
	}
}

// check joins the objects: selectors, named ports, service accounts, RBAC,
// volumes.
func (ix index) check() []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for k, svc := range ix.services {
		picked := ix.selected(svc.Namespace, svc.Spec.Selector)
		if len(picked) == 0 {
			fail("Service %s: selector %v picks no pod template", k, svc.Spec.Selector)
		}
		for _, p := range svc.Spec.Ports {
			target := p.TargetPort.StrVal
			if target == "" {
				fail("Service %s port %s: give targetPort by name, so the pods' port numbers can change", k, p.Name)
				continue
			}
			if target != p.Name {
				fail("Service %s: port %q targets %q: name them alike", k, p.Name, target)
			}
			for _, w := range picked {
				if !declaresPort(w.template.Spec, target, p.Protocol) {
					fail("Service %s port %s: %s declares no %s port named %q", k, p.Name, w.m, p.Protocol, target)
				}
			}
		}
	}
	for _, w := range ix.workloads {
		ns := namespace(w.m.obj)
		if !labels.SelectorFromSet(w.selector).Matches(labels.Set(w.template.Labels)) || len(w.selector) == 0 {
			fail("%s: selector %v does not match its pod template's labels %v", w.m, w.selector, w.template.Labels)
		}
		if sts, ok := w.m.obj.(*appsv1.StatefulSet); ok {
			svc, ok := ix.services[key(ns, sts.Spec.ServiceName)]
			switch {
			case !ok:
				fail("%s: serviceName %s is not a Service of the set", w.m, sts.Spec.ServiceName)
			case svc.Spec.ClusterIP != corev1.ClusterIPNone:
				fail("%s: serviceName %s is not headless", w.m, sts.Spec.ServiceName)
			case !slices.ContainsFunc(ix.selected(ns, svc.Spec.Selector), func(x workload) bool { return x.m.obj == w.m.obj }):
				fail("%s: its Service %s does not select its pods", w.m, sts.Spec.ServiceName)
			}
		}
		spec := w.template.Spec
		if sa := spec.ServiceAccountName; sa != "" && sa != "default" {
			if _, ok := ix.serviceAccounts[key(ns, sa)]; !ok {
				fail("%s: serviceAccountName %s is not a ServiceAccount of the set", w.m, sa)
			}
		}
		for _, v := range spec.Volumes {
			if v.ConfigMap == nil {
				continue
			}
			cm, ok := ix.configMaps[key(ns, v.ConfigMap.Name)]
			if !ok {
				fail("%s: volume %s mounts ConfigMap %s, which is not in the set", w.m, v.Name, v.ConfigMap.Name)
				continue
			}
			for _, item := range v.ConfigMap.Items {
				if _, ok := cm.Data[item.Key]; !ok {
					fail("%s: volume %s asks key %s of ConfigMap %s, which has %v", w.m, v.Name, item.Key, cm.Name, mapKeys(cm.Data))
				}
			}
		}
	}
	for _, rb := range ix.roleBindings {
		if _, ok := ix.roles[key(rb.Namespace, rb.RoleRef.Name)]; rb.RoleRef.Kind != "Role" || !ok {
			fail("RoleBinding %s: roleRef %s %s is not a Role of the set", rb.Name, rb.RoleRef.Kind, rb.RoleRef.Name)
		}
		for _, s := range rb.Subjects {
			if _, ok := ix.serviceAccounts[key(s.Namespace, s.Name)]; s.Kind != "ServiceAccount" || !ok {
				fail("RoleBinding %s: subject %s %s/%s is not a ServiceAccount of the set", rb.Name, s.Kind, s.Namespace, s.Name)
			}
			used := false
			for _, w := range ix.workloads {
				used = used || (namespace(w.m.obj) == s.Namespace && w.template.Spec.ServiceAccountName == s.Name)
			}
			if !used {
				fail("RoleBinding %s binds ServiceAccount %s/%s, which no pod uses", rb.Name, s.Namespace, s.Name)
			}
		}
	}
	return errs
}

func declaresPort(spec corev1.PodSpec, name string, proto corev1.Protocol) bool {
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			pp := p.Protocol
			if pp == "" {
				pp = corev1.ProtocolTCP
			}
			if p.Name == name && pp == proto {
				return true
			}
		}
	}
	return false
}

// checkResolvers: the backends each fanout of the unit's config resolves
// exist in the set. An SRV name is a headless Service's named port; the
// k8s resolver's Service has the ports it names, and the pod's service
// account may list and watch its EndpointSlices, with its token mounted.
func (ix index) checkResolvers(u podUnit) []error {
	c, err := u.parsed()
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, r := range c.fanoutResolvers() {
		switch {
		case r.srv != "":
			port, proto, svcName, ns, err := srvName(r.srv)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %s: %w", u.name, r.exporter, err))
				continue
			}
			svc, ok := ix.services[key(ns, svcName)]
			if !ok {
				errs = append(errs, fmt.Errorf("%s: %s resolves %s, but the set has no Service %s/%s", u.name, r.exporter, r.srv, ns, svcName))
				continue
			}
			if svc.Spec.ClusterIP != corev1.ClusterIPNone {
				errs = append(errs, fmt.Errorf("%s: %s resolves the SRV records of %s, which is not headless (one record for the Service's address, not one per pod)", u.name, r.exporter, svcName))
			}
			if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool {
				return p.Name == port && strings.EqualFold(string(p.Protocol), proto)
			}) {
				errs = append(errs, fmt.Errorf("%s: %s resolves %s, but Service %s has no %s port named %s", u.name, r.exporter, r.srv, svcName, proto, port))
			}
		case r.service != "":
			svcName, ns, found := strings.Cut(r.service, ".")
			if !found {
				ns = u.namespace
			}
			svc, ok := ix.services[key(ns, svcName)]
			if !ok {
				errs = append(errs, fmt.Errorf("%s: %s watches Service %s/%s, which the set does not hold", u.name, r.exporter, ns, svcName))
				continue
			}
			for _, p := range r.ports {
				if !slices.ContainsFunc(svc.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Name == p || fmt.Sprint(sp.Port) == p }) {
					errs = append(errs, fmt.Errorf("%s: %s sends to port %s of Service %s, which it does not have", u.name, r.exporter, p, svcName))
				}
			}
			if err := ix.canWatchEndpointSlices(u, ns); err != nil {
				errs = append(errs, fmt.Errorf("%s: %s (k8s resolver): %w", u.name, r.exporter, err))
			}
		case r.static:
		default:
			errs = append(errs, fmt.Errorf("%s: %s: a resolver the checks do not know", u.name, r.exporter))
		}
	}
	return errs
}

// canWatchEndpointSlices: the unit's service account is bound to a Role in
// ns that allows list and watch on endpointslices, and the pod mounts its
// token.
func (ix index) canWatchEndpointSlices(u podUnit, ns string) error {
	sa := u.spec.ServiceAccountName
	account, ok := ix.serviceAccounts[key(u.namespace, sa)]
	if !ok {
		return fmt.Errorf("the pod's service account %q is not in the set", sa)
	}
	mounted := true
	if account.AutomountServiceAccountToken != nil {
		mounted = *account.AutomountServiceAccountToken
	}
	if u.spec.AutomountServiceAccountToken != nil {
		mounted = *u.spec.AutomountServiceAccountToken
	}
	if !mounted {
		return fmt.Errorf("the pod does not mount its service-account token, which the resolver's in-cluster client needs")
	}
	for _, rb := range ix.roleBindings {
		if rb.Namespace != ns || !slices.ContainsFunc(rb.Subjects, func(s rbacv1.Subject) bool {
			return s.Kind == "ServiceAccount" && s.Name == sa && s.Namespace == u.namespace
		}) {
			continue
		}
		role, ok := ix.roles[key(ns, rb.RoleRef.Name)]
		if ok && allows(role.Rules, "discovery.k8s.io", "endpointslices", "list", "watch") {
			return nil
		}
	}
	return fmt.Errorf("service account %s/%s may not list and watch endpointslices (discovery.k8s.io) in namespace %s", u.namespace, sa, ns)
}

func allows(rules []rbacv1.PolicyRule, group, resource string, verbs ...string) bool {
	for _, v := range verbs {
		if !slices.ContainsFunc(rules, func(r rbacv1.PolicyRule) bool {
			return slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && (slices.Contains(r.Verbs, v) || slices.Contains(r.Verbs, "*"))
		}) {
			return false
		}
	}
	return true
}
