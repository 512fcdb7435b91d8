package deploy

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// podUnit is one collector as it runs in a pod, whatever installed it (a
// manifest, the Helm chart, the operator): its container, the config it
// runs and where the config came from.
type podUnit struct {
	name      string // for messages: "k8s/agent.yaml DaemonSet otelcsp-agent"
	namespace string
	spec      corev1.PodSpec
	container corev1.Container
	config    string // the collector config text
	// portsFromConfig: the installer derives the container ports from the
	// config itself (the operator), so there are none to check.
	portsFromConfig bool
}

// podIP stands for status.podIP when a config is expanded for the checks.
const podIP = "10.1.2.3"

// runtimeEnv are the variables the container runtime sets in every
// container (HOSTNAME is the pod name).
var runtimeEnv = map[string]string{"HOSTNAME": "otelcsp-0"}

// env is the container's environment as the config sees it: literal
// values, status.podIP as podIP, other field references by their path.
func (u podUnit) env() (map[string]string, error) {
	out := map[string]string{}
	for k, v := range runtimeEnv {
		out[k] = v
	}
	for _, e := range u.container.Env {
		switch {
		case e.ValueFrom == nil:
			out[e.Name] = expandK8sRefs(e.Value, out)
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP":
			out[e.Name] = podIP
		case e.ValueFrom.FieldRef != nil:
			out[e.Name] = "field:" + e.ValueFrom.FieldRef.FieldPath
		default:
			return nil, fmt.Errorf("%s: env %s: only value and fieldRef are understood here", u.name, e.Name)
		}
	}
	return out, nil
}

// expandK8sRefs expands Kubernetes' $(VAR) references to earlier variables.
func expandK8sRefs(v string, env map[string]string) string {
	for k, x := range env {
		v = strings.ReplaceAll(v, "$("+k+")", x)
	}
	return v
}

// checkEnv: every variable the config needs (no default) is set, and every
// OTELCSP_ variable the container sets is one the config reads (a
// misspelt name would otherwise leave the default in place silently).
func (u podUnit) checkEnv() []error {
	var errs []error
	vars := envVars(u.config)
	set := map[string]bool{}
	for _, e := range u.container.Env {
		set[e.Name] = true
	}
	for name, use := range vars {
		if _, rt := runtimeEnv[name]; use.required && !set[name] && !rt {
			errs = append(errs, fmt.Errorf("%s: the config needs ${env:%s} (no default), which the container does not set", u.name, name))
		}
	}
	for name := range set {
		if _, read := vars[name]; strings.HasPrefix(name, "OTELCSP_") && !read {
			errs = append(errs, fmt.Errorf("%s: the container sets %s, which its config does not read", u.name, name))
		}
	}
	return errs
}

// checkMounts: every volume the containers mount is a volume of the pod.
func (u podUnit) checkMounts() []error {
	var errs []error
	for _, c := range append(slices.Clone(u.spec.InitContainers), u.container) {
		for _, vm := range c.VolumeMounts {
			if !slices.ContainsFunc(u.spec.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name }) {
				errs = append(errs, fmt.Errorf("%s: container %s mounts volume %s, which the pod does not have", u.name, c.Name, vm.Name))
			}
		}
	}
	return errs
}

// checkedResolvers runs the unit's environment, port and mount checks and
// returns its fanouts' resolvers, for the installer's own checks of them.
func (u podUnit) checkedResolvers(t *testing.T) []fanoutResolver {
	t.Helper()
	for _, err := range slices.Concat(u.checkEnv(), u.checkPorts(), u.checkMounts()) {
		t.Error(err)
	}
	c, err := u.parsed()
	if err != nil {
		t.Fatal(err)
	}
	return c.fanoutResolvers()
}

// parsed is the config expanded with the container's environment.
func (u podUnit) parsed() (parsedConfig, error) {
	env, err := u.env()
	if err != nil {
		return nil, err
	}
	text, err := expand(u.config, env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u.name, err)
	}
	c, err := parseConfig(text)
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", u.name, err)
	}
	return c, nil
}

// checkPorts: every port the container declares is one the config listens
// on, at an address other pods and the kubelet reach (not loopback), and
// every probe asks a declared port.
func (u podUnit) checkPorts() []error {
	if u.portsFromConfig {
		return nil
	}
	c, err := u.parsed()
	if err != nil {
		return []error{err}
	}
	listens, err := c.listens()
	if err != nil {
		return []error{fmt.Errorf("%s: %w", u.name, err)}
	}
	var errs []error
	named := map[string]int32{}
	for _, p := range u.container.Ports {
		if p.Name != "" {
			named[p.Name] = p.ContainerPort
		}
		served := false
		var where []string
		for _, l := range listens {
			if l.port == int(p.ContainerPort) {
				where = append(where, fmt.Sprintf("%s on %s", l.where, l.host))
				served = served || (l.host != "127.0.0.1" && l.host != "localhost" && l.host != "::1")
			}
		}
		if !served {
			errs = append(errs, fmt.Errorf("%s: container port %s (%d) is not served on a pod address by the config (%v)", u.name, p.Name, p.ContainerPort, where))
		}
	}
	for what, probe := range map[string]*corev1.Probe{"readinessProbe": u.container.ReadinessProbe, "livenessProbe": u.container.LivenessProbe} {
		if probe == nil || probe.HTTPGet == nil {
			continue
		}
		port := probe.HTTPGet.Port
		if name := port.StrVal; name != "" {
			if _, ok := named[name]; !ok {
				errs = append(errs, fmt.Errorf("%s: %s asks port %q, which the container does not declare", u.name, what, name))
			}
		}
	}
	return errs
}
