package deploy

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// The values for the official opentelemetry-collector Helm chart and the
// OpenTelemetryCollector resources for the operator. Neither the chart nor
// the operator's Go module is available here (no helm binary; the
// operator's API module is not served by the module proxy at a version
// that builds with client-go v0.35), so each file is decoded strictly
// into local structs that cover the fields these files use, with the
// Kubernetes types wherever the chart or the operator takes one; a field
// outside them fails the test, to be added here only after checking the
// chart's values.yaml or the operator's API reference.

// helmValues are the opentelemetry-collector chart's values used here
// (chart 0.158.x: templates/_pod.tpl, _config.tpl, values.yaml).
type helmValues struct {
	Mode             string `json:"mode"`
	FullnameOverride string `json:"fullnameOverride"`
	ReplicaCount     *int32 `json:"replicaCount,omitempty"`
	Image            struct {
		Repository string            `json:"repository"`
		Tag        string            `json:"tag"`
		PullPolicy corev1.PullPolicy `json:"pullPolicy"`
	} `json:"image"`
	Command struct {
		Name      string   `json:"name"`
		ExtraArgs []string `json:"extraArgs,omitempty"`
	} `json:"command"`
	ServiceAccount struct {
		Create bool   `json:"create"`
		Name   string `json:"name,omitempty"`
	} `json:"serviceAccount"`
	ClusterRole *struct {
		Create bool                `json:"create"`
		Name   string              `json:"name,omitempty"`
		Rules  []rbacv1.PolicyRule `json:"rules,omitempty"`
	} `json:"clusterRole,omitempty"`
	SecurityContext    *corev1.SecurityContext    `json:"securityContext,omitempty"`
	PodSecurityContext *corev1.PodSecurityContext `json:"podSecurityContext,omitempty"`
	ExtraEnvs          []corev1.EnvVar            `json:"extraEnvs,omitempty"`
	ExtraVolumes       []corev1.Volume            `json:"extraVolumes,omitempty"`
	ExtraVolumeMounts  []corev1.VolumeMount       `json:"extraVolumeMounts,omitempty"`
	InitContainers     []corev1.Container         `json:"initContainers,omitempty"`
	Ports              map[string]struct {
		Enabled       bool            `json:"enabled"`
		ContainerPort int32           `json:"containerPort,omitempty"`
		ServicePort   int32           `json:"servicePort,omitempty"`
		HostPort      int32           `json:"hostPort,omitempty"`
		Protocol      corev1.Protocol `json:"protocol,omitempty"`
		AppProtocol   string          `json:"appProtocol,omitempty"`
	} `json:"ports"`
	Resources corev1.ResourceRequirements `json:"resources"`
	Rollout   *struct {
		Strategy      string                         `json:"strategy"`
		RollingUpdate *appsv1.RollingUpdateDaemonSet `json:"rollingUpdate,omitempty"`
	} `json:"rollout,omitempty"`
	AlternateConfig map[string]any `json:"alternateConfig"`
}

// operatorCollector is an opentelemetry.io/v1beta1 OpenTelemetryCollector,
// the spec fields used here (the operator's API reference, v1beta1).
type operatorCollector struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Mode                          string                          `json:"mode"`
		Replicas                      *int32                          `json:"replicas,omitempty"`
		Image                         string                          `json:"image"`
		UpgradeStrategy               string                          `json:"upgradeStrategy"`
		ServiceAccount                string                          `json:"serviceAccount,omitempty"`
		TerminationGracePeriodSeconds *int64                          `json:"terminationGracePeriodSeconds,omitempty"`
		DaemonSetUpdateStrategy       *appsv1.DaemonSetUpdateStrategy `json:"daemonSetUpdateStrategy,omitempty"`
		SecurityContext               *corev1.SecurityContext         `json:"securityContext,omitempty"`
		PodSecurityContext            *corev1.PodSecurityContext      `json:"podSecurityContext,omitempty"`
		Env                           []corev1.EnvVar                 `json:"env,omitempty"`
		InitContainers                []corev1.Container              `json:"initContainers,omitempty"`
		Volumes                       []corev1.Volume                 `json:"volumes,omitempty"`
		VolumeMounts                  []corev1.VolumeMount            `json:"volumeMounts,omitempty"`
		Resources                     corev1.ResourceRequirements     `json:"resources"`
		Config                        map[string]any                  `json:"config"`
	} `json:"spec"`
}

// decodeStrict decodes one YAML document into v, refusing unknown fields.
func decodeStrict(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// helmRelease is one values file and the collector it installs.
type helmRelease struct {
	file   string
	values helmValues
}

var helmFiles = []string{"helm/agent-values.yaml", "helm/gateway-values.yaml"}

func helmReleases(t *testing.T) []helmRelease {
	t.Helper()
	var out []helmRelease
	for _, f := range helmFiles {
		r := helmRelease{file: f}
		decodeStrict(t, f, &r.values)
		out = append(out, r)
	}
	return out
}

// unit is the collector container the chart renders from the values
// (templates/_pod.tpl): MY_POD_IP, then extraEnvs; the enabled ports; the
// config is alternateConfig.
func (r helmRelease) unit(t *testing.T) podUnit {
	t.Helper()
	v := r.values
	c := corev1.Container{
		Name: "opentelemetry-collector",
		Env: append([]corev1.EnvVar{{Name: "MY_POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}}},
			v.ExtraEnvs...),
		VolumeMounts: v.ExtraVolumeMounts,
	}
	for _, name := range mapKeys(v.Ports) {
		p := v.Ports[name]
		if p.Enabled {
			c.Ports = append(c.Ports, corev1.ContainerPort{Name: name, ContainerPort: p.ContainerPort, HostPort: p.HostPort, Protocol: p.Protocol})
		}
	}
	config, err := yaml.Marshal(v.AlternateConfig)
	if err != nil {
		t.Fatal(err)
	}
	spec := corev1.PodSpec{Containers: []corev1.Container{c}, Volumes: v.ExtraVolumes, InitContainers: v.InitContainers, ServiceAccountName: v.ServiceAccount.Name}
	return podUnit{name: r.file, namespace: "observability", spec: spec, container: c, config: string(config)}
}

// operatorFiles are the OpenTelemetryCollector resources.
var operatorFiles = []string{"operator/agent.yaml", "operator/gateway.yaml"}

func operatorCollectors(t *testing.T) map[string]operatorCollector {
	t.Helper()
	out := map[string]operatorCollector{}
	for _, f := range operatorFiles {
		var oc operatorCollector
		decodeStrict(t, f, &oc)
		if oc.APIVersion != "opentelemetry.io/v1beta1" || oc.Kind != "OpenTelemetryCollector" {
			t.Errorf("%s: %s %s, want opentelemetry.io/v1beta1 OpenTelemetryCollector", f, oc.APIVersion, oc.Kind)
		}
		out[f] = oc
	}
	return out
}

// unit is the collector container the operator makes: spec.env, the
// config; it derives the ports from the config itself.
func operatorUnit(t *testing.T, file string, oc operatorCollector) podUnit {
	t.Helper()
	config, err := yaml.Marshal(oc.Spec.Config)
	if err != nil {
		t.Fatal(err)
	}
	c := corev1.Container{Name: "otc-container", Env: oc.Spec.Env, VolumeMounts: oc.Spec.VolumeMounts}
	spec := corev1.PodSpec{Containers: []corev1.Container{c}, Volumes: oc.Spec.Volumes, InitContainers: oc.Spec.InitContainers}
	return podUnit{name: file, namespace: oc.Namespace, spec: spec, container: c, config: string(config), portsFromConfig: true}
}

// operatorServiceName is the Service name the operator gives a collector
// resource (its name plus "-collector", then a suffix), and the port name
// it gives the otlp receiver's gRPC protocol.
func operatorServiceName(collector, suffix string) string { return collector + "-collector" + suffix }

const operatorOTLPGRPCPort = "otlp-grpc"

// nullPaths lists where a decoded config holds null: Helm drops such keys
// when it merges values, and the API server may prune them.
func nullPaths(v any, path string) []string {
	switch v := v.(type) {
	case nil:
		return []string{path}
	case map[string]any:
		var out []string
		for _, k := range mapKeys(v) {
			out = append(out, nullPaths(v[k], path+"."+k)...)
		}
		return out
	case []any:
		var out []string
		for i, x := range v {
			out = append(out, nullPaths(x, fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	}
	return nil
}

func TestHelmValues(t *testing.T) {
	releases := helmReleases(t)
	byName := map[string]helmValues{}
	for _, r := range releases {
		byName[r.values.FullnameOverride] = r.values
	}
	for _, r := range releases {
		v := r.values
		if v.Mode != "daemonset" && v.Mode != "statefulset" && v.Mode != "deployment" {
			t.Errorf("%s: mode %q", r.file, v.Mode)
		}
		if v.Command.Name != "otelcsp" {
			t.Errorf("%s: command.name %q, want otelcsp (the image's binary, /otelcsp)", r.file, v.Command.Name)
		}
		if p := nullPaths(v.AlternateConfig, "alternateConfig"); len(p) > 0 {
			t.Errorf("%s: null values at %v: Helm deletes such keys; give them {}", r.file, p)
		}
		// The chart's default ports are receivers this build lacks.
		for _, name := range []string{"jaeger-compact", "jaeger-thrift", "jaeger-grpc", "zipkin"} {
			if p, ok := v.Ports[name]; !ok || p.Enabled {
				t.Errorf("%s: ports.%s must be disabled (the chart enables it by default; this build has no such receiver)", r.file, name)
			}
		}
		u := r.unit(t)
		for _, res := range u.checkedResolvers(t) {
			if res.service == "" {
				t.Errorf("%s: %s: with the chart, use the k8s resolver (its Services are ClusterIP: one address, no SRV records per pod)", r.file, res.exporter)
				continue
			}
			// The chart names its Service after fullnameOverride, its
			// ports after the keys of ports.
			svcName, _, _ := strings.Cut(res.service, ".")
			target, ok := byName[svcName]
			if !ok {
				t.Errorf("%s: %s watches Service %s, which no values file here installs", r.file, res.exporter, res.service)
				continue
			}
			for _, p := range res.ports {
				if tp, ok := target.Ports[p]; !ok || !tp.Enabled {
					t.Errorf("%s: %s sends to port %s of %s, which that release does not enable", r.file, res.exporter, p, svcName)
				}
			}
			if cr := v.ClusterRole; cr == nil || !cr.Create || !allows(cr.Rules, "discovery.k8s.io", "endpointslices", "list", "watch") {
				t.Errorf("%s: %s (k8s resolver) needs clusterRole.create with list and watch on endpointslices (discovery.k8s.io)", r.file, res.exporter)
			}
			if !v.ServiceAccount.Create {
				t.Errorf("%s: the k8s resolver needs the chart's service account (serviceAccount.create), which the ClusterRole binds", r.file)
			}
		}
	}
}

func TestOperatorCollectors(t *testing.T) {
	cols := operatorCollectors(t)
	byName := map[string]operatorCollector{}
	for _, oc := range cols {
		byName[oc.Namespace+"/"+oc.Name] = oc
	}
	for _, f := range operatorFiles {
		oc := cols[f]
		if oc.Spec.UpgradeStrategy != "none" {
			t.Errorf("%s: upgradeStrategy %q, want none (the operator's upgrades are for its own images)", f, oc.Spec.UpgradeStrategy)
		}
		if p := nullPaths(oc.Spec.Config, "spec.config"); len(p) > 0 {
			t.Errorf("%s: null values at %v; give them {}", f, p)
		}
		u := operatorUnit(t, f, oc)
		for _, res := range u.checkedResolvers(t) {
			if res.srv == "" {
				t.Errorf("%s: %s: expected the DNS SRV resolver on the operator's headless Service", f, res.exporter)
				continue
			}
			port, _, svc, ns, err := srvName(res.srv)
			if err != nil {
				t.Errorf("%s: %s: %v", f, res.exporter, err)
				continue
			}
			found := false
			for _, target := range byName {
				if target.Namespace == ns && operatorServiceName(target.Name, "-headless") == svc {
					found = true
					recv, _ := dig(target.Spec.Config, "receivers", "otlp", "protocols").(map[string]any)
					if _, grpc := recv["grpc"]; port != operatorOTLPGRPCPort || !grpc {
						t.Errorf("%s: %s resolves port %s of %s, but the operator names the otlp receiver's gRPC port %s", f, res.exporter, port, svc, operatorOTLPGRPCPort)
					}
				}
			}
			if !found {
				t.Errorf("%s: %s resolves %s, which no resource here makes", f, res.exporter, res.srv)
			}
		}
	}
}

// TestInstallersRunTheShippedConfigs: the configs of the Helm values and
// the operator resources are the shipped ones (after the named variants),
// value for value.
func TestInstallersRunTheShippedConfigs(t *testing.T) {
	for _, f := range append(slices.Clone(helmFiles), operatorFiles...) {
		copies := embeddedIn(t, f)
		if len(copies) != 1 {
			t.Fatalf("%s: %d embedded configs, want 1", f, len(copies))
		}
		var got any
		if strings.HasPrefix(f, "helm/") {
			var v helmValues
			decodeStrict(t, f, &v)
			got = v.AlternateConfig
		} else {
			var oc operatorCollector
			decodeStrict(t, f, &oc)
			got = oc.Spec.Config
		}
		text, err := copies[0].sourceText()
		if err != nil {
			t.Fatal(err)
		}
		var want map[string]any
		if err := yaml.Unmarshal([]byte(text), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the config differs from %s %s", f, copies[0].source, copies[0].variant)
		}
	}
}
