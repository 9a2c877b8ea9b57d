// Package validate checks the deployment files with the libraries their
// own tools use: the Kubernetes manifests against the Kubernetes API types
// (k8s.io/api), decoding strictly, so an unknown field, a wrong type or a
// misspelt key fails; and the Prometheus alert rules with promtool's own
// parser (rulefmt, PromQL included). It is its own module so that those
// modules stay out of mailpoller's go.mod; .ci/run runs it.
package validate

import (
	"bytes"
	"os"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

func TestManifests(t *testing.T) {
	raw, err := os.ReadFile("../mailpoller.yaml")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	var sts appsv1.StatefulSet
	for i, doc := range bytes.Split(raw, []byte("\n---\n")) {
		var head struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal(doc, &head); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var obj any
		switch head.APIVersion + "/" + head.Kind {
		case "v1/ConfigMap":
			obj = &corev1.ConfigMap{}
		case "v1/Secret":
			obj = &corev1.Secret{}
		case "v1/Service":
			obj = &corev1.Service{}
		case "apps/v1/StatefulSet":
			obj = &sts
		default:
			t.Fatalf("document %d: unexpected %s %s", i, head.APIVersion, head.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Errorf("document %d (%s): %v", i, head.Kind, err)
		}
		kinds[head.Kind]++
	}
	for _, k := range []string{"ConfigMap", "Secret", "Service", "StatefulSet"} {
		if kinds[k] != 1 {
			t.Errorf("%d %s, want 1", kinds[k], k)
		}
	}
	c := sts.Spec.Template.Spec.Containers[0]
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Error("want liveness /healthz and readiness /readyz")
	}
	instance := false
	for _, e := range c.Env {
		if e.Name == "MAILPOLLER_INSTANCE" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name" {
			instance = true
		}
		if e.Value != "" && strings.Contains(strings.ToLower(e.Name), "secret") {
			t.Errorf("env %s has a literal value: take it from the Secret", e.Name)
		}
	}
	if !instance {
		t.Error("MAILPOLLER_INSTANCE is not the pod name: leases need stable instance names")
	}
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas < 2 {
		t.Error("want several instances")
	}
}
